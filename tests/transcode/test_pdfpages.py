"""A PDF's pages as images: the bounded renderer child on real PDFs (made by WeasyPrint) and on
hostile ones written here byte by byte (JavaScript actions, encryption, garbage, absurd page
boxes, memory and CPU bombs); the pipeline step on SQLite and PostgreSQL with a real vault
(pages stored under their hashes, the index, its custody entry, retries, a step taken over);
and one PDF through a real server to ``ready``."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pypdfium2.version  # type: ignore[import-untyped]
import pytest
import weasyprint
from PIL import Image
from sqlalchemy import select

from evidence.models import CustodyEvent, Derivative, DerivativeKind, Item, ItemState, utcnow
from evidence.runtime import Runtime
from evidence.workingcopies import read_pages
from tests.support.server import Server
from tests.transcode.conftest import MakeItem, actions, item
from transcode import lease, pipeline
from transcode.fence import Lease, LeaseLost
from transcode.limits import Limits
from transcode.pdfpages import MAX_SIDE, Outcome, Request, fit, pages_warnings, render_pages
from transcode.steps import Step

GiB = 1 << 30
REQUEST = Request(width=1240, max_pages=300, max_page_pixels=16_000_000, max_output_bytes=GiB)
LIMITS = Limits(memory_bytes=4 * GiB, cpu_seconds=60, budget_seconds=60)
WORDS = ("Statement of the first witness", "Exhibit list and continuity", "Signed and dated by the officer")


# -- PDFs ---------------------------------------------------------------------------------------


def three_pages() -> bytes:
    """A real PDF of three A4 pages, each with its own text."""
    sections = "".join(
        f"<section style='page-break-after: always'><h1>{words}</h1><p>{(words + '. ') * (20 * (n + 1))}</p></section>"
        for n, words in enumerate(WORDS)
    )
    data: bytes = weasyprint.HTML(string=f"<html><body>{sections}</body></html>").write_pdf()
    return data


def handmade(objects: list[bytes], trailer: bytes = b"") -> bytes:
    """A PDF of ``objects`` (object 1 the catalogue) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer, xref)
    return bytes(out)


def stream(content: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(content), extra, content)


def one_page(content: bytes, box: bytes = b"[0 0 595 842]", page_extra: bytes = b"", catalog_extra: bytes = b"",
             more: list[bytes] | None = None) -> list[bytes]:
    """Objects 1-4: catalogue, page tree, one page, its content; ``more`` from object 5."""
    return [
        b"<< /Type /Catalog /Pages 2 0 R %s >>" % catalog_extra,
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox %s /Contents 4 0 R %s >>" % (box, page_extra),
        stream(content),
        *(more or []),
    ]


def with_javascript(port: int) -> bytes:
    """JavaScript on opening the document, on opening the page and behind a form field, each
    trying to reach ``port`` (submitting the form, launching a URL) were it run."""
    url = b"http://127.0.0.1:%d/javascript-ran" % port
    js = b"this.submitForm({cURL: '%s'}); app.launchURL('%s', true);" % (url, url)
    action = b"<< /S /JavaScript /JS (%s) >>" % js
    return handmade(one_page(
        b"BT /F1 24 Tf 72 700 Td (A page with scripts) Tj ET",
        page_extra=b"/AA << /O 5 0 R >> /Annots [6 0 R] /Resources << /Font << /F1 7 0 R >> >>",
        catalog_extra=b"/OpenAction 5 0 R /AcroForm << /Fields [6 0 R] >> /Names << /JavaScript << /Names [(run) 5 0 R] >> >>",
        more=[
            action,
            b"<< /Type /Annot /Subtype /Widget /FT /Tx /T (name) /Rect [72 600 300 630] /AA << /Fo 5 0 R /K 5 0 R >> /A 5 0 R >>",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ],
    ))


def encrypted() -> bytes:
    """A PDF whose trailer names a standard security handler with a user password that is not
    empty (its /O and /U do not match ""): it cannot be opened without the password."""
    handler = b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P -4 >>" % (b"11" * 32, b"22" * 32)
    return handmade(one_page(b"0 0 m 100 100 l S", more=[handler]),
                    b"/Encrypt 5 0 R /ID [<%s> <%s>]" % (b"33" * 16, b"33" * 16))


