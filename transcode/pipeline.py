"""The pipeline's steps, one function each.

Every step re-reads the item, returns at once if its work is already done (a redelivered
task must not duplicate a derivative or a custody event), does one thing, and commits the
result together with its custody event. The original is only ever read.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any

from sqlalchemy import select

from evidence import custody
from evidence.custody.actions import Action
from evidence.models import Derivative, DerivativeKind, Item, ItemState
from evidence.runtime import Runtime
from evidence.uploads.client_hash import NO_CLIENT_HASH
from evidence.vault import ObjectExists, VaultError
from transcode import archive, budget, exif, fence, ffmpeg, formats, probe, probe_child, recognise, sniff, textcopy
from transcode.errors import NOT_THE_STEPS, MediaFailure, describe
from transcode.failing import actor as _actor
from transcode.failing import fail
from transcode.failing import subject as _subject
from transcode.hashing import hash_stream
from transcode.pdfpages import index_json, pages_method, pages_request, pages_warnings, render_pages, stored_pages
from transcode.run import FFmpegError, RunResult, run_ffmpeg
from transcode.seekable import RangeFile
from transcode.steps import Step

log = logging.getLogger(__name__)
PROGRESS_EVERY = 2.0  # seconds between progress writes
MEDIA_SUFFIXES = recognise.MEDIA_SUFFIXES
# What a recorded command line calls its inputs (never a path or a presigned URL).
ORIGINAL = "original"
PROXY_INPUT = "working copy: proxy"
PROBE_TIMEOUT = 600  # seconds of wall time for a probe (its CPU time is bounded separately)
# The steps after the probe, by what the file is (the item's kind); then finish_item.
PLAN: dict[str, list[Step]] = {
    # The proxy first: it is what a reviewer waits for, and on the remux path it takes seconds
    # while the full decode that validates the footage takes as long as the footage plays at
    # decoding speed (minutes for a long clip). Validation still decides whether the item is
    # ready; a proxy made from footage that then fails it stays on the record with the failure.
    "video": [Step.MAKE_PROXY, Step.VALIDATE_MEDIA, Step.MAKE_STILLS],
    # The working copy first, as for video: it is what the reviewer waits for.
    "audio": [Step.MAKE_AUDIO, Step.VALIDATE_MEDIA],
    "image": [Step.MAKE_VIEW, Step.MAKE_THUMBNAIL],
    "archive": [Step.MAKE_MANIFEST, Step.MAKE_PREVIEWS],
    "pdf": [Step.MAKE_PAGES],
    "text": [Step.MAKE_TEXT],
    "other": [],
}


# -- helpers -------------------------------------------------------------------------------


def _load(rt: Runtime, item_id: str) -> Item | None:
    with rt.db.sessions() as session:
        item = session.get(Item, item_id)
        if item is None:
            log.warning("item %s does not exist; nothing to do", item_id)
        return item


def _processing(rt: Runtime, item_id: str) -> Item | None:
    """The item, if it is still being processed (not failed, quarantined or finished)."""
    item = _load(rt, item_id)
    return item if item is not None and item.state == ItemState.PROCESSING else None


def _has(rt: Runtime, item_id: str, kind: DerivativeKind) -> bool:
    with rt.db.sessions() as session:
        return session.scalar(select(Derivative.id).where(Derivative.item_id == item_id, Derivative.kind == kind)) is not None


def _derivative(rt: Runtime, item_id: str, kind: DerivativeKind) -> Derivative | None:
    with rt.db.sessions() as session:
        return session.scalar(select(Derivative).where(Derivative.item_id == item_id, Derivative.kind == kind))


def _progress_writer(rt: Runtime, item_id: str) -> Callable[[float], None]:
    last = [0.0]

    def write(percent: float) -> None:
        # A run whose step was taken over stops here (ffmpeg with it) rather than at its end.
        fence.check()
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY and percent < 100:
            return
        last[0] = now
        with rt.db.transaction() as session:
            item = session.get(Item, item_id, with_for_update=True)
            if item is not None:
                fence.guard(item)
                item.progress = round(min(max(percent, 0.0), 100.0), 1)

    return write


@contextmanager
def _workdir(rt: Runtime) -> Iterator[Path]:
    rt.settings.effective_tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=rt.settings.effective_tmp_dir, prefix=fence.work_prefix()) as folder:
        yield Path(folder)


def _store_derivative(
    rt: Runtime, item_id: str, kind: DerivativeKind, path: Path, name: str, content_type: str, method: dict[str, Any],
    *, key: str | None = None,
) -> None:
    """Put a working copy in the vault and record it, once.

    By default the key carries the content's hash, so a retry that made the same bytes
    finds them already stored (and a different result never replaces an earlier one)."""
    with open(path, "rb") as stream:
        hashes, size = hash_stream(stream)
    sha256 = hashes["sha256"]
    if key is None:
        stem, dot, ext = name.rpartition(".")
        key = f"derivatives/{item_id}/{stem}-{sha256[:16]}{dot}{ext}"
    _put_once(rt, key, path)
    with rt.db.transaction() as session:
        item = session.get_one(Item, item_id, with_for_update=True)
        fence.guard(item)
        exists = session.scalar(select(Derivative.id).where(Derivative.item_id == item_id, Derivative.kind == kind))
        if exists is not None:
            return
        session.add(
            Derivative(item_id=item_id, kind=kind, key=key, sha256=sha256, size=size, content_type=content_type, method=method)
        )
        custody.record(
            session,
            Action.DERIVATIVE_CREATED,
            _subject(session, item),
            _actor(),
            # The storage key stays out: where it is kept is ours, what it is (its hash) is the record's.
            {"kind": kind, "sha256": sha256, "size": size, "method": method},
        )


def _put_once(rt: Runtime, key: str, path: Path) -> None:
    fence.check()  # a run whose step was taken over stores nothing more
    try:
        rt.vault.put_file(key, path)
    except ObjectExists:
        pass  # the same bytes, stored by an attempt that died before recording them


def _ffmpeg_method(tool: ffmpeg.Tool, args: list[str], names: dict[str, str], work: Path | None = None) -> dict[str, Any]:
    """How a working copy was made, with its input named by what it is (``original``,
    ``working copy: proxy``), never by a local path or a presigned URL (which expires and carries
    a signature). Anything else inside the temporary ``work`` folder (HLS segment patterns, say)
    is recorded relative to it."""

    def name(arg: str) -> str:
        if arg in names:
            return names[arg]
        if work is not None and arg.startswith(f"{work}{os.sep}"):
            return arg[len(f"{work}{os.sep}") :]
        return arg

    return {"tool": "ffmpeg", "version": tool.version, "argv": ["ffmpeg", *map(name, args)]}


def _tool(rt: Runtime) -> ffmpeg.Tool:
    return ffmpeg.resolve_ffmpeg(rt.settings.ffmpeg_path)


def _pixel_limit(rt: Runtime, demuxer: str, kind: str | None) -> int:
    if kind == "image" or formats.is_image(demuxer):
        return rt.settings.max_image_pixels
    return rt.settings.max_video_pixels


def _original(rt: Runtime, item: Item) -> ffmpeg.Input:
    """The item's original as ffmpeg must open it: the demuxer recorded when it was probed."""
    demuxer = item.media.get("demuxer")
    if not demuxer:
        raise MediaFailure("no demuxer was recorded when the file was probed, so it cannot be opened safely")
    return ffmpeg.Input(
        rt.vault.tool_input(item.storage_key), demuxer, framerate=item.media.get("input_framerate"),
        max_pixels=_pixel_limit(rt, demuxer, item.kind),
    )


