"""The pipeline's steps, one function each.

Every step re-reads the item, returns at once if its work is already done (a redelivered
task must not duplicate a derivative or a custody event), does one thing, and commits the
result together with its custody event. The original is only ever read.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence import custody
from evidence.models import Case, Derivative, Item
from evidence.runtime import Runtime
from evidence.vault import ObjectExists, VaultError
from transcode import archive, ffmpeg, probe
from transcode.errors import MediaFailure
from transcode.hashing import hash_stream
from transcode.run import FFmpegError, run_ffmpeg
from transcode.seekable import RangeFile

log = logging.getLogger(__name__)
PROGRESS_EVERY = 2.0  # seconds between progress writes
# Files named like media that cannot be read as media are failed, not filed as "other".
MEDIA_SUFFIXES = frozenset(
    ".mp4 .m4v .mov .avi .mkv .3gp .3g2 .mpg .mpeg .ts .m2ts .vob .wmv .flv .webm .dav .h264 .264 .h265 .265 .hevc"
    " .mp3 .m4a .wav .amr .aac .ogg .flac .wma".split()
)
PLAN = {
    "video": ["validate_media", "make_proxy", "make_stills"],
    # Audio is validated and kept as it is; an audio-only working copy is still to come.
    "audio": ["validate_media"],
    "image": ["make_thumbnail"],
    "archive": ["make_manifest"],
    "pdf": [],
    "other": [],
}


# -- helpers -------------------------------------------------------------------------------


def _load(rt: Runtime, item_id: str) -> Item | None:
    with rt.db.sessions() as session:
        item = session.get(Item, item_id)
        if item is None:
            log.warning("item %s does not exist; nothing to do", item_id)
        return item


def _subject(session: Session, item: Item) -> dict[str, str]:
    case = session.get_one(Case, item.case_id)
    return {"case": case.ref, "item": item.id}


def _actor() -> str:
    return custody.system_actor("worker")


def fail(rt: Runtime, item_id: str, reason: str) -> None:
    """The item cannot be processed: say why. Its original and hashes stay as they are."""
    with rt.db.transaction() as session:
        item = session.get_one(Item, item_id, with_for_update=True)
        if item.state in ("failed", "quarantined"):
            return
        item.state, item.reason, item.progress = "failed", reason, None
        custody.record(session, "item.failed", _subject(session, item), _actor(), {"reason": reason})


def _processing(rt: Runtime, item_id: str) -> Item | None:
    """The item, if it is still being processed (not failed, quarantined or finished)."""
    item = _load(rt, item_id)
    return item if item is not None and item.state == "processing" else None


def _has(rt: Runtime, item_id: str, kind: str) -> bool:
    with rt.db.sessions() as session:
        return session.scalar(select(Derivative.id).where(Derivative.item_id == item_id, Derivative.kind == kind)) is not None


def _derivative(rt: Runtime, item_id: str, kind: str) -> Derivative | None:
    with rt.db.sessions() as session:
        return session.scalar(select(Derivative).where(Derivative.item_id == item_id, Derivative.kind == kind))


def _progress_writer(rt: Runtime, item_id: str) -> Callable[[float], None]:
    last = [0.0]

    def write(percent: float) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY and percent < 100:
            return
        last[0] = now
        with rt.db.transaction() as session:
            item = session.get(Item, item_id)
            if item is not None:
                item.progress = round(min(max(percent, 0.0), 100.0), 1)

    return write


@contextmanager
def _workdir(rt: Runtime) -> Iterator[Path]:
    rt.settings.effective_tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=rt.settings.effective_tmp_dir, prefix="work-") as folder:
        yield Path(folder)


def _store_derivative(
    rt: Runtime, item_id: str, kind: str, path: Path, name: str, content_type: str, method: dict[str, Any],
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
        exists = session.scalar(select(Derivative.id).where(Derivative.item_id == item_id, Derivative.kind == kind))
        if exists is not None:
            return
        session.add(
            Derivative(item_id=item_id, kind=kind, key=key, sha256=sha256, size=size, content_type=content_type, method=method)
        )
        custody.record(
            session,
            "derivative.created",
            _subject(session, item),
            _actor(),
            {"kind": kind, "key": key, "sha256": sha256, "size": size, "method": method},
        )


def _put_once(rt: Runtime, key: str, path: Path) -> None:
    try:
        rt.vault.put_file(key, path)
    except ObjectExists:
        pass  # the same bytes, stored by an attempt that died before recording them


def _ffmpeg_method(tool: ffmpeg.Tool, args: list[str], names: dict[str, str], work: Path | None = None) -> dict[str, Any]:
    """How a working copy was made, with local paths and presigned URLs (which expire and
    carry a signature) replaced by what they stand for. Anything else inside the temporary
    ``work`` folder (HLS segment patterns, say) is recorded relative to it."""

    def name(arg: str) -> str:
        if arg in names:
            return names[arg]
        if work is not None and arg.startswith(f"{work}{os.sep}"):
            return arg[len(f"{work}{os.sep}") :]
        return arg

    return {"tool": "ffmpeg", "version": tool.version, "argv": ["ffmpeg", *map(name, args)]}


def _tool(rt: Runtime) -> ffmpeg.Tool:
    return ffmpeg.resolve_ffmpeg(rt.settings.ffmpeg_path)


def _source(rt: Runtime, item: Item) -> tuple[str, str | None, str | None]:
    """(ffmpeg input, raw input format, frame rate) for an item's original."""
    raw = probe.RAW_FORMATS.get(PurePath(item.filename).suffix.lower())
    framerate = (item.upload_metadata or {}).get("framerate") if raw else None
    return rt.vault.tool_input(item.storage_key), raw, framerate