def cpu_bomb(levels: int = 8) -> bytes:
    """Forms that each draw the next one 16 times: 16**levels strokes from a 2 kB file."""
    forms = []
    for level in range(levels):
        number = 5 + level
        if level < levels - 1:
            forms.append(stream(b" ".join([b"/F Do"] * 16),
                                b"/Type /XObject /Subtype /Form /BBox [0 0 595 842] /Resources << /XObject << /F %d 0 R >> >>"
                                % (number + 1)))
        else:
            forms.append(stream(b"0 0 m 595 842 l 0 842 m 595 0 l S", b"/Type /XObject /Subtype /Form /BBox [0 0 595 842]"))
    return handmade(one_page(b"/F Do", page_extra=b"/Resources << /XObject << /F 5 0 R >> >>", more=forms))


def memory_bomb(mib: int = 800) -> bytes:
    """A page whose content stream inflates to ``mib`` MiB of spaces from under 1 MiB."""
    packer = zlib.compressobj(9)
    packed = b"".join(packer.compress(b" " * (1 << 20)) for _ in range(mib)) + packer.flush()
    objects = one_page(b"")
    objects[3] = stream(packed, b"/Filter /FlateDecode")
    return handmade(objects)


def render(tmp_path: Path, data: bytes, request: Request = REQUEST, limits: Limits | None = LIMITS,
           timeout: float = 60) -> tuple[Outcome, Path]:
    pdf, out = tmp_path / "original.pdf", tmp_path / "pages"
    out.mkdir(parents=True)
    pdf.write_bytes(data)
    return render_pages(pdf, out, request, limits=limits, timeout=timeout), out


def pixels(path: Path) -> Image.Image:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()  # the whole image decodes
        return image.copy()


# -- the renderer child ---------------------------------------------------------------------------


def test_a_three_page_pdf_becomes_three_page_images(tmp_path: Path) -> None:
    outcome, out = render(tmp_path, three_pages())
    assert (outcome.page_count, outcome.problem, outcome.stopped, outcome.skipped) == (3, None, None, [])
    assert [page.number for page in outcome.pages] == [1, 2, 3]
    images = [pixels(page.path) for page in outcome.pages]
    assert [image.size for image in images] == [(1240, 1754)] * 3  # A4 at 150 dpi
    assert [(page.width, page.height) for page in outcome.pages] == [(1240, 1754)] * 3
    # Each page is drawn (ink on white), and no two pages are the same picture.
    assert all(image.convert("L").getextrema() == (0, 255) for image in images)
    assert len({image.tobytes() for image in images}) == 3
    assert outcome.tool == {"pypdfium2": pypdfium2.version.PYPDFIUM_INFO.version,
                            "pdfium": pypdfium2.version.PDFIUM_INFO.version}
    assert outcome.cpu_seconds > 0
    assert sorted(p.name for p in out.iterdir()) == ["page-00001.png", "page-00002.png", "page-00003.png"]


def test_javascript_in_a_pdf_is_never_run_and_only_images_come_out(tmp_path: Path) -> None:
    # This PDFium has no JavaScript engine (V8) or XFA at all; were a build with them installed,
    # the renderer still never initialises forms. Either way scripts could reach this socket.
    assert not {"V8", "XFA"} & set(pypdfium2.version.PDFIUM_INFO.flags)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(1.0)
        outcome, out = render(tmp_path, with_javascript(listener.getsockname()[1]))
        with pytest.raises(TimeoutError):
            listener.accept()
    assert (outcome.page_count, outcome.problem, outcome.stopped) == (1, None, None)
    assert [p.name for p in out.iterdir()] == ["page-00001.png"]
    drawn = pixels(outcome.pages[0].path)
    assert drawn.size == (1240, 1755) and min(drawn.convert("L").tobytes()) < 64  # its text is drawn
    assert b"javascript" not in outcome.pages[0].path.read_bytes().lower()


def test_an_encrypted_pdf_gives_no_pages_and_says_why(tmp_path: Path) -> None:
    outcome, out = render(tmp_path, encrypted())
    assert (outcome.problem, outcome.pages, outcome.page_count, outcome.stopped) == (
        "PDF is encrypted: no page images", [], None, None)
    assert pages_warnings(outcome, REQUEST) == ["PDF is encrypted: no page images"]
    assert list(out.iterdir()) == []


def test_garbage_behind_a_pdf_header_is_not_readable(tmp_path: Path) -> None:
    garbage = b"%PDF-1.4\n" + hashlib.shake_256(b"not a pdf").digest(20000)
    outcome, _ = render(tmp_path, garbage)
    assert outcome.problem == "PDF could not be read (not in PDF format, or damaged): no page images"
    assert (outcome.pages, outcome.stopped) == ([], None)
    # A cut-off real PDF is read as far as it goes or refused: never a crash.
    cut, _ = render(tmp_path / "cut", three_pages()[:4000])
    assert cut.stopped is None and (cut.problem or cut.pages)