def _proxy_input(rt: Runtime, proxy: Derivative) -> ffmpeg.Input:
    """Our own proxy (always MP4), opened as carefully as an original."""
    return ffmpeg.Input(rt.vault.tool_input(proxy.key), "mov", max_pixels=rt.settings.max_video_pixels)


def _measured(rt: Runtime, item_id: str, tool: ffmpeg.Tool, args: list[str], *, duration: float | None) -> RunResult:
    """Run ffmpeg within what is left of the item's bounds and charge it the CPU time used.

    Raises MediaFailure when the bounds stopped it, or when a decoder met a picture larger than
    allowed (its headers said otherwise); other failures are the caller's to judge."""
    limits = budget.limits_for(rt, item_id)
    wall = rt.settings.task_time_limit_seconds - 120
    try:
        result = run_ffmpeg(
            tool, args, duration=duration, on_progress=_progress_writer(rt, item_id), timeout=wall, limits=limits,
        )
    except FFmpegError as error:
        budget.charge(rt, item_id, error.cpu_seconds)
        if error.timed_out:
            raise MediaFailure(f"stopped: took longer than the time limit of {wall} s") from None
        if error.stopped:
            raise MediaFailure(error.stopped) from None
        if error.over_pixels:
            raise MediaFailure(_over_pixels(args)) from None
        raise
    budget.charge(rt, item_id, result.cpu_seconds)
    if result.over_pixels:
        raise MediaFailure(_over_pixels(args))
    return result