def _run(rt: Runtime, item_id: str, tool: ffmpeg.Tool, args: list[str], *, duration: float | None, what: str) -> Any:
    try:
        return run_ffmpeg(
            tool, args, duration=duration, on_progress=_progress_writer(rt, item_id),
            timeout=rt.settings.task_time_limit_seconds - 120,
        )
    except FFmpegError as error:
        raise MediaFailure(f"{what} failed: ffmpeg exited {error.returncode}: {_last_line(error.stderr_tail)}") from None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


def _media_step(rt: Runtime, item_id: str, step: Callable[[Item], None]) -> None:
    item = _processing(rt, item_id)
    if item is None:
        return
    try:
        step(item)
    except MediaFailure as failure:
        fail(rt, item_id, str(failure))


# -- 1. hash ---------------------------------------------------------------------------------


def hash_original(rt: Runtime, item_id: str) -> bool:
    """Hash the original as stored and compare with the officer's hash. True when the item
    may go on to be processed."""
    item = _load(rt, item_id)
    if item is None or item.state in ("failed", "quarantined", "ready"):
        return False
    if item.hashes.get("sha256"):
        return item.state == "processing"
    with rt.vault.open(item.storage_key) as stream:
        progress = _progress_writer(rt, item_id)
        hashes, size = hash_stream(stream, rt.settings.hash_algorithms, lambda n: progress(100 * n / max(item.size, 1)))
    with rt.db.transaction() as session:
        item = session.get_one(Item, item_id, with_for_update=True)
        if item.hashes.get("sha256"):
            return item.state == "processing"
        subject = _subject(session, item)
        item.hashes, item.progress = hashes, None
        custody.record(
            session, "original.hashed", subject, _actor(),
            {"hashes": hashes, "size": size, "storage_key": item.storage_key},
        )
        problems = []
        if size != item.size:
            problems.append(f"the stored original is {size} bytes, not the {item.size} received")
        if item.client_sha256 and item.client_sha256 != hashes["sha256"]:
            problems.append(f"its SHA-256 {hashes['sha256']} differs from the officer's {item.client_sha256}")
        if problems:
            item.state, item.reason = "quarantined", "; ".join(problems)
            custody.record(
                session, "integrity.mismatch", subject, _actor(),
                {"stored_sha256": hashes["sha256"], "client_sha256": item.client_sha256, "size": size},
            )
        else:
            item.state = "processing"
            if item.client_sha256:
                custody.record(session, "integrity.verified", subject, _actor(), {"sha256": hashes["sha256"]})
            else:
                item.warnings = [*item.warnings, "the upload carried no SHA-256 from the officer: integrity not cross-checked"]
    try:
        rt.vault.tag(item.storage_key, hashes)
    except VaultError as error:
        log.warning("could not tag %s with its hashes: %s", item.storage_key, error)
    return item.state == "processing"


# -- 2. probe and route ---------------------------------------------------------------------


def probe_original(rt: Runtime, item_id: str) -> list[str] | None:
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
        item = _processing(rt, item_id)
        if item is None:
            return None
    steps = list(PLAN.get(item.kind or "other", []))
    if item.kind == "video" and (item.media.get("duration") or 0) >= rt.settings.hls_min_seconds:
        steps.append("make_hls")
    return steps