@pytest.mark.parametrize(("box", "expected"), [
    (b"[0 0 1 100000]", (1, MAX_SIDE)),  # a ribbon: the long side bounded
    (b"[0 0 10000000 10000000]", (1240, 1240)),  # the size of a field: still 1240 across
    (b"[0 0 595 7000]", None),  # long, within the side limit: the pixel limit scales it down
])
def test_an_absurd_page_box_is_drawn_within_bounds(tmp_path: Path, box: bytes, expected: tuple[int, int] | None) -> None:
    outcome, _ = render(tmp_path, handmade(one_page(b"0 0 m 1 1 l S", box=box)))
    [page] = outcome.pages
    size = pixels(page.path).size
    assert size == (page.width, page.height)
    assert size[0] * size[1] <= REQUEST.max_page_pixels and max(size) <= MAX_SIDE
    if expected:
        assert size == expected
    else:
        assert size[0] < 1240 and size[0] * size[1] > 0.9 * REQUEST.max_page_pixels


def test_fit_keeps_the_width_unless_a_bound_needs_less() -> None:
    assert fit(595.2756, 841.8898, REQUEST) == pytest.approx(1240 / 595.2756)
    assert fit(842, 595, REQUEST) == pytest.approx(1240 / 842)  # landscape: the same width
    assert fit(0, 0, REQUEST) == pytest.approx(1240)  # no size at all: taken as a point square
    assert fit(14400, 14400 * 100, REQUEST) * 14400 * 100 <= MAX_SIDE


def test_only_the_first_max_pages_are_rendered_and_the_count_is_the_pdfs(tmp_path: Path) -> None:
    request = Request(width=600, max_pages=2, max_page_pixels=16_000_000, max_output_bytes=GiB)
    outcome, out = render(tmp_path, three_pages(), request)
    assert outcome.page_count == 3 and [page.number for page in outcome.pages] == [1, 2]
    assert pixels(outcome.pages[0].path).size == (600, 849)
    assert len(list(out.iterdir())) == 2
    assert pages_warnings(outcome, request) == ["PDF has 3 pages: images of the first 2 only"]


def test_a_cpu_bomb_ends_its_child_at_the_budget_and_a_slow_one_at_the_timeout(tmp_path: Path) -> None:
    bomb = cpu_bomb()
    limited, _ = render(tmp_path / "cpu", bomb, limits=Limits(4 * GiB, cpu_seconds=2, budget_seconds=2))
    assert limited.stopped == "stopped: used its CPU-time budget of 2 s"
    assert limited.page_count == 1 and limited.pages == []
    assert 1.5 < limited.cpu_seconds < 6
    assert pages_warnings(limited, REQUEST) == ["PDF: no page images (rendering stopped: used its CPU-time budget of 2 s)"]
    timed, _ = render(tmp_path / "wall", bomb, limits=LIMITS, timeout=2)
    assert timed.stopped == "stopped: rendering took longer than 2 s" and timed.pages == []


def test_a_memory_bomb_ends_its_child_not_the_caller(tmp_path: Path) -> None:
    outcome, _ = render(tmp_path, memory_bomb(), limits=Limits(512 << 20, cpu_seconds=60, budget_seconds=60))
    assert outcome.stopped == ("stopped: PDFium aborted, as it does when it cannot get memory"
                               " (the renderer may use 512 MiB)")
    assert outcome.pages == [] and outcome.page_count == 1


def test_pages_made_before_a_stop_are_kept_and_the_warning_says_how_many() -> None:
    outcome = Outcome(page_count=40, pages=[], stopped="stopped: used its CPU-time budget of 120 s")
    partial = Outcome(page_count=40, pages=[None] * 12, stopped="stopped: used its CPU-time budget of 120 s")  # type: ignore[list-item]
    assert pages_warnings(outcome, REQUEST) == ["PDF: no page images (rendering stopped: used its CPU-time budget of 120 s)"]
    assert pages_warnings(partial, REQUEST) == [
        "PDF: images of the first 12 of 40 pages only (rendering stopped: used its CPU-time budget of 120 s)"]
    assert pages_warnings(Outcome(page_count=0), REQUEST) == ["PDF has no pages: no page images"]
    assert pages_warnings(Outcome(page_count=3, pages=[None] * 2, skipped=[2]), REQUEST) == [  # type: ignore[list-item]
        "PDF: no image of page(s) 2: PDFium could not draw them"]


