"""Previews of the images and videos inside a ZIP (a phone extraction), for the reviewer.

Each entry the manifest lists is looked at by its first bytes (never by its name alone): the
magic numbers of pictures and of the containers the video demuxers read. One that looks like an
image or a video, within the count and size allowed, is extracted through
:class:`transcode.archive.Reader` (the manifest's zip-bomb bounds, size and CRC checked) into
the step's temporary folder, its SHA-256 checked against the manifest's, probed by the same
sandboxed child as an original (the demuxer chosen from its bytes, on the allow-list), and made
into the same working copy an original of its kind gets: the image view, or the video proxy.
Each preview is stored under its own hash; the index (:func:`evidence.workingcopies.previews_index`)
is the item's ``previews`` working copy. An entry that gets no preview is listed with the reason;
one bad entry never fails the item.

The step's function is :func:`transcode.pipeline.make_previews`; the work is here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from evidence.models import Derivative, DerivativeKind, Item
from evidence.runtime import Runtime
from evidence.workingcopies import Preview, previews_index
from transcode import archive, budget, fence, ffmpeg, pipeline, probe, probe_child, recognise
from transcode.errors import MediaFailure
from transcode.hashing import hash_stream
from transcode.run import FFmpegError
from transcode.seekable import RangeFile

HEAD_BYTES: Final = 256 * 1024  # of an entry, to recognise it and to choose its demuxer
# The index must stay well under what the reviewer's side reads (workingcopies.MAX_INDEX_BYTES):
# an extraction may hold a hundred thousand photos, each path up to 64 KiB.
MAX_SKIPPED_BYTES: Final = 2 * 1024 * 1024
# Names of pictures and footage: only for entries whose bytes cannot be looked at (encrypted,
# damaged) or that come after the count allowed, to say they were left out.
_SUFFIXES = recognise.MEDIA_SUFFIXES | {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic"}
_OUTPUT = {"image": ("image/jpeg", "preview.jpg"), "video": ("video/mp4", "preview.mp4")}


class Skipped(Exception):
    """This entry gets no preview, for the reason given (in plain words)."""


@dataclass
class Found:
    """What the step has made so far."""

    previews: list[Preview]
    skipped: list[tuple[str, str]]
    methods: list[dict[str, Any]]
    unlisted: int = 0
    skipped_bytes: int = 0

    def skip(self, path: str, reason: str) -> None:
        if self.skipped_bytes + len(path) + len(reason) > MAX_SKIPPED_BYTES:
            self.unlisted += 1
            return
        self.skipped.append((path, reason))
        self.skipped_bytes += len(path) + len(reason)


def looks_like(head: bytes) -> str | None:
    """"image" or "video" when the first bytes are those of a picture or of a container a video
    demuxer reads; None otherwise. Pure Python: the real decision is the sandboxed probe's."""
    kind = probe.classify(head, None)
    if kind == "image":
        return "image"
    if kind != "other":
        return None  # a PDF or a nested archive
    if head.startswith(b"BM") and len(head) > 14:
        return "image"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "video"  # MP4, MOV, 3GP (and M4A: the probe tells audio apart)
    if head.startswith((b"RIFF",)) and head[8:12] == b"AVI ":
        return "video"
    if head.startswith((b"\x1a\x45\xdf\xa3", b"FLV\x01", b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", b".RMF", b"OggS", b"DHAV")):
        return "video"
    if head.startswith(b"\x00\x00\x01\xba"):  # MPEG program stream
        return "video"
    if len(head) >= 189 * 3 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47:  # MPEG-TS
        return "video"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free"):  # QuickTime without ftyp
        return "video"
    return None


def make(rt: Runtime, item: Item, manifest: Derivative) -> None:
    """Make the previews of the archive ``item`` whose manifest is ``manifest``, and store their index."""
    with rt.vault.open(manifest.key) as stream:
        listed = json.loads(stream.read())
    entries: list[dict[str, Any]] = listed.get("entries") or []
    found = Found([], [], [])
    tool = pipeline._tool(rt)
    opener = lambda start, end: rt.vault.open(item.storage_key, start, end)  # noqa: E731
    try:
        with RangeFile(item.size, opener) as file, archive.Reader(file) as reader, pipeline._workdir(rt) as work:
            for index, entry in enumerate(entries):
                fence.check()  # a run whose step was taken over stops between entries, not at the end
                _entry(rt, item, reader, work, tool, index, entry, found)
            _store(rt, item, tool, work, found)
    except archive.ArchiveError as error:  # read and listed once, so this archive changed or its reading did
        raise MediaFailure(f"the archive could not be read again to make previews: {error}") from None


def _entry(
    rt: Runtime, item: Item, reader: archive.Reader, work: Path, tool: ffmpeg.Tool, index: int,
    entry: dict[str, Any], found: Found,
) -> None:
    path = str(entry.get("path") or "")
    named_like_media = PurePosixPath(path).suffix.lower() in _SUFFIXES
    if entry.get("is_dir") or entry.get("archive"):
        return
    if entry.get("problem") or not entry.get("sha256"):
        if named_like_media:
            found.skip(path, f"not read: {entry.get('problem') or 'no hash in the manifest'}")
        return
    if len(found.previews) >= rt.settings.preview_max_entries:
        # Past the count, the bytes are not read: the name says what is left out.
        if named_like_media:
            found.skip(path, f"more than the {rt.settings.preview_max_entries} previews made for one archive")
        return
    try:
        head = reader.head(index, path, HEAD_BYTES)
    except archive.EntryUnreadable as error:
        if named_like_media:
            found.skip(path, f"not read: {error}")
        return
    kind = looks_like(head)
    if kind is None:
        return
    size = int(entry.get("size") or 0)
    if size > rt.settings.preview_max_entry_bytes:
        found.skip(path, f"{size:,} bytes: larger than the {rt.settings.preview_max_entry_bytes:,} a preview is made from")
        return
    try:
        made = _preview(rt, item, reader, work, tool, index, entry, head, kind)
    except Skipped as why:
        found.skip(path, str(why))
        return
    if made is not None:
        found.previews.append(made[0])
        found.methods.append(made[1])


def _preview(
    rt: Runtime, item: Item, reader: archive.Reader, work: Path, tool: ffmpeg.Tool, index: int,
    entry: dict[str, Any], head: bytes, looks: str,
) -> tuple[Preview, dict[str, Any]] | None:
    path = str(entry["path"])
    extracted = work / f"entry-{index}"  # never the entry's own name: it is data, not a path
    try:
        budget.limits_for(rt, item.id)  # spent: say so before extracting anything
        with open(extracted, "wb") as out:
            sha256, _ = reader.extract(index, path, out)
        if sha256 != entry["sha256"]:
            raise Skipped(f"its bytes now give SHA-256 {sha256}, not the manifest's {entry['sha256']}")
        verdict = _probe(rt, item, extracted, head, path)
        if verdict.kind not in ("image", "video"):
            return None  # audio in an MP4 box, say: not a picture to preview
        kind = str(verdict.kind)
        demuxer = str(verdict.summary["demuxer"])
        limit = rt.settings.max_image_pixels if kind == "image" else rt.settings.max_video_pixels
        source = ffmpeg.Input(str(extracted), demuxer, max_pixels=limit)
        content_type, name = _OUTPUT[kind]
        out_path = work / f"preview-{index}{Path(name).suffix}"
        if kind == "image":
            args = ffmpeg.view_args(source, str(out_path))
        else:
            remux = probe.is_browser_playable(verdict.summary)
            args = ffmpeg.proxy_args(source, str(out_path), remux=remux, has_audio=bool(verdict.summary.get("audio_codec")),
                                     threads=rt.settings.ffmpeg_threads)
        try:
            pipeline._measured(rt, item.id, tool, args, duration=verdict.summary.get("duration") if kind == "video" else None)
        except FFmpegError as error:
            raise Skipped(f"could not be decoded ({_complaint(error.stderr_tail)})") from None
        with open(out_path, "rb") as stream:
            hashes, made_size = hash_stream(stream)
        if made_size == 0:
            raise Skipped("could not be decoded: nothing came out")
        preview = Preview(sha256=hashes["sha256"], size=made_size, content_type=content_type, index=index, path=path,
                          kind=kind)
        pipeline._put_once(rt, preview.key(item.id, DerivativeKind.PREVIEWS), out_path)
        argv = pipeline._ffmpeg_method(tool, args, {source.url: f"archive entry {path}", str(out_path): name})["argv"]
        method = {"entry": path, "entry_sha256": sha256, "preview_sha256": preview.sha256, "kind": kind, "argv": argv}
        return preview, method
    except MediaFailure as failure:  # the item's bounds stopped this one: the others may still fit
        raise Skipped(str(failure)) from None
    finally:
        extracted.unlink(missing_ok=True)
        for made in work.glob(f"preview-{index}.*"):
            made.unlink()


def _complaint(stderr: str) -> str:
    """What ffmpeg said went wrong, in its own words but without its component tags."""
    if "Invalid data found when processing input" in stderr:
        return "invalid data found in it"
    lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip() for line in stderr.splitlines()]
    said = [line for line in lines if line and line != "Conversion failed!" and not line.startswith("frame=")]
    return said[-1][:300] if said else "ffmpeg gave no reason"


def _probe(rt: Runtime, item: Item, extracted: Path, head: bytes, path: str) -> recognise.Verdict:
    """The entry probed as an original is: its demuxer chosen from its bytes in the bounded child."""
    bounds = recognise.Bounds(rt.settings.max_image_pixels, rt.settings.max_video_pixels)
    before = recognise.before_probe(head, bounds)
    if before is not None and before.failure:
        raise Skipped(before.failure)
    request = probe_child.Request(
        str(extracted), head=head, max_image_pixels=bounds.max_image_pixels,
        max_video_pixels=recognise.pixel_limit(head, bounds),
    )
    outcome = probe_child.run(request, limits=budget.limits_for(rt, item.id), timeout=pipeline.PROBE_TIMEOUT)
    budget.charge(rt, item.id, outcome.cpu_seconds)
    if outcome.stopped:
        raise Skipped(f"{outcome.stopped} (probing it)")
    # The entry's name stands for an officer's: one named like media that nothing reads is a failure here too.
    verdict = recognise.after_probe(head, PurePosixPath(path).suffix.lower(), outcome, bounds, raw=None, framerate=None)
    if verdict.failure:
        raise Skipped(verdict.failure.replace(str(extracted), "the entry"))
    if verdict.kind in ("other", "text"):  # a refused format says why; otherwise nothing read it
        raise Skipped(verdict.warnings[0] if verdict.warnings else "not readable as an image or a video")
    return verdict


def _store(rt: Runtime, item: Item, tool: ffmpeg.Tool, work: Path, found: Found) -> None:
    skipped = list(found.skipped)
    if found.unlisted:
        skipped.append(("…", f"{found.unlisted:,} more images and videos have no preview (not listed)"))
    path = work / "previews.json"
    path.write_bytes(previews_index(found.previews, skipped))
    method = {
        "tool": "transcode.previews",
        "version": pipeline._our_version(),
        "ffmpeg": tool.version,
        "probe": probe.method(),
        "previews": found.methods,
        "skipped": len(found.skipped) + found.unlisted,
    }
    fence.check()
    pipeline._store_derivative(rt, item.id, DerivativeKind.PREVIEWS, path, "previews.json", "application/json", method)
