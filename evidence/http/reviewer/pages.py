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

from evidence.http.reviewer.copies import Entry

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
    # What else it has to show (evidence/http/reviewer/exhibits.py), by which working copies exist.
    kind: str | None = None  # what the pipeline found: video, audio, image, pdf, archive, ...
    has_view: bool = False  # an image at screen size
    exif: tuple[tuple[str, str], ...] = ()
    audio_type: str = ""  # the audio working copy's content type, if there is one
    text: str | None = None  # the head of the text working copy
    text_more: bool = False  # the text working copy holds more than ``text``
    pages: int = 0  # a PDF's pages rendered as images...
    page_count: int = 0  # ...of this many
    entries: int | None = None  # an archive's entries, where its manifest was read
    files: int = 0
    previews: int = 0  # working copies of the images and videos inside the archive
    office: bool = False  # the archive is an office document's package (a .docx, an .odt)
    unlisted: bool = False  # it has a manifest too large (or not as written) to list on a page

    @property
    def name(self) -> str:
        return self.exhibit or self.filename

    @property
    def processing(self) -> bool:
        return self.state in ("uploading", "received", "processing")

    @property
    def previewed(self) -> bool:
        """Whether it has a working copy a person can look at or listen to (an office
        document's parts listed are no preview of the document)."""
        return bool(self.has_proxy or self.has_contact_sheet or self.has_view or self.pages or self.text is not None
                    or self.audio_type or (self.entries is not None and not self.office) or self.unlisted)


@dataclass(frozen=True)
class Listed:
    """One entry of an archive's contents page, with its preview if it has one."""

    entry: Entry
    preview: str | None = None  # "image" or "video"
    skipped: str | None = None  # why a media entry has no preview


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


def document_page(case_ref: str, base: str, exhibit: Exhibit, number: int) -> str:
    """One rendered page of a PDF, with the way to the others (no script: links and a form)."""
    return _render("document.html", case_ref=case_ref, base=base, ex=exhibit, number=number)


def contents_page(case_ref: str, base: str, exhibit: Exhibit, listed: Sequence[Listed], number: int,
                  pages: int, first: int) -> str:
    """One page of an archive's contents: ``listed`` are its entries from ``first`` (from 1)."""
    return _render("contents.html", case_ref=case_ref, base=base, ex=exhibit, listed=listed, number=number,
                   pages=pages, first=first)