# -- the pipeline step ------------------------------------------------------------------------------


def pdf_item(rt: Runtime, make_item: MakeItem, data: bytes, name: str = "statement.pdf") -> str:
    """An item being processed whose original (``data``) is in the vault, probed as a PDF."""
    item_id = make_item(ItemState.PROCESSING, filename=name, size=len(data), kind="pdf")
    original = rt.settings.data_path / "vault" / item(rt, item_id).storage_key
    original.parent.mkdir(parents=True, exist_ok=True)
    original.write_bytes(data)
    return item_id


def stored(rt: Runtime, key: str) -> bytes:
    with rt.vault.open(key) as found:
        return found.read()


def derivatives(rt: Runtime, item_id: str) -> list[Derivative]:
    with rt.db.sessions() as session:
        return list(session.scalars(select(Derivative).where(Derivative.item_id == item_id)))


def created(rt: Runtime, item_id: str) -> list[dict[str, object]]:
    with rt.db.sessions() as session:
        return [event.details for event in session.scalars(
            select(CustodyEvent).where(CustodyEvent.item_id == item_id, CustodyEvent.action == "derivative.created"))]


def test_the_step_stores_each_page_under_its_hash_and_records_the_index(rt: Runtime, make_item: MakeItem) -> None:
    item_id = pdf_item(rt, make_item, three_pages())
    assert pipeline.probe_original(rt, item_id) == [Step.MAKE_PAGES] and Step.MAKE_PAGES.queue == "transcode"
    pipeline.make_pages(rt, item_id)
    [index] = derivatives(rt, item_id)
    assert (index.kind, index.content_type) == (DerivativeKind.PAGES, "application/json")
    raw = stored(rt, index.key)
    assert hashlib.sha256(raw).hexdigest() == index.sha256 and len(raw) == index.size
    pages = read_pages(raw)
    assert pages.page_count == 3 and [page.number for page in pages.pages] == [1, 2, 3]
    images = []
    for page in pages.pages:
        key = page.key(item_id, "pages")
        assert key == f"derivatives/{item_id}/pages/{page.sha256}.png"
        data = stored(rt, key)
        assert hashlib.sha256(data).hexdigest() == page.sha256 and len(data) == page.size
        with Image.open(io.BytesIO(data)) as image:
            assert (image.format, image.size) == ("PNG", (page.width, page.height)) == ("PNG", (1240, 1754))
            images.append(image.tobytes())
    assert len(set(images)) == 3
    # One custody entry records the index, with how the pages were made.
    assert actions(rt, item_id) == ["derivative.created"]
    [details] = created(rt, item_id)
    method = details["method"]
    assert isinstance(method, dict)
    assert details == {"kind": "pages", "sha256": index.sha256, "size": index.size, "method": method}
    assert method == {
        "tool": "pypdfium2", "version": pypdfium2.version.PYPDFIUM_INFO.version,
        "pdfium": pypdfium2.version.PDFIUM_INFO.version, "width": 1240, "max_page_pixels": 16_000_000,
        "max_pages": 300, "format": "png", "forms": False, "page_count": 3,
        "pages": [{"number": page.number, "sha256": page.sha256} for page in pages.pages],
    }
    assert "/" not in json.dumps(method)  # no path or storage key on the record
    assert item(rt, item_id).warnings == [] and item(rt, item_id).cpu_seconds > 0

    # A retried step (a redelivered task) makes nothing more.
    pipeline.make_pages(rt, item_id)
    assert [d.id for d in derivatives(rt, item_id)] == [index.id]
    assert actions(rt, item_id) == ["derivative.created"]
    pipeline.finish_item(rt, item_id)
    assert item(rt, item_id).state == ItemState.READY


def test_an_encrypted_pdf_is_ready_with_a_warning_and_no_pages(rt: Runtime, make_item: MakeItem) -> None:
    item_id = pdf_item(rt, make_item, encrypted())
    pipeline.make_pages(rt, item_id)
    pipeline.make_pages(rt, item_id)  # again: the warning once
    pipeline.finish_item(rt, item_id)
    row = item(rt, item_id)
    assert (row.state, row.warnings, row.reason) == (ItemState.READY, ["PDF is encrypted: no page images"], None)
    assert derivatives(rt, item_id) == [] and actions(rt, item_id) == []
    assert not (rt.settings.data_path / "vault" / "derivatives" / item_id).exists()