def _over_pixels(args: list[str]) -> str:
    limit = int(args[args.index("-max_pixels") + 1]) if "-max_pixels" in args else 0
    return (
        f"a frame is larger than the {recognise.megapixels(limit)} allowed, although the file's headers declared"
        " a smaller size: it was not decoded"
    )


def _run(rt: Runtime, item_id: str, tool: ffmpeg.Tool, args: list[str], *, duration: float | None, what: str) -> RunResult:
    try:
        return _measured(rt, item_id, tool, args, duration=duration)
    except MediaFailure as failure:
        raise MediaFailure(f"{failure} ({what})") from None
    except FFmpegError as error:
        raise MediaFailure(f"{what} failed: ffmpeg exited {error.returncode}: {_last_line(error.stderr_tail)}") from None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


def _media_step(rt: Runtime, item_id: str, step: Callable[[Item], None], what: str) -> None:
    """Run one step on an item still being processed. Whatever the file provokes ends the item
    ``failed`` with a plain reason; only transient trouble (storage, database) and the task's
    own time limit go back to the task, to be retried or reported there."""
    item = _processing(rt, item_id)
    if item is None:
        return
    try:
        step(item)
    except MediaFailure as failure:
        fail(rt, item_id, str(failure))
    except NOT_THE_STEPS:
        raise
    except Exception as error:
        log.exception("%s: unexpected error on item %s", what, item_id)
        fail(rt, item_id, f"{what} failed: {describe(error)}")


# -- 1. hash ---------------------------------------------------------------------------------


def hash_original(rt: Runtime, item_id: str) -> bool:
    """Hash the original as stored and compare with the officer's hash. True when the item
    may go on to be processed."""
    item = _load(rt, item_id)
    if item is None or ItemState(item.state).settled:
        return False
    if item.hashes.get("sha256"):
        return item.state == ItemState.PROCESSING
    try:
        return _hash(rt, item)
    except NOT_THE_STEPS:
        raise
    except Exception as error:
        log.exception("hashing: unexpected error on item %s", item_id)
        fail(rt, item_id, f"hashing the original failed: {describe(error)}")
        return False


def _hash(rt: Runtime, item: Item) -> bool:
    item_id = item.id
    with rt.vault.open(item.storage_key) as stream:
        progress = _progress_writer(rt, item_id)
        hashes, size = hash_stream(stream, rt.settings.hash_algorithms, lambda n: progress(100 * n / max(item.size, 1)))
    with rt.db.transaction() as session:
        item = session.get_one(Item, item_id, with_for_update=True)
        fence.guard(item)
        if item.hashes.get("sha256"):
            return item.state == ItemState.PROCESSING
        subject = _subject(session, item)
        item.hashes, item.progress = hashes, None
        # Where it is stored is the server's business, not the record's: the hashes identify it.
        custody.record(session, Action.ORIGINAL_HASHED, subject, _actor(), {"hashes": hashes, "size": size})
        problems: list[str] = []
        if size != item.size:
            problems.append(f"the stored original is {size} bytes, not the {item.size} received")
        if item.client_sha256 and item.client_sha256 != hashes["sha256"]:
            problems.append(f"its SHA-256 {hashes['sha256']} differs from the officer's {item.client_sha256}")
        if problems:
            item.state, item.reason = ItemState.QUARANTINED, "; ".join(problems)
            custody.record(
                session, Action.INTEGRITY_MISMATCH, subject, _actor(),
                {"stored_sha256": hashes["sha256"], "client_sha256": item.client_sha256, "size": size},
            )
        else:
            item.state = ItemState.PROCESSING
            if item.client_sha256:
                custody.record(session, Action.INTEGRITY_VERIFIED, subject, _actor(), {"sha256": hashes["sha256"]})
            else:
                item.warnings = [*item.warnings, NO_CLIENT_HASH]
    try:
        rt.vault.tag(item.storage_key, hashes)
    except VaultError as error:
        log.warning("could not tag %s with its hashes: %s", item.storage_key, error)
    return item.state == ItemState.PROCESSING