def _probe(rt: Runtime, item: Item) -> None:
    if item.size == 0:
        raise MediaFailure("the file is empty (0 bytes)")
    with rt.vault.open(item.storage_key, 0, 64 * 1024) as stream:
        head = stream.read()
    kind = probe.classify(head, None)
    source, raw, framerate = _source(rt, item)
    suffix = PurePath(item.filename).suffix.lower()
    found: dict[str, Any] | None = None
    warnings: list[str] = []
    if kind in ("other", "image"):
        try:
            found = probe.probe(source, input_format=raw, framerate=framerate)
        except probe.ProbeError as error:
            if kind == "other" and (suffix in MEDIA_SUFFIXES or raw):
                # The message may quote the input, which can be a presigned URL: name the file.
                raise MediaFailure(str(error).replace(source, item.filename)) from None
        kind = probe.classify(head, found)
    summary = probe.summarise(found) if found else {}
    if summary.get("frame_rate_assumed") and kind == "video":
        warnings.append(
            f"frame rate assumed {summary.get('frame_rate') or probe.ASSUMED_FRAME_RATE:g}: the stream carries no timing;"
            " give the recorder's rate as 'framerate' upload metadata"
        )
    if found is not None:
        with _workdir(rt) as work:
            path = work / "probe.json"
            path.write_bytes(probe.probe_json(found, filename=item.filename))
            _store_derivative(rt, item.id, "probe", path, "probe.json", "application/json", probe.method())
    with rt.db.transaction() as session:
        row = session.get_one(Item, item.id, with_for_update=True)
        row.kind, row.media = kind, summary
        row.warnings = [*row.warnings, *[w for w in warnings if w not in row.warnings]]


# -- 3. validate ----------------------------------------------------------------------------


def validate_media(rt: Runtime, item_id: str) -> None:
    def validate(item: Item) -> None:
        if item.media.get("validated"):
            return
        tool = _tool(rt)
        source, raw, framerate = _source(rt, item)
        args = ffmpeg.validate_args(source, input_format=raw, framerate=framerate)
        warnings = []
        try:
            result = run_ffmpeg(tool, args, duration=item.media.get("duration"),
                                on_progress=_progress_writer(rt, item_id), timeout=rt.settings.task_time_limit_seconds - 120)
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
            row.media = {**row.media, "validated": True, "decoded_frames": decoded}
            row.warnings = [*row.warnings, *[w for w in warnings if w not in row.warnings]]
            row.progress = None

    _media_step(rt, item_id, validate)


# -- 4. working copies ----------------------------------------------------------------------


def make_proxy(rt: Runtime, item_id: str) -> None:
    def proxy(item: Item) -> None:
        if _has(rt, item_id, "proxy"):
            return
        tool = _tool(rt)
        source, raw, framerate = _source(rt, item)
        remux = not raw and probe.is_browser_playable(item.media)
        with _workdir(rt) as work:
            out = work / "proxy.mp4"
            args = ffmpeg.proxy_args(
                source, str(out), remux=remux, input_format=raw, framerate=framerate,
                has_audio=bool(item.media.get("audio_codec")), threads=rt.settings.ffmpeg_threads,
            )
            _run(rt, item_id, tool, args, duration=item.media.get("duration"), what="making the proxy")
            method = _ffmpeg_method(tool, args, {source: f"vault:{item.storage_key}", str(out): "proxy.mp4"})
            method["remux"] = remux
            _store_derivative(rt, item_id, "proxy", out, "proxy.mp4", "video/mp4", method)

    _media_step(rt, item_id, proxy)