def test_the_settings_bound_what_is_rendered(rt: Runtime, make_item: MakeItem) -> None:
    few = Runtime.build(rt.settings.model_copy(update={"pdf_max_pages": 2, "pdf_page_width": 600}))
    try:
        item_id = pdf_item(rt, make_item, three_pages())
        pipeline.make_pages(few, item_id)
        [index] = derivatives(rt, item_id)
        pages = read_pages(stored(rt, index.key))
        assert pages.page_count == 3 and [(p.number, p.width) for p in pages.pages] == [(1, 600), (2, 600)]
        assert item(rt, item_id).warnings == ["PDF has 3 pages: images of the first 2 only"]
    finally:
        few.close()
    small = Runtime.build(rt.settings.model_copy(update={"pdf_max_bytes": 1000}))
    try:
        item_id = pdf_item(rt, make_item, three_pages())
        pipeline.make_pages(small, item_id)
        assert item(rt, item_id).warnings == ["PDF is larger than 1,000 bytes: no page images"]
        assert derivatives(rt, item_id) == [] and item(rt, item_id).cpu_seconds == 0
    finally:
        small.close()


def test_a_renderer_stopped_by_its_budget_leaves_the_item_ready_with_the_reason(rt: Runtime, make_item: MakeItem) -> None:
    # The item's budget is the base (120 s): spend all but 2 s of it, and the bomb meets the rest.
    item_id = pdf_item(rt, make_item, cpu_bomb())
    with rt.db.transaction() as session:
        session.get_one(Item, item_id).cpu_seconds = rt.settings.cpu_budget_base_seconds - 2
    pipeline.make_pages(rt, item_id)
    row = item(rt, item_id)
    assert row.state == ItemState.PROCESSING and derivatives(rt, item_id) == []
    assert row.warnings == ["PDF: no page images (rendering stopped: used its CPU-time budget of 120 s)"]
    assert row.cpu_seconds >= rt.settings.cpu_budget_base_seconds - 0.5
    pipeline.make_pages(rt, item_id)  # retried with the budget spent: the same words, once
    assert item(rt, item_id).warnings == row.warnings


def test_a_step_taken_over_stores_nothing(rt: Runtime, make_item: MakeItem) -> None:
    item_id = pdf_item(rt, make_item, three_pages())
    run = Lease(item_id, Step.MAKE_PAGES.value)
    lease.claim(rt, run, counts_as_start=False)
    with lease.kept(rt, run):
        with rt.db.transaction() as session:  # another worker takes the step over
            row = session.get_one(Item, item_id)
            row.lease_holder = "worker-2.force.internal:77:aaaaaaaaaaaaaaaa"
            row.lease_expires_at = utcnow() + timedelta(seconds=60)
        with pytest.raises(LeaseLost):
            pipeline.make_pages(rt, item_id)
    assert derivatives(rt, item_id) == [] and actions(rt, item_id) == []
    assert not (rt.settings.data_path / "vault" / "derivatives" / item_id).exists()


# -- through a real server ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("pdf-server")
    server = Server(root, {"EVIDENCE_EMBEDDED_WORKER": "true"}).start()
    try:
        yield server
    finally:
        server.stop()


def test_an_uploaded_pdf_is_ready_with_its_pages(embedded: Server, tmp_path: Path) -> None:
    case = embedded.case("OP-PAGES")
    token = embedded.token()
    (tmp_path / "statement.pdf").write_bytes(three_pages())
    (tmp_path / "locked.pdf").write_bytes(encrypted())
    out = embedded.cli("upload", str(tmp_path / "statement.pdf"), str(tmp_path / "locked.pdf"), "--case", case,
                       "--server", embedded.url, "--token", token).stdout
    ids = {Path(line.split(maxsplit=2)[2]).name: line.split()[0] for line in out.splitlines()}
    statement = embedded.settled_item(ids["statement.pdf"])
    assert (statement["state"], statement["warnings"]) == ("ready", [])
    [made] = statement["derivatives"]
    assert made["kind"] == "pages"
    rt = embedded.runtime()
    try:
        [index] = derivatives(rt, statement["id"])
        assert index.sha256 == made["sha256"]
        pages = read_pages(stored(rt, index.key))
    finally:
        rt.close()
    assert pages.page_count == 3 and len(pages.pages) == 3
    locked = embedded.settled_item(ids["locked.pdf"])
    assert locked["state"] == "ready" and "PDF is encrypted: no page images" in locked["warnings"]
    assert [d["kind"] for d in locked["derivatives"]] == []