# -- 2. probe and route ---------------------------------------------------------------------


def probe_original(rt: Runtime, item_id: str) -> list[Step] | None:
    """Recognise the file, keep the probe as a derivative, and return the steps it needs
    (None when the item cannot go on)."""
    item = _processing(rt, item_id)
    if item is None:
        return None
    if item.kind is None:
        try:
            _probe(rt, item)
        except MediaFailure as failure:
            fail(rt, item_id, str(failure))
            return None
        except NOT_THE_STEPS:
            raise
        except Exception as error:
            log.exception("probing: unexpected error on item %s", item_id)
            fail(rt, item_id, f"probing the file failed: {describe(error)}")
            return None
        item = _processing(rt, item_id)
        if item is None:
            return None
    steps = list(PLAN.get(item.kind or "other", []))
    if item.kind == "video" and (item.media.get("duration") or 0) >= rt.settings.hls_min_seconds:
        steps.append(Step.MAKE_HLS)
    return steps


def _read(rt: Runtime, item: Item, start: int, end: int) -> bytes:
    with rt.vault.open(item.storage_key, start, min(end, item.size)) as stream:
        return stream.read()


def _probe(rt: Runtime, item: Item) -> None:
    """Decide what the file is and how it may be opened, from its bytes (see
    :mod:`transcode.recognise`); media is probed in a bounded child with its demuxer named."""
    if item.size == 0:
        raise MediaFailure("the file is empty (0 bytes)")
    bounds = recognise.Bounds(rt.settings.max_image_pixels, rt.settings.max_video_pixels)
    head = _read(rt, item, 0, sniff.PROBE_BYTES)
    verdict = recognise.before_probe(head, bounds)
    if verdict is None:
        sniffable = head
        tag = sniff.id3_length(head)
        if len(head) - 4096 < tag < item.size:
            # An ID3 tag (cover art) larger than the probing window: look at what follows it.
            sniffable = _read(rt, item, tag, tag + sniff.PROBE_BYTES)
        suffix = PurePath(item.filename).suffix.lower()
        raw = probe.RAW_FORMATS.get(suffix)
        framerate = (item.upload_metadata or {}).get("framerate") if raw else None
        location = rt.vault.tool_input(item.storage_key)
        request = probe_child.Request(
            location, head=sniffable, raw=raw, framerate=framerate,
            max_image_pixels=bounds.max_image_pixels, max_video_pixels=recognise.pixel_limit(head, bounds),
        )
        outcome = probe_child.run(request, limits=budget.limits_for(rt, item.id), timeout=PROBE_TIMEOUT)
        budget.charge(rt, item.id, outcome.cpu_seconds)
        if outcome.stopped:
            log.warning("probe of item %s stopped: %s\n%s", item.id, outcome.stopped, outcome.log_tail)
            raise MediaFailure(f"{outcome.stopped} (probing the file)")
        verdict = recognise.after_probe(head, suffix, outcome, bounds, raw=raw, framerate=framerate)
        if verdict.failure:
            # The message may quote the input, which can be a presigned URL: name the file.
            raise MediaFailure(verdict.failure.replace(location, item.filename))
    if verdict.failure:
        raise MediaFailure(verdict.failure)
    if verdict.probe is not None:
        with _workdir(rt) as work:
            path = work / "probe.json"
            path.write_bytes(probe.probe_json(verdict.probe, filename=item.filename))
            _store_derivative(rt, item.id, DerivativeKind.PROBE, path, "probe.json", "application/json", probe.method())
    _route(rt, item, verdict.kind or "other", verdict.summary, verdict.warnings)