def make_stills(rt: Runtime, item_id: str) -> None:
    def stills(item: Item) -> None:
        tool = _tool(rt)
        source, raw, framerate = _source(rt, item)
        duration = float(item.media.get("duration") or 0)
        names = {source: f"vault:{item.storage_key}"}
        if raw in ffmpeg.UNSEEKABLE:
            # A raw elementary stream cannot be seeked: take the stills from its proxy,
            # which has real timestamps and a keyframe every 2 s.
            proxy = _derivative(rt, item_id, "proxy")
            if proxy is None:
                raise MediaFailure("no proxy to take stills from")
            source, raw, framerate = rt.vault.tool_input(proxy.key), None, None
            names = {source: f"vault:{proxy.key}"}
            duration = float(probe.summarise(probe.probe(source)).get("duration") or 0)
        with _workdir(rt) as work:
            if not _has(rt, item_id, "poster"):
                out = work / "poster.jpg"
                args = ffmpeg.poster_args(source, str(out), at_seconds=duration * 0.1, input_format=raw, framerate=framerate)
                _run(rt, item_id, tool, args, duration=None, what="making the poster")
                _store_derivative(rt, item_id, "poster", out, "poster.jpg", "image/jpeg",
                                  _ffmpeg_method(tool, args, {**names, str(out): "poster.jpg"}))
            if duration > 0 and not _has(rt, item_id, "contact_sheet"):
                out = work / "contact-sheet.jpg"
                args = ffmpeg.contact_sheet_args(source, str(out), duration=duration, input_format=raw, framerate=framerate)
                _run(rt, item_id, tool, args, duration=None, what="making the contact sheet")
                _store_derivative(rt, item_id, "contact_sheet", out, "contact-sheet.jpg", "image/jpeg",
                                  _ffmpeg_method(tool, args, {**names, str(out): "contact-sheet.jpg"}))

    _media_step(rt, item_id, stills)


def make_hls(rt: Runtime, item_id: str) -> None:
    """HLS (fMP4 segments) cut from the proxy without re-encoding: the proxy already has a
    keyframe every 2 s, so a reviewer can start anywhere in hours of footage."""

    def hls(item: Item) -> None:
        proxy = _derivative(rt, item_id, "proxy")
        if proxy is None or _has(rt, item_id, "hls"):
            return
        tool = _tool(rt)
        source = rt.vault.tool_input(proxy.key)
        with _workdir(rt) as work:
            out = work / "hls"
            out.mkdir()
            args = ffmpeg.hls_args(source, str(out))
            _run(rt, item_id, tool, args, duration=item.media.get("duration"), what="making HLS")
            prefix = f"derivatives/{item_id}/hls-{proxy.sha256[:16]}"
            files = {}
            for path in sorted(out.iterdir()):
                with open(path, "rb") as stream:
                    files[path.name] = hash_stream(stream)[0]["sha256"]
                if path.name != "index.m3u8":
                    _put_once(rt, f"{prefix}/{path.name}", path)
            method = _ffmpeg_method(tool, args, {source: f"vault:{proxy.key}"}, work)
            method["segments"] = files
            # The playlist is the derivative; its segments sit beside it under the same prefix.
            _store_derivative(rt, item_id, "hls", out / "index.m3u8", "index.m3u8", "application/vnd.apple.mpegurl",
                              method, key=f"{prefix}/index.m3u8")

    _media_step(rt, item_id, hls)


def make_thumbnail(rt: Runtime, item_id: str) -> None:
    def thumbnail(item: Item) -> None:
        if _has(rt, item_id, "thumbnail"):
            return
        tool = _tool(rt)
        source = rt.vault.tool_input(item.storage_key)
        with _workdir(rt) as work:
            out = work / "thumbnail.jpg"
            args = ffmpeg.thumbnail_args(source, str(out))
            _run(rt, item_id, tool, args, duration=None, what="making the thumbnail")
            _store_derivative(rt, item_id, "thumbnail", out, "thumbnail.jpg", "image/jpeg",
                              _ffmpeg_method(tool, args, {source: f"vault:{item.storage_key}", str(out): "thumbnail.jpg"}))

    _media_step(rt, item_id, thumbnail)


def make_manifest(rt: Runtime, item_id: str) -> None:
    def manifest(item: Item) -> None:
        if _has(rt, item_id, "manifest"):
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
            _store_derivative(rt, item_id, "manifest", path, "manifest.json", "application/json",
                              {"tool": "transcode.archive", "format": archive.FORMAT, "version": _our_version()})
        warnings = list(found.get("warnings") or [])
        if warnings:
            with rt.db.transaction() as session:
                row = session.get_one(Item, item_id, with_for_update=True)
                row.warnings = [*row.warnings, *[w for w in warnings if w not in row.warnings]]

    _media_step(rt, item_id, manifest)


def _our_version() -> str:
    try:
        return importlib.metadata.version("evidence-transfer")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _progress_writer_bytes(rt: Runtime, item_id: str, total: int) -> Callable[[int], None]:
    write = _progress_writer(rt, item_id)
    return lambda done: write(100 * done / max(total, 1))


# -- 5. done --------------------------------------------------------------------------------


def finish_item(rt: Runtime, item_id: str) -> None:
    with rt.db.transaction() as session:
        item = session.get(Item, item_id, with_for_update=True)
        if item is not None and item.state == "processing":
            item.state, item.progress = "ready", 100.0
