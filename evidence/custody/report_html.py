"""The custody report as a page a court clerk can read: a continuity statement.

First the statement, in the order a continuity statement takes: the exhibit (reference,
description, hashes, each on one unbroken line), then one line per event in plain words
(`evidence.custody.statement`); then an appendix with the machine detail (each entry's
recorded details, the working copies' command lines, withheld entries, the signed checkpoint).
The same page, laid out for A4, is the PDF (`evidence.custody.report_pdf`).

Plain HTML from the template ``templates/report.html`` (Jinja2, autoescaped: every value is text,
whatever an officer or a client put in it), no script beyond the embedded machine-readable
report, no third-party assets. The embedded report is the canonical JSON with ``<``, ``>`` and
``&`` written as JSON escapes, so that no value can end the script element or open a comment
in it; `embedded_json` reverses that exactly, for the signature check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from audit import canonical
from evidence.custody import statement

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
class _Withheld:
    seq: int
    what: str
    reason: str
    leaf_hash: str


@dataclass(frozen=True)
class _Machine:
    """An entry's machine detail, for the appendix."""

    seq: int
    action: str
    time: str
    actor: str
    details: list[str]
    leaf_hash: str


@dataclass(frozen=True)
class _Copy:
    kind: str
    sha256: str
    size: str
    how: str


def render(report: dict[str, Any]) -> str:
    """The continuity statement (what a court reads, one line per event), then the appendix
    (each entry's recorded details, how the working copies were made, the signed checkpoint),
    with the machine-readable report embedded for `verify-report`."""
    item = report["item"]
    hashes = item["hashes"]
    # SHA-256 first: it is the hash the officer's is compared with and the one courts are used to.
    order = sorted(hashes, key=lambda name: (name != "sha256", name))
    facts = [
        ("Exhibit reference", item["exhibit"] or "none given"),
        ("Description", item.get("description") or "none given"),
        ("Case", item["case"]),
        ("Original file name", statement.redact(item["filename"])),
        ("Size", f"{item['size']:,} bytes"),
        ("Officer's SHA-256", _officers(item)),
        ("State", item["state"] + (f" ({statement.redact(item['reason'])})" if item["reason"] else "")),
        ("Fixity audit", _fixity(item.get("fixity"))),
    ]
    machine = [
        _Machine(seq=p["seq"], action=p["entry"]["action"], time=p["entry"]["time"],
                 actor=statement.who(p["entry"]["actor"]), details=statement.detail_lines(p["entry"]["details"]),
                 leaf_hash=p["leaf_hash"])
        for p in report["entries"]
    ]
    withheld = [_Withheld(seq=w["seq"], what=statement.label(w["action"]), reason=w["reason"], leaf_hash=w["leaf_hash"])
                for w in report.get("withheld", [])]
    copies = [
        _Copy(kind=statement.copy_kind(d["kind"]), sha256=d["sha256"], size=f"{d['size']:,}",
              how=statement.command(d["method"]))
        for d in report["derivatives"]
    ]
    lines = sorted(statement.lines(report) + [
        statement.Line(w.seq, "", f"{w.what}: withheld from this copy ({w.reason})", "", "Proven in place (appendix C)")
        for w in withheld], key=lambda line: line.seq)
    # Events are numbered 1, 2, 3... for this exhibit, as a statement numbers them: the ledger's
    # own sequence numbers skip every entry about other items (another exhibit, a passcode typed
    # on the case's link) and would read as gaps. The appendix gives each event's ledger number.
    number = {line.seq: n for n, line in enumerate(lines, 1)}
    return _ENV.get_template("report.html").render(
        report=report, item=item, facts=facts, hashes=[(_hash_name(name), hashes[name]) for name in order],
        lines=lines, number=number, machine=machine, copies=copies,
        warnings=[statement.redact(warning) for warning in item["warnings"]],
        reviewer_copy=report.get("copy") == "reviewer", withheld=withheld,
        embedded=Markup(script_json(report)),  # noqa: S704 - escaped for a script element by script_json
    )


def _hash_name(name: str) -> str:
    return name.upper().replace("SHA", "SHA-") if name.startswith("sha") else name.upper()


def _officers(item: dict[str, Any]) -> str:
    """Whether the hash the officer's device computed matches the stored original's."""
    client, stored = item["client_sha256"], item["hashes"].get("sha256")
    if not client:
        return "not supplied"
    if stored and client.lower() == stored.lower():
        return "supplied, and matches the SHA-256 above"
    return f"supplied, and DIFFERS from the SHA-256 above: {client}"


def _fixity(fixity: Any) -> str:
    """The latest fixity audits of the stored original and working copies, in words."""
    if not isinstance(fixity, dict) or fixity.get("state") in (None, "unchecked"):
        return "not audited yet" if isinstance(fixity, dict) else "not recorded in this report"
    earlier = f"; an earlier check ({statement.when(str(fixity['failed_at']))}) found a difference" \
        if fixity.get("failed_at") else ""
    if fixity["state"] == "ok":
        checked = f" when the original was re-read and re-hashed at {statement.when(str(fixity['checked_at']))}" \
            if fixity.get("checked_at") else ""
        return f"every stored object matched its recorded SHA-256{checked}{earlier}"
    problems = [p for p in fixity.get("problems") or [] if isinstance(p, dict)]
    found = "; ".join(statement.redact(
        f"{p.get('object')}{' (' + statement.copy_kind(str(p['kind'])) + ')' if p.get('kind') else ''}"
        f"{', part ' + str(p['part']) if p.get('part') else ''}: {str(p.get('problem', '')).upper()}")
        for p in problems)
    return f"FAILED at the latest check: {found or 'see the events'}{earlier}"


def script_json(report: dict[str, Any]) -> str:
    """The report's canonical JSON, safe inside a ``<script>`` element."""
    return _SCRIPT_UNSAFE.sub(lambda found: _SCRIPT_ESCAPES[found[0]], canonical(report).decode())


def embedded_json(embedded: bytes) -> bytes:
    """The canonical JSON that `script_json` (or, in reports made before it, "</" written
    as "<\\/") embedded in a page."""
    data = _SCRIPT_ESCAPED.sub(lambda found: _SCRIPT_UNESCAPES[found[0]], embedded)
    return data.replace(b"<\\/", b"</")