def _route(
    rt: Runtime, item: Item, kind: str, summary: dict[str, Any] | None = None, warnings: list[str] | None = None
) -> None:
    """Record what the file is (``kind``, the media summary) and any warnings about it."""
    with rt.db.transaction() as session:
        row = session.get_one(Item, item.id, with_for_update=True)
        fence.guard(row)
        row.kind, row.media = kind, summary or {}
        row.warnings = [*row.warnings, *[w for w in warnings or [] if w not in row.warnings]]


# -- 3. validate ----------------------------------------------------------------------------


def validate_media(rt: Runtime, item_id: str) -> None:
    def validate(item: Item) -> None:
        if item.media.get("validated"):
            return
        tool = _tool(rt)
        args = ffmpeg.validate_args(_original(rt, item), threads=rt.settings.ffmpeg_threads)
        warnings: list[str] = []
        try:
            result = _measured(rt, item_id, tool, args, duration=item.media.get("duration"))
            decoded, complaint = result.frame, _last_line(result.stderr_tail) if result.stderr_tail.strip() else None
        except FFmpegError as error:
            decoded, complaint = None, _last_line(error.stderr_tail)
        declared = item.media.get("frames")
        if item.kind == "video" and not decoded:
            raise MediaFailure(f"no video frame could be decoded ({complaint or 'ffmpeg gave no reason'})")
        # A frame or two of slack: AVI counts the empty chunks that mark dropped frames.
        if declared and decoded is not None and decoded < declared * 0.98 - 1:
            warnings.append(f"decoded {decoded} of the {declared} frames the file declares: it may be truncated or damaged")
        elif complaint:
            warnings.append(f"the decoder reported: {complaint}")
        with rt.db.transaction() as session:
            row = session.get_one(Item, item_id, with_for_update=True)
            fence.guard(row)
            row.media = {**row.media, "validated": True, "decoded_frames": decoded}
            row.warnings = [*row.warnings, *[w for w in warnings if w not in row.warnings]]
            row.progress = None

    _media_step(rt, item_id, validate, "validating the media")


# -- 4. working copies ----------------------------------------------------------------------


def make_proxy(rt: Runtime, item_id: str) -> None:
    def proxy(item: Item) -> None:
        if _has(rt, item_id, DerivativeKind.PROXY):
            return
        tool = _tool(rt)
        source = _original(rt, item)
        remux = source.demuxer not in probe.RAW_FORMATS.values() and probe.is_browser_playable(item.media)
        with _workdir(rt) as work:
            out = work / "proxy.mp4"
            args = ffmpeg.proxy_args(
                source, str(out), remux=remux, has_audio=bool(item.media.get("audio_codec")),
                threads=rt.settings.ffmpeg_threads,
            )
            _run(rt, item_id, tool, args, duration=item.media.get("duration"), what="making the proxy")
            method = _ffmpeg_method(tool, args, {source.url: ORIGINAL, str(out): "proxy.mp4"})
            method["remux"] = remux
            _store_derivative(rt, item_id, DerivativeKind.PROXY, out, "proxy.mp4", "video/mp4", method)

    _media_step(rt, item_id, proxy, "making the proxy")


def make_stills(rt: Runtime, item_id: str) -> None:
    def stills(item: Item) -> None:
        tool = _tool(rt)
        source = _original(rt, item)
        duration = float(item.media.get("duration") or 0)
        names = {source.url: ORIGINAL}
        if source.demuxer in ffmpeg.UNSEEKABLE:
            # A raw elementary stream cannot be seeked: take the stills from its proxy,
            # which has real timestamps and a keyframe every 2 s.
            proxy = _derivative(rt, item_id, DerivativeKind.PROXY)
            if proxy is None:
                raise MediaFailure("no proxy to take stills from")
            source = _proxy_input(rt, proxy)
            names = {source.url: PROXY_INPUT}
            duration = _proxy_duration(rt, item_id, source)
        with _workdir(rt) as work:
            if not _has(rt, item_id, DerivativeKind.POSTER):
                out = work / "poster.jpg"
                args = ffmpeg.poster_args(source, str(out), at_seconds=duration * 0.1)
                _run(rt, item_id, tool, args, duration=None, what="making the poster")
                _store_derivative(rt, item_id, DerivativeKind.POSTER, out, "poster.jpg", "image/jpeg",
                                  _ffmpeg_method(tool, args, {**names, str(out): "poster.jpg"}))
            if duration > 0 and not _has(rt, item_id, DerivativeKind.CONTACT_SHEET):
                out = work / "contact-sheet.jpg"
                args = ffmpeg.contact_sheet_args(source, str(out), duration=duration)
                _run(rt, item_id, tool, args, duration=None, what="making the contact sheet")
                _store_derivative(rt, item_id, DerivativeKind.CONTACT_SHEET, out, "contact-sheet.jpg", "image/jpeg",
                                  _ffmpeg_method(tool, args, {**names, str(out): "contact-sheet.jpg"}))

    _media_step(rt, item_id, stills, "making the stills")


