"""A PDF's pages as images, rendered by PDFium (pypdfium2) in a bounded child:
``python -m transcode.pdfpages``.

PDFium is C++ reading hostile bytes, so it never runs in the worker. The child is bounded as
the probe child is (:mod:`transcode.limits`: address space, CPU time, no core dumps) and also in
the size of each file it writes; the parent gives up on it after a wall-clock timeout. It is
given nothing but its input and its output folder: the PDF (a local copy of the original) as
its stdin, read-only; the output folder as its working directory; an environment without the
service's settings or credentials. Forms are never initialised, so no JavaScript or XFA runs
(and this PDFium build has no V8 or XFA in it at all: its build flags are empty); the reviewer
gets only images.

Pages are PNG: lossless, so a reviewer sees exactly what PDFium drew, with no compression
ringing around text that could be taken for a mark on the document. On text pages at this
width it is about the size of a JPEG at quality 85 (measured on WeasyPrint pages: 222 against
207 KiB with a few paragraphs, 425 against 445 KiB on a dense page). Encoding it (about 40 ms
a page) costs more than drawing the page; a whole page takes about 0.065 s of CPU time. A
scanned photograph would be larger as PNG than as JPEG; the output bound holds it.

The child writes one JSON line per event on stdout (the tool's versions, the page count, each
page as it is written, or why it cannot go on); whatever it does, the parent gets an
:class:`Outcome` holding the pages finished before it stopped.
"""

from __future__ import annotations

import io
import json
import math
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from evidence.settings import Settings
from evidence.workingcopies import Page, pages_index
from transcode import imagesize
from transcode import limits as bounds
from transcode.hashing import hash_stream
from transcode.limits import Limits

FORMAT: Final = "png"
CONTENT_TYPE: Final = "image/png"
MAX_SIDE: Final = 16384  # pixels on a page's longer side, whatever its shape (browsers draw up to about 32k)
FILE_SIZE_LIMIT: Final = 256 * 1024 * 1024  # RLIMIT_FSIZE: the largest file the child may write
OUTPUT_LIMIT: Final = 4 * 1024 * 1024  # its stdout: a line of a hundred bytes a page
LOG_TAIL: Final = 4096
POLL_SECONDS: Final = 1.0  # how often the parent reports progress while the child renders
# PDFium's load errors (FPDF_ERR_*), as the item's warning says them.
_LOAD_ERRORS: Final = {
    2: "PDF could not be read (a file error): no page images",
    3: "PDF could not be read (not in PDF format, or damaged): no page images",
    4: "PDF is encrypted: no page images",
    5: "PDF uses a security handler that is not supported: no page images",
    6: "PDF could not be read (a page is damaged): no page images",
}
_UNREADABLE: Final = "PDF could not be read (PDFium gave no reason): no page images"


@dataclass(frozen=True)
class Request:
    width: int  # pixels across a page, unless the page's shape or size needs it smaller
    max_pages: int
    max_page_pixels: int
    max_output_bytes: int  # all pages together: a PDF of noise cannot fill the worker's disk


@dataclass(frozen=True)
class Rendered:
    number: int  # from 1
    width: int
    height: int
    path: Path


@dataclass(frozen=True)
class Outcome:
    """What the child made. ``problem``: the PDF could not be opened (the warning for the
    item). ``stopped``: the child was stopped (its bounds, the timeout, a crash, the output
    limit); ``pages`` still holds what it finished before that."""

    tool: dict[str, str] = field(default_factory=dict)  # {"pypdfium2": ..., "pdfium": ...}
    page_count: int | None = None
    pages: list[Rendered] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # pages PDFium could not load or draw
    problem: str | None = None
    stopped: str | None = None
    cpu_seconds: float = 0.0
    log_tail: str = field(default="", repr=False)


def pages_request(settings: Settings) -> Request:
    return Request(settings.pdf_page_width, settings.pdf_max_pages, settings.pdf_max_page_pixels,
                   settings.pdf_max_output_bytes)


def pages_warnings(outcome: Outcome, request: Request) -> list[str]:
    """What the item's warnings say about its pages: why there are none, or which are missing."""
    if outcome.problem:
        return [outcome.problem]
    made, count = len(outcome.pages), outcome.page_count
    found = []
    if outcome.stopped:
        if made:
            found.append(f"PDF: images of the first {made} of {count} pages only (rendering {outcome.stopped})")
        else:
            found.append(f"PDF: no page images (rendering {outcome.stopped})")
    elif count == 0:
        found.append("PDF has no pages: no page images")
    elif count is not None and count > request.max_pages:
        found.append(f"PDF has {count} pages: images of the first {request.max_pages} only")
    if outcome.skipped:
        listed = ", ".join(map(str, outcome.skipped[:20])) + (" ..." if len(outcome.skipped) > 20 else "")
        found.append(f"PDF: no image of page(s) {listed}: PDFium could not draw them")
    return found


