"""The custody report as a page a court clerk can read: a continuity statement.

Plain HTML from the template ``templates/report.html`` (Jinja2, autoescaped: every value is text,
whatever an officer or a client put in it), no script beyond the embedded machine-readable
report, no third-party assets. The embedded report is the canonical JSON with ``<``, ``>`` and
``&`` written as JSON escapes, so that no value can end the script element or open a comment
in it; `embedded_json` reverses that exactly, for the signature check.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from audit import canonical
from evidence.custody.actions import Action

# autoescape=True for the template whatever its name; a missing value is an error, never an
# empty string that could hide a mistake.
_ENV = Environment(loader=PackageLoader("evidence.custody"), autoescape=True, undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)

# Canonical JSON writes these as themselves; in a script element they could end it ("</script")
# or change how it is parsed ("<!--"). JSON escapes read back as the same text.
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
_SCRIPT_UNSAFE = re.compile("[<>&]")
# Reading back: an escaped backslash is kept whole, so "\\u003c" (a backslash, then "u003c")
# stays what it was.
_SCRIPT_ESCAPED = re.compile(rb"\\\\|\\u003c|\\u003e|\\u0026")
_SCRIPT_UNESCAPES = {b"\\\\": b"\\\\", b"\\u003c": b"<", b"\\u003e": b">", b"\\u0026": b"&"}


@dataclass(frozen=True)
class _Event:
    seq: int
    what: str
    withheld: bool = False
    time: str = ""
    who: str = ""
    details: str = ""
    reason: str = ""
    leaf_hash: str = ""


@dataclass(frozen=True)
class _Copy:
    kind: str
    sha256: str
    size: str
    how: str


def render(report: dict[str, Any]) -> str:
    item = report["item"]
    facts = [
        ("Case", item["case"]),
        ("Exhibit reference", item["exhibit"] or "—"),
        ("Original filename", item["filename"]),
        ("Size", f"{item['size']:,} bytes"),
        *[(name.upper(), item["hashes"][name]) for name in sorted(item["hashes"])],
        ("Officer's SHA-256", item["client_sha256"] or "not supplied"),
        ("State", item["state"] + (f" ({item['reason']})" if item["reason"] else "")),
        ("Item id", item["id"]),
    ]
    events = [
        _Event(seq=p["seq"], what=_label(p["entry"]["action"]), time=p["entry"]["time"], who=p["entry"]["actor"],
               details=json.dumps(p["entry"]["details"], ensure_ascii=False, sort_keys=True))
        for p in report["entries"]
    ]
    withheld = report.get("withheld", [])
    events += [_Event(seq=w["seq"], what=_label(w["action"]), withheld=True, reason=w["reason"], leaf_hash=w["leaf_hash"])
               for w in withheld]
    copies = [
        _Copy(kind=d["kind"], sha256=d["sha256"], size=f"{d['size']:,}",
              how=" ".join(d["method"].get("argv", [])) or json.dumps(d["method"], sort_keys=True))
        for d in report["derivatives"]
    ]
    return _ENV.get_template("report.html").render(
        report=report, item=item, facts=facts, events=sorted(events, key=lambda event: event.seq), copies=copies,
        reviewer_copy=report.get("copy") == "reviewer", withheld=len(withheld),
        embedded=Markup(script_json(report)),  # noqa: S704 - escaped for a script element by script_json
    )


def script_json(report: dict[str, Any]) -> str:
    """The report's canonical JSON, safe inside a ``<script>`` element."""
    return _SCRIPT_UNSAFE.sub(lambda found: _SCRIPT_ESCAPES[found[0]], canonical(report).decode())


def embedded_json(embedded: bytes) -> bytes:
    """The canonical JSON that `script_json` (or, in reports made before it, "</" written
    as "<\\/") embedded in a page."""
    data = _SCRIPT_ESCAPED.sub(lambda found: _SCRIPT_UNESCAPES[found[0]], embedded)
    return data.replace(b"<\\/", b"</")


def _label(action: str) -> str:
    """The words for a recorded action; an action no longer known is shown as recorded."""
    try:
        return Action(action).label
    except ValueError:
        return action