def _proxy_duration(rt: Runtime, item_id: str, proxy: ffmpeg.Input) -> float:
    request = probe_child.Request(proxy.location, demuxer=proxy.demuxer, max_video_pixels=proxy.max_pixels)
    outcome = probe_child.run(request, limits=budget.limits_for(rt, item_id), timeout=PROBE_TIMEOUT)
    budget.charge(rt, item_id, outcome.cpu_seconds)
    if outcome.data is None:
        raise MediaFailure(f"the proxy could not be read back: {outcome.stopped or outcome.error or 'no answer'}")
    return float(probe.summarise(outcome.data).get("duration") or 0)


def make_hls(rt: Runtime, item_id: str) -> None:
    """HLS (fMP4 segments) cut from the proxy without re-encoding: the proxy already has a
    keyframe every 2 s, so a reviewer can start anywhere in hours of footage."""

    def hls(item: Item) -> None:
        proxy = _derivative(rt, item_id, DerivativeKind.PROXY)
        if proxy is None or _has(rt, item_id, DerivativeKind.HLS):
            return
        tool = _tool(rt)
        source = _proxy_input(rt, proxy)
        with _workdir(rt) as work:
            out = work / "hls"
            out.mkdir()
            args = ffmpeg.hls_args(source, str(out))
            _run(rt, item_id, tool, args, duration=item.media.get("duration"), what="making HLS")
            prefix = f"derivatives/{item_id}/hls-{proxy.sha256[:16]}"
            files: dict[str, str] = {}
            for path in sorted(out.iterdir()):
                with open(path, "rb") as stream:
                    files[path.name] = hash_stream(stream)[0]["sha256"]
                if path.name != "index.m3u8":
                    _put_once(rt, f"{prefix}/{path.name}", path)
            method = _ffmpeg_method(tool, args, {source.url: PROXY_INPUT}, work)
            method["segments"] = files
            # The playlist is the derivative; its segments sit beside it under the same prefix.
            _store_derivative(rt, item_id, DerivativeKind.HLS, out / "index.m3u8", "index.m3u8", "application/vnd.apple.mpegurl",
                              method, key=f"{prefix}/index.m3u8")

    _media_step(rt, item_id, hls, "making HLS")


def make_thumbnail(rt: Runtime, item_id: str) -> None:
    def thumbnail(item: Item) -> None:
        if _has(rt, item_id, DerivativeKind.THUMBNAIL):
            return
        tool = _tool(rt)
        source = _original(rt, item)
        with _workdir(rt) as work:
            out = work / "thumbnail.jpg"
            args = ffmpeg.thumbnail_args(source, str(out))
            _run(rt, item_id, tool, args, duration=None, what="making the thumbnail")
            _store_derivative(rt, item_id, DerivativeKind.THUMBNAIL, out, "thumbnail.jpg", "image/jpeg",
                              _ffmpeg_method(tool, args, {source.url: ORIGINAL, str(out): "thumbnail.jpg"}))

    _media_step(rt, item_id, thumbnail, "making the thumbnail")


