"""The reviewer's pages: Jinja2 templates (``templates/``) with autoescape on, so every value
is escaped wherever it lands; no script and no third-party assets.

Refusals use fixed pages (not found, no longer valid, too many requests) that say nothing
about the case, so a refused URL cannot be used to learn whether a case, item or link exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

# Pages carry their only style inline; the policy allows nothing from anywhere else.
CSP = ("default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# The hashes a page shows, in this order, where the item has them.
HASH_LABELS = (("sha256", "SHA-256"), ("sha1", "SHA-1"), ("md5", "MD5"))
_SIZE_UNITS = ("KiB", "MiB", "GiB", "TiB")


@dataclass(frozen=True)
class Exhibit:
    id: str
    filename: str
    exhibit: str | None
    size: int
    hashes: Mapping[str, Any]
    state: str
    has_proxy: bool
    proxy_type: str
    has_contact_sheet: bool
    has_poster: bool


def human_size(size: int) -> str:
    """``5 bytes``, ``84.2 KiB (86232 bytes)``: the exact count stays beside the rounded one."""
    if size < 1024:
        return f"{size} bytes"
    value, unit = size / 1024, 0
    while value >= 1024 and unit < len(_SIZE_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.1f} {_SIZE_UNITS[unit]} ({size} bytes)"


def _environment() -> Environment:
    # autoescape=True for every template whatever its name; a missing value is an error,
    # never an empty string that could hide a mistake.
    env = Environment(loader=PackageLoader("evidence.http.reviewer"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["size"] = human_size
    return env


_ENV = _environment()


def _render(template: str, **values: Any) -> str:
    return _ENV.get_template(template).render(**values)


def not_found() -> str:
    return _render("notice.html", heading="Not found", message="There is nothing at this address.")


def gone() -> str:
    return _render("notice.html", heading="This link is no longer valid",
                   message="Ask the person who shared it with you for a new link.")


def too_many() -> str:
    return _render("notice.html", heading="Too many requests", message="Wait a moment, then try again.")


def unavailable() -> str:
    return _render("notice.html", heading="Temporarily unavailable",
                   message="The evidence service cannot show this right now. Nothing is lost: try again in a minute.")


def passcode_form(action: str, message: str | None = None) -> str:
    return _render("passcode.html", action=action, message=message)


def shared_page(case_ref: str, base: str, exhibits: Sequence[Exhibit], download: bool, expires: str) -> str:
    return _render("shared.html", case_ref=case_ref, base=base, exhibits=exhibits, download=download,
                   expires=expires, hash_labels=HASH_LABELS)
