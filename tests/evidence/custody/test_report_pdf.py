"""The continuity statement for an item with a long history (tests.evidence.custody.history), laid
out on A4 by WeasyPrint as the PDF export lays it out: the statement part fits on a few pages,
reads as a continuity statement (plain words, no JSON or ffmpeg arguments, each hash whole on
one line, no server internals), and the signed PDF and CASE/UCO exports pass `evidence audit
verify-report` and are refused after any one byte changes.

Before issue 13 the same history laid out to 35 A4 pages; now the statement is 2 and the whole
PDF, appendix included, 6."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from audit import VerificationError
from evidence.custody import report, report_pdf
from evidence.custody.report_html import render
from evidence.runtime import Runtime
from tests.evidence.custody import history
from tests.support.server import EVIDENCE

CASE_VALIDATE = str(Path(sys.executable).with_name("case_validate"))
STATEMENT_PAGES = 4  # "a typical item fits on a few pages"


@pytest.fixture
def database_url() -> str:
    """SQLite alone: laying out and signing is the same on either database (test_report.py runs
    the report's queries on both), and a layout costs seconds."""
    return ""


@pytest.fixture
def recorded(rt: Runtime) -> history.History:
    return history.record(rt)


def _texts(box: Any) -> Iterator[str]:
    """The text of each laid-out text box: one box never spans two lines."""
    text = getattr(box, "text", None)
    if isinstance(text, str):
        yield text
    for child in getattr(box, "children", ()):
        yield from _texts(child)


def _text_edges(box: Any) -> Iterator[tuple[str, float]]:
    """Each laid-out text box's text and right edge."""
    text = getattr(box, "text", None)
    if isinstance(text, str) and text.strip():
        yield text, box.position_x + box.width
    for child in getattr(box, "children", ()):
        yield from _text_edges(child)


class _Visible(HTMLParser):
    """A page's text as a reader sees it (not the embedded report's script)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self._skip = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip = tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip = False

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def visible(page: str) -> str:
    parser = _Visible()
    parser.feed(page)
    parser.close()
    return " ".join(parser.text)


def assert_no_internals(text: str, recorded: history.History) -> None:
    assert recorded.data_dir not in text
    assert "root@" not in text and "/vault/" not in text and "originals/" not in text
    assert re.search(rf"(?<![\w.-]){re.escape(recorded.host)}(?![\w.-])", text) is None, recorded.host
    assert history.UPLOAD not in text  # the upload's id names a storage location


def test_the_statement_fits_on_a_few_pages_and_reads_as_a_statement(rt: Runtime, recorded: history.History) -> None:
    with rt.db.transaction() as session:
        built = report.build(session, rt.ledger_keys, recorded.item_id, "system:test")
    document = report_pdf.layout(built)
    appendix = next(n for n, page in enumerate(document.pages) if "appendix" in page.anchors)
    assert 1 <= appendix <= STATEMENT_PAGES, f"the statement takes {appendix} pages"
    assert len(document.pages) <= 3 * STATEMENT_PAGES
    # Each hash is one text box: whole on one line, on the page as in the report.
    boxes = {text for page in document.pages for text in _texts(page._page_box)}
    hashes = [*built["item"]["hashes"].values(), *(d["sha256"] for d in built["derivatives"])]
    assert len(hashes) == 10 and all(value in boxes for value in hashes), [h for h in hashes if h not in boxes]
    laid_out = " ".join(boxes)
    assert_no_internals(laid_out, recorded)
    # Nothing runs off the page: the contact sheet's command line (a few KB, long unbroken runs)
    # is wrapped inside its column.
    for number, laid in enumerate(document.pages, 1):
        outside = [text for text, right in _text_edges(laid._page_box) if right > laid.width]
        assert not outside, f"page {number}: text runs off the page: {outside[:3]}"

    page = render(built)
    statement, machine = page.split('id=appendix', 1)
    words = visible(statement)
    for expected in ("Exhibit reference JS/3", "Camera 3, High Street", "Viewed by reviewer@cps.gov.uk",
                     f"Download of the original, bytes 0–{history.SIZE - 1:,} (whole file), by reviewer@cps.gov.uk",
                     "Refused: link revoked", "Case OP-HALFORD opened by service account",
                     "Original hashed as stored (MD5, SHA-1, SHA-256) by the processing service",
                     "Matches", "Link revoked by pc.jones@force.police.uk", "Viewed by counsel@chambers.example.org"):
        assert expected in " ".join(words.split()), expected
    assert "Link used" not in words
    assert not {"{", "}", "[", "]"} & set(words), "no JSON in the statement"
    assert "ffmpeg" not in words and "-c:v" not in words and "argv" not in words
    # The machine detail is in the appendix, with the internals still left out.
    assert "-c:v libx264" in visible(machine) and "leaf hash" in visible(machine)
    assert_no_internals(visible(page), recorded)


def _tampered(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The file with one byte changed: at its start, inside, in its signature and at its end."""
    for position in (0, 9, len(data) // 3, len(data) // 2, len(data) - 60, len(data) - 3, len(data) - 1):
        changed = bytearray(data)
        changed[position] ^= 0x01
        yield position, bytes(changed)


@pytest.mark.parametrize("fmt", ["pdf", "case"])
def test_signed_exports_verify_offline_and_any_changed_byte_is_refused(
        rt: Runtime, recorded: history.History, fmt: str, tmp_path: Path) -> None:
    with rt.db.transaction() as session:
        data = report.export(session, rt.ledger_keys, recorded.item_id, fmt, "system:test")
    checked = report.verify_report(data, rt.ledger_keys.verifier)
    assert checked["item"]["id"] == recorded.item_id and len(checked["entries"]) == 29
    for position, changed in _tampered(data):
        with pytest.raises(VerificationError):
            report.verify_report(changed, rt.ledger_keys.verifier)
            pytest.fail(f"{fmt}: a change at byte {position} was accepted")
    # Through the command an auditor runs, with the ledger's public key alone.
    key = tmp_path / "ledger.pub"
    key.write_text(rt.ledger_keys.signer.verifier_key())
    exported = tmp_path / ("report.pdf" if fmt == "pdf" else "report.jsonld")
    exported.write_bytes(data)
    (tmp_path / "changed").write_bytes(next(_tampered(data))[1])
    env = {"PATH": "/usr/bin:/bin", "EVIDENCE_DATA_DIR": str(tmp_path / "nothing-here")}
    ok = subprocess.run([EVIDENCE, "audit", "verify-report", str(exported), "--public-key", str(key)],
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and "29 entries" in ok.stdout, ok.stderr
    refused = subprocess.run([EVIDENCE, "audit", "verify-report", str(tmp_path / "changed"), "--public-key", str(key)],
                             capture_output=True, text=True, env=env, timeout=120)
    assert refused.returncode == 1 and "REJECTED" in refused.stderr
    if fmt == "case":  # the signed report and signature sit outside the JSON-LD context: still valid CASE
        validated = subprocess.run([CASE_VALIDATE, str(exported)], capture_output=True, text=True,
                                   timeout=300)
        assert validated.returncode == 0 and "Conforms: True" in validated.stdout, validated.stdout + validated.stderr


def test_a_pdf_is_a_pdf_with_the_report_attached(rt: Runtime, recorded: history.History) -> None:
    with rt.db.transaction() as session:
        data = report.export(session, rt.ledger_keys, recorded.item_id, "pdf", "system:test")
    pdf, _ = report_pdf.split(data)
    assert pdf.startswith(b"%PDF-") and pdf.endswith(b"%%EOF\n")
    assert len(data) - data.rindex(b"%%EOF") < 1024, "readers look for %%EOF in the last kilobyte"
    attached = report_pdf.attached_json(pdf)
    assert report.verify_report(attached, rt.ledger_keys.verifier)["item"]["exhibit"] == "JS/3"
    # A signature made over another PDF does not carry over.
    with rt.db.transaction() as session:
        other = report.export(session, rt.ledger_keys, recorded.item_id, "pdf", "system:test")
    with pytest.raises(VerificationError, match="changed after it was signed"):
        report.verify_report(pdf + report_pdf.split(other)[1].join([report_pdf.SIGNATURE_PREFIX, b"\n"]),
                             rt.ledger_keys.verifier)