def stored_pages(outcome: Outcome) -> list[tuple[Page, Path]]:
    """Each page image as the index names it (by its SHA-256), with its file."""
    found = []
    for page in outcome.pages:
        with open(page.path, "rb") as stream:
            hashes, size = hash_stream(stream)
        found.append((Page(hashes["sha256"], size, CONTENT_TYPE, page.number, page.width, page.height), page.path))
    return found


def index_json(outcome: Outcome, pages: list[Page]) -> bytes:
    return pages_index(outcome.page_count or 0, pages)


def pages_method(outcome: Outcome, request: Request, pages: list[Page]) -> dict[str, Any]:
    """How the page images were made, for the custody record: enough to make them again."""
    return {
        "tool": "pypdfium2", "version": outcome.tool.get("pypdfium2"), "pdfium": outcome.tool.get("pdfium"),
        "width": request.width, "max_page_pixels": request.max_page_pixels, "max_pages": request.max_pages,
        "format": FORMAT, "forms": False, "page_count": outcome.page_count,
        "pages": [{"number": page.number, "sha256": page.sha256} for page in pages],
    }


def fit(width_pt: float, height_pt: float, request: Request) -> float:
    """The scale (pixels per point) a page is drawn at: ``request.width`` across, unless that
    would make more than ``max_page_pixels`` or a side longer than :data:`MAX_SIDE` (a huge or
    absurdly shaped MediaBox), when it is scaled down to fit."""
    width_pt, height_pt = max(width_pt, 1.0), max(height_pt, 1.0)
    # pypdfium2 rounds each side up: (w*s + 1) * (h*s + 1) <= limit, solved for s.
    area, sides = width_pt * height_pt, width_pt + height_pt
    within = (math.sqrt(sides * sides + 4 * area * (request.max_page_pixels - 1)) - sides) / (2 * area)
    longest = MAX_SIDE / max(width_pt, height_pt)
    # A hair under: a product that comes out at 1240.0000001 would be rounded up to 1241.
    return min(request.width / width_pt, within, longest) * (1 - 1e-9)


# -- the parent's side ------------------------------------------------------------------------


