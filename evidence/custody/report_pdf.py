"""The continuity statement as a PDF: the HTML statement's template laid out on A4 by WeasyPrint.

How the PDF carries its proof, so that `evidence audit verify-report` can check it offline:

- the report's canonical JSON (the ``json`` format, itself signed) is attached to the PDF as the
  embedded file ``custody-report.json``, so anyone can open it from the PDF reader and the
  verifier checks every entry's inclusion proof from it;
- the ledger key signs the SHA-256 of every byte of the PDF as WeasyPrint wrote it, and that
  signature is appended after the PDF's ``%%EOF`` as one PDF comment line,
  ``%evidence-signature <base64 signed note>``. Readers ignore a comment there (the file's
  cross-reference table is unchanged and ``%%EOF`` stays within the last kilobyte, where readers
  look for it), so the file stays an ordinary PDF, and one file holds the statement and its
  proof. Changing any byte before that line breaks the signature; changing the line itself
  breaks the note.

The attachment is read back only after the signature over the bytes checks, so the small reader
here (`attached_json`) parses only what the ledger's key vouched for.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

from audit import canonical
from evidence.custody.report_html import render

SIGNATURE_PREFIX = b"%evidence-signature "
ATTACHMENT = "custody-report.json"
# The embedded file stream's dictionary as pydyf writes it: a /Length and maybe /FlateDecode.
_EMBEDDED = re.compile(rb"/Type\s*/EmbeddedFile\b(?P<dict>.*?)>>\s*stream\r?\n", re.DOTALL)
_LENGTH = re.compile(rb"/Length\s+(\d+)(?!\s+\d+\s+R)")


class PdfError(ValueError):
    """The PDF does not carry what a signed custody report's PDF carries."""


def layout(report: dict[str, Any]) -> Any:
    """The statement laid out in pages (a ``weasyprint.Document``: its pages and anchors)."""
    import weasyprint  # WeasyPrint loads Pango when imported: only the PDF export pays for it

    return weasyprint.HTML(string=render(report)).render()


def to_pdf(report: dict[str, Any]) -> bytes:
    """The unsigned PDF, with the report's canonical JSON attached."""
    import weasyprint

    attachment = weasyprint.Attachment(string=canonical(report).decode(), name=ATTACHMENT,
                                       description="The machine-readable custody report (canonical JSON)")
    data: bytes = layout(report).write_pdf(attachments=[attachment])
    return data


def split(data: bytes) -> tuple[bytes, bytes]:
    """The PDF as signed, and its signature line's base64 note."""
    cut = data.rfind(b"\n" + SIGNATURE_PREFIX)
    if cut < 0:
        raise PdfError("the PDF report carries no signature")
    pdf, line = data[: cut + 1], data[cut + 1 + len(SIGNATURE_PREFIX) :]
    if not line.endswith(b"\n") or b"\n" in line[:-1]:
        raise PdfError("the PDF report's signature line is damaged or not last")
    return pdf, line[:-1]


def signature_line(note: bytes) -> bytes:
    return SIGNATURE_PREFIX + note + b"\n"


def attached_json(pdf: bytes) -> bytes:
    """The embedded ``custody-report.json``'s bytes."""
    found = list(_EMBEDDED.finditer(pdf))
    if len(found) != 1:
        raise PdfError("the PDF report does not embed its JSON form once")
    header = found[0]["dict"]
    length = _LENGTH.findall(header)
    if len(length) != 1:
        raise PdfError("the PDF report's embedded JSON has no length")
    start = found[0].end()
    stream = pdf[start : start + int(length[0])]
    if b"/FlateDecode" not in header:
        return stream
    try:
        return zlib.decompress(stream)
    except zlib.error:
        raise PdfError("the PDF report's embedded JSON does not decompress") from None