def make_view(rt: Runtime, item_id: str) -> None:
    """An image at screen size, turned upright (EXIF orientation), as JPEG without metadata; and
    the EXIF tags listed in the item's media (read from the original's first bytes only)."""

    def view(item: Item) -> None:
        if "exif" in item.media and _has(rt, item_id, DerivativeKind.VIEW):
            return
        head = _read(rt, item, 0, sniff.PROBE_BYTES)
        if "exif" not in item.media:
            tags = exif.read(head)
            with rt.db.transaction() as session:
                row = session.get_one(Item, item_id, with_for_update=True)
                fence.guard(row)
                row.media = {**row.media, "exif": tags}
        if _has(rt, item_id, DerivativeKind.VIEW):
            return
        tool = _tool(rt)
        source = _original(rt, item)
        with _workdir(rt) as work:
            out = work / "view.jpg"
            args = ffmpeg.view_args(source, str(out))
            _run(rt, item_id, tool, args, duration=None, what="making the image's working copy")
            method = _ffmpeg_method(tool, args, {source.url: ORIGINAL, str(out): "view.jpg"})
            method["exif_orientation"] = exif.orientation(head)  # what -autorotate turned it by (None: none given)
            _store_derivative(rt, item_id, DerivativeKind.VIEW, out, "view.jpg", "image/jpeg", method)

    _media_step(rt, item_id, view, "making the image's working copy")


def make_audio(rt: Runtime, item_id: str) -> None:
    """AAC in MP4 (at most two channels, moov first), bounded like the video proxy."""

    def audio(item: Item) -> None:
        if _has(rt, item_id, DerivativeKind.AUDIO):
            return
        tool = _tool(rt)
        source = _original(rt, item)
        with _workdir(rt) as work:
            out = work / "audio.m4a"
            args = ffmpeg.audio_args(source, str(out), threads=rt.settings.ffmpeg_threads)
            _run(rt, item_id, tool, args, duration=item.media.get("duration"), what="making the audio working copy")
            method = _ffmpeg_method(tool, args, {source.url: ORIGINAL, str(out): "audio.m4a"})
            _store_derivative(rt, item_id, DerivativeKind.AUDIO, out, "audio.m4a", "audio/mp4", method)

    _media_step(rt, item_id, audio, "making the audio working copy")


def make_text(rt: Runtime, item_id: str) -> None:
    """A text file's first bytes (``text_copy_bytes``) as UTF-8, for the reviewer to read."""

    def text(item: Item) -> None:
        if _has(rt, item_id, DerivativeKind.TEXT):
            return
        head = _read(rt, item, 0, rt.settings.text_copy_bytes)
        encoding = textcopy.encoding_of(head)
        if encoding is None:  # only if text_copy_bytes is below textcopy.LOOK and the bytes past it are binary
            log.warning("item %s: its first %d bytes are not text; no text working copy", item_id, len(head))
            return
        copy = textcopy.make_copy(head, item.size, encoding)
        with _workdir(rt) as work:
            out = work / "text.txt"
            out.write_bytes(copy.text)
            _store_derivative(rt, item_id, DerivativeKind.TEXT, out, "text.txt", "text/plain; charset=utf-8",
                              textcopy.method(copy, _our_version()))

    _media_step(rt, item_id, text, "making the text working copy")


def make_manifest(rt: Runtime, item_id: str) -> None:
    def manifest(item: Item) -> None:
        if _has(rt, item_id, DerivativeKind.MANIFEST):
            return
        opener = lambda start, end: rt.vault.open(item.storage_key, start, end)  # noqa: E731
        with RangeFile(item.size, opener) as file, _workdir(rt) as work:
            try:
                found = archive.build_manifest(file, progress=_progress_writer_bytes(rt, item_id, item.size))
            except archive.ArchiveRefused as refused:
                raise MediaFailure(f"archive refused: {refused}") from None
            except archive.ArchiveError as error:
                raise MediaFailure(f"not a readable ZIP archive: {error}") from None
            path = work / "manifest.json"
            path.write_bytes(archive.manifest_json(found))
            _store_derivative(rt, item_id, DerivativeKind.MANIFEST, path, "manifest.json", "application/json",
                              {"tool": "transcode.archive", "format": archive.FORMAT, "version": _our_version()})
        warnings = list(found.get("warnings") or [])
        if warnings:
            with rt.db.transaction() as session:
                row = session.get_one(Item, item_id, with_for_update=True)
                fence.guard(row)
                row.warnings = [*row.warnings, *[w for w in warnings if w not in row.warnings]]

    _media_step(rt, item_id, manifest, "listing the archive")