def render_pages(
    pdf: Path, out: Path, request: Request, *, limits: Limits | None, timeout: float,
    on_progress: Callable[[float], None] | None = None,
) -> Outcome:
    """Render ``pdf``'s pages into the folder ``out`` in a bounded child; never raises for
    anything the file does. ``on_progress`` gets a percentage about once a second; if it raises
    (the step was taken over), the child is killed and the exception goes on."""
    with open(pdf, "rb") as source:
        process = subprocess.Popen(
            # -P: the output folder (its working directory) is not put on the import path.
            [sys.executable, "-P", "-m", "transcode.pdfpages", json.dumps(asdict(request))],
            stdin=source, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=out,
            env=bounds.child_env(), preexec_fn=_preexec(limits),
        )
    stdout, stderr = process.stdout, process.stderr
    if not isinstance(stdout, io.BufferedReader) or not isinstance(stderr, io.BufferedReader):
        raise RuntimeError("the renderer child was started without buffered pipes")
    lines: list[bytes] = []
    log: list[bytes] = []
    readers = [
        threading.Thread(target=_read_lines, args=(stdout, lines), daemon=True),
        threading.Thread(target=_read_tail, args=(stderr, log), daemon=True),
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout
    finished = False
    try:
        while readers[0].is_alive() and time.monotonic() < deadline:
            readers[0].join(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
            if on_progress is not None:
                on_progress(_percent(lines, request))
        finished = True
    finally:
        timed_out = readers[0].is_alive()
        if timed_out or not finished:
            os.kill(process.pid, signal.SIGKILL)
        bounds.wait_ended(process)
        returncode, cpu_seconds = bounds.reap(process)
        for reader in readers:
            reader.join(5)
        stdout.close()
        stderr.close()
    tail = b"".join(log)[-LOG_TAIL:].decode("utf-8", "replace")
    outcome = _parse(lines, out)
    stopped = outcome.stopped
    if timed_out:
        stopped = f"stopped: rendering took longer than {timeout:.0f} s"
    elif returncode:
        stopped = _stopped(limits, returncode, cpu_seconds, tail)
    elif outcome.page_count is None and outcome.problem is None:
        stopped = "stopped: the renderer ended without an answer"
    if on_progress is not None:
        # Always once at the end, however quick the child was: a step taken over meanwhile
        # finds out here, before it stores anything.
        on_progress(100.0)
    return Outcome(outcome.tool, outcome.page_count, outcome.pages, outcome.skipped, outcome.problem, stopped,
                   cpu_seconds, tail)


def _stopped(limits: Limits | None, returncode: int, cpu_seconds: float, tail: str) -> str:
    if returncode == -signal.SIGXFSZ:
        return f"stopped: a page image was larger than {FILE_SIZE_LIMIT >> 20} MiB"
    if returncode == -signal.SIGABRT and limits is not None and cpu_seconds < limits.cpu_soft - 0.01:
        # PDFium aborts, silently, when an allocation fails (its out-of-memory handler).
        return (f"stopped: PDFium aborted, as it does when it cannot get memory"
                f" (the renderer may use {limits.memory_bytes / (1 << 20):,.0f} MiB)")
    reason = bounds.stopped_reason(limits, returncode, cpu_seconds, tail, child="renderer")
    return reason or f"stopped: the renderer ended with exit status {returncode}"


def _preexec(limits: Limits | None) -> Callable[[], None]:
    def apply() -> None:
        if limits is not None:
            bounds.apply(limits)
        # A page image larger than this kills the child (SIGXFSZ) rather than filling the disk.
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _percent(lines: list[bytes], request: Request) -> float:
    answers = [_json(line) for line in list(lines)]
    count = next((a["page_count"] for a in answers if isinstance(a.get("page_count"), int)), 0)
    done = sum(1 for a in answers if "number" in a)
    return 100.0 * done / max(1, min(count, request.max_pages))


def _json(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _parse(lines: list[bytes], out: Path) -> Outcome:
    """The child's answers, each checked: a page counts only if its file is a PNG in ``out``
    of the size the child says (the child is reading hostile bytes and is not trusted)."""
    tool: dict[str, str] = {}
    page_count: int | None = None
    pages: list[Rendered] = []
    skipped: list[int] = []
    problem = stopped = None
    for answer in map(_json, lines):
        if isinstance(answer.get("tool"), dict):
            tool = {str(k): str(v) for k, v in answer["tool"].items()}
        elif isinstance(answer.get("page_count"), int):
            page_count = answer["page_count"]
        elif "load_error" in answer:
            code = answer["load_error"]
            problem = _LOAD_ERRORS.get(code, _UNREADABLE) if isinstance(code, int) else _UNREADABLE
        elif answer.get("output_limit"):
            stopped = "stopped: the page images would take more room than allowed"
        elif isinstance(answer.get("skipped"), int):
            skipped.append(answer["skipped"])
        elif isinstance(answer.get("number"), int):
            page = _checked(answer, out)
            if page is None:
                stopped = f"stopped: the renderer's page {answer['number']} is not the PNG it reported"
                break
            pages.append(page)
    return Outcome(tool, page_count, pages, skipped, problem, stopped)


def _checked(answer: dict[str, Any], out: Path) -> Rendered | None:
    number = answer["number"]
    path = out / _name(number)
    try:
        with open(path, "rb") as image:
            head = image.read(32)
    except OSError:
        return None
    if imagesize.declared_size(head) != (answer.get("width"), answer.get("height")) or not head.startswith(b"\x89PNG"):
        return None
    return Rendered(number, answer["width"], answer["height"], path)


def _name(number: int) -> str:
    return f"page-{number:05d}.{FORMAT}"


def _read_lines(stream: io.BufferedReader, into: list[bytes]) -> None:
    """Keep the child's answers (up to :data:`OUTPUT_LIMIT` bytes), reading to the end so it
    never blocks on a full pipe."""
    size = 0
    # In pieces: a line is a hundred bytes, and one without an end must not grow without bound.
    for line in iter(lambda: stream.readline(65536), b""):
        size += len(line)
        if size <= OUTPUT_LIMIT:
            into.append(line)


def _read_tail(stream: io.BufferedReader, into: list[bytes]) -> None:
    size = 0
    for chunk in iter(lambda: stream.read1(65536), b""):
        into.append(chunk)
        size += len(chunk)
        while into and size - len(into[0]) >= LOG_TAIL:
            size -= len(into.pop(0))


# -- the child's side -------------------------------------------------------------------------


def _emit(answer: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


def _render(request: Request) -> None:
    # Imported here, in the child only: the worker never loads PDFium.
    import pypdfium2 as pdfium  # type: ignore[import-untyped]
    import pypdfium2.version  # type: ignore[import-untyped]

    _emit({"tool": {"pypdfium2": pypdfium2.version.PYPDFIUM_INFO.version,
                    "pdfium": pypdfium2.version.PDFIUM_INFO.version}})
    source = open(0, "rb", closefd=False)  # the PDF, on stdin: the one file this process was given
    try:
        # Never init_forms(): no form environment, so no JavaScript and no XFA.
        document = pdfium.PdfDocument(source)
    except pdfium.PdfiumError as error:
        _emit({"load_error": error.err_code})
        return
    count = len(document)
    _emit({"page_count": count})
    written = 0
    for index in range(min(count, request.max_pages)):
        number = index + 1
        try:
            page = document[index]
            width_pt, height_pt = page.get_size()
            scale = fit(width_pt, height_pt, request)
            bitmap = page.render(scale=scale, may_draw_forms=False)
            image = bitmap.to_pil()
        except pdfium.PdfiumError:
            traceback.print_exc()
            _emit({"skipped": number})
            continue
        image.save(_name(number), format=FORMAT)
        _emit({"number": number, "width": image.width, "height": image.height})
        written += os.path.getsize(_name(number))
        image.close()
        bitmap.close()
        page.close()
        if written > request.max_output_bytes:
            _emit({"output_limit": True})
            return


def main() -> int:
    request = Request(**json.loads(sys.argv[1]))
    try:
        _render(request)
    except MemoryError:
        print("MemoryError: out of memory while rendering", file=sys.stderr)  # where the parent looks
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