def make_previews(rt: Runtime, item_id: str) -> None:
    """Previews of the images and videos a ZIP holds, from its manifest (:mod:`transcode.previews`)."""

    def previews(item: Item) -> None:
        manifest = _derivative(rt, item_id, DerivativeKind.MANIFEST)
        if manifest is None or _has(rt, item_id, DerivativeKind.PREVIEWS):
            return
        # Imported here: transcode.previews builds on this module's helpers.
        from transcode import previews as contents

        contents.make(rt, item, manifest)

    _media_step(rt, item_id, previews, "making previews of the archive's contents")


def _our_version() -> str:
    try:
        return importlib.metadata.version("evidence-transfer")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _progress_writer_bytes(rt: Runtime, item_id: str, total: int) -> Callable[[int], None]:
    write = _progress_writer(rt, item_id)
    return lambda done: write(100 * done / max(total, 1))


# -- 4b. a PDF's pages -------------------------------------------------------------------------

PAGES_TIMEOUT = 900  # seconds of wall time for rendering a PDF's pages (their CPU time is bounded separately)


def make_pages(rt: Runtime, item_id: str) -> None:
    """A PDF's first pages as images (:mod:`transcode.pdfpages`), each stored under its own hash,
    and their index as the item's ``pages`` working copy.

    Whatever the file provokes (encrypted, damaged, too large, the renderer stopped by its
    bounds) is a warning on the item, which still becomes ready, as a file of a format we do not
    open is kept with a warning (transcode.recognise, rule 3): the original is intact and
    verified, and only the page images are missing. Pages made before the renderer was stopped
    are kept, and the warning says how many."""

    def pages(item: Item) -> None:
        if _has(rt, item_id, DerivativeKind.PAGES):
            return
        request = pages_request(rt.settings)
        if item.size > rt.settings.pdf_max_bytes:
            _add_warnings(rt, item_id, [f"PDF is larger than {rt.settings.pdf_max_bytes:,} bytes: no page images"])
            return
        try:
            limits = budget.limits_for(rt, item_id)
        except MediaFailure as spent:
            _add_warnings(rt, item_id, [f"PDF: no page images (rendering {spent})"])
            return
        with _workdir(rt) as work:
            # A local copy: the renderer is given this one file and its output folder, nothing else.
            copy, out = work / "original.pdf", work / "pages"
            out.mkdir()
            with rt.vault.open(item.storage_key) as stream, open(copy, "wb") as local:
                shutil.copyfileobj(stream, local, 1024 * 1024)
            outcome = render_pages(copy, out, request, limits=limits, timeout=PAGES_TIMEOUT,
                                   on_progress=_progress_writer(rt, item_id))
            budget.charge(rt, item_id, outcome.cpu_seconds)
            if outcome.stopped:
                log.warning("rendering the pages of item %s %s\n%s", item_id, outcome.stopped, outcome.log_tail)
            made = stored_pages(outcome)
            for page, path in made:
                _put_once(rt, page.key(item_id, DerivativeKind.PAGES), path)
            if made:
                index = work / "pages.json"
                index.write_bytes(index_json(outcome, [page for page, _ in made]))
                _store_derivative(rt, item_id, DerivativeKind.PAGES, index, "pages.json", "application/json",
                                  pages_method(outcome, request, [page for page, _ in made]))
        _add_warnings(rt, item_id, pages_warnings(outcome, request))

    _media_step(rt, item_id, pages, "making the page images")


def _add_warnings(rt: Runtime, item_id: str, warnings: list[str]) -> None:
    if not warnings:
        return
    with rt.db.transaction() as session:
        row = session.get_one(Item, item_id, with_for_update=True)
        fence.guard(row)
        row.warnings = [*row.warnings, *[w for w in warnings if w not in row.warnings]]


# -- 5. done --------------------------------------------------------------------------------


def finish_item(rt: Runtime, item_id: str) -> None:
    with rt.db.transaction() as session:
        item = session.get(Item, item_id, with_for_update=True)
        if item is not None and item.state == ItemState.PROCESSING:
            fence.guard(item)
            item.state, item.progress = ItemState.READY, 100.0
