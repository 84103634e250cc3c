"""What a file is: ffprobe-style JSON (via PyAV), a short summary, and a routing class.

There is no ffprobe in the pinned build, so :func:`probe` reads the file with PyAV (the same
libav* libraries) and returns the subset of ``ffprobe -show_format -show_streams -show_chapters
-print_format json`` that the pipeline and reviewers use, with ffprobe's names and value types
(numbers that ffprobe prints as strings stay strings). One reader on every worker, pinned with
the package, so the same file always gives the same probe.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import Any

import av
import av.logging

from transcode import formats, recipes, sniff

RAW_FORMATS = {
    ".h264": "h264",
    ".264": "h264",
    ".h265": "hevc",
    ".265": "hevc",
    ".hevc": "hevc",
    ".dav": "dhav",
}
# Elementary streams carry no timing of their own unless the encoder wrote it into the
# bitstream; without it ffmpeg assumes this rate.
ASSUMED_FRAME_RATE = 25
RAW_ELEMENTARY = {"h264", "hevc"}

KINDS = ("video", "audio", "image", "pdf", "archive", "other")
IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "gif", "tiff_pipe", "webp_pipe", "bmp_pipe", "heif"}
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
DECODE_PACKET_LIMIT = 256  # packets read looking for the first frame of each video stream
# What libavutil logs when a decoder refuses a picture over ``max_pixels``.
_OVER_PIXELS = re.compile(r"Picture size (\d+)x(\d+) exceeds specified max pixel count (\d+)")


class ProbeError(Exception):
    """The file is not media that ffmpeg can read (or is empty, or is cut off before its index)."""


class TooManyPixels(ProbeError):
    """A picture larger than the decoding limit: refused before it is decoded."""

    def __init__(self, width: int, height: int, limit: int) -> None:
        self.width, self.height, self.limit = width, height, limit
        super().__init__(f"{width}x{height} pixels is more than the {limit} allowed")


def choose_demuxer(head: bytes, *, raw: str | None = None) -> formats.Choice:
    """The demuxer for a file that starts with ``head``, from its bytes (see :mod:`transcode.formats`)."""
    found = recipes.recipe(head)
    if found:
        return formats.Choice(refusal=formats.no_working_copy(found, refers=True))
    skip = sniff.id3_length(head)
    sniffed = sniff.sniff(head[skip:] if skip and skip < len(head) else head)
    return formats.choose(sniffed.name if sniffed else None, sniffed.long_name if sniffed else None, raw=raw)


def probe(
    path_or_url: str,
    *,
    input_format: str | None = None,
    framerate: str | None = None,
    max_pixels: int | None = None,
) -> dict[str, Any]:
    """ffprobe-style ``{"format", "streams", "chapters"}`` for a local path or an http(s) URL.

    ``input_format`` is the demuxer, which must be allowed (:data:`formats.ALLOWED`); when
    omitted, a local file's first bytes choose it. ``framerate`` is the rate for raw streams
    (see ``RAW_FORMATS``); both are recorded under ``"input"`` so the JSON says how it was made.
    Video streams larger than ``max_pixels`` raise :class:`TooManyPixels` before any decoding.
    """
    if "://" not in path_or_url:
        try:
            if os.path.getsize(path_or_url) == 0:
                raise ProbeError("empty file (0 bytes): nothing to probe")
        except OSError as exc:
            raise ProbeError(f"cannot read {path_or_url}: {exc.strerror or exc}") from exc
        if input_format is None:
            with open(path_or_url, "rb") as stream:
                choice = choose_demuxer(stream.read(sniff.PROBE_BYTES))
            if choice.demuxer is None:
                raise ProbeError(choice.refusal or "not readable as media: no demuxer recognises it")
            input_format = choice.demuxer
    if input_format is None:
        raise ProbeError("a remote input needs its demuxer named")
    result = _pyav(path_or_url, input_format, framerate, max_pixels)
    result["input"] = {"format": input_format, "framerate": framerate}
    if "://" in path_or_url:
        # A presigned URL's query is a credential (and expires): never keep it.
        result.setdefault("format", {})["filename"] = urllib.parse.urlsplit(path_or_url)._replace(
            query="", fragment=""
        ).geturl()
    return result


def probe_json(data: dict[str, Any], *, filename: str | None = None) -> bytes:
    """The probe as stored (``probe.json``): stable key order, so the same file gives the same bytes.

    ``filename`` replaces the path or URL it was read from (a temporary or signed location).
    """
    if filename is not None:
        data = {**data, "format": {**data.get("format", {}), "filename": filename}}
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"


def method() -> dict[str, Any]:
    """How :func:`probe` reads files, for the custody record: the tool and its exact versions."""
    return {
        "tool": "pyav",
        "version": av.__version__,
        "libraries": {name: ".".join(map(str, v)) for name, v in sorted(av.library_versions.items())},
    }


def _ratio(value: Fraction | None) -> str:
    return f"{value.numerator}/{value.denominator}" if value else "0/0"


def _seconds(value: int | None, time_base: Fraction | None) -> str | None:
    if value is None or time_base is None:
        return None
    return f"{float(value * time_base):.6f}"


def _display_matrix(raw: bytes) -> dict[str, Any]:
    matrix = struct.unpack("<9i", raw[:36])
    text = "\n" + "".join(
        f"{row:08x}: " + "".join(f" {v:11d}" for v in matrix[row * 3 : row * 3 + 3]) + "\n" for row in range(3)
    )
    # av_display_rotation_get(): counter-clockwise degrees, as ffprobe prints them.
    scale0 = math.hypot(matrix[0], matrix[3])
    scale1 = math.hypot(matrix[1], matrix[4])
    rotation = 0.0
    if scale0 and scale1:
        rotation = -math.degrees(math.atan2(matrix[1] / scale1, matrix[0] / scale0))
    return {"side_data_type": "Display Matrix", "displaymatrix": text, "rotation": int(rotation) or 0}


def _first_frames(container: Any, streams: list[Any], max_pixels: int | None) -> dict[int, Any]:
    """The first decoded frame of each video stream (for rotation and the real pixel format).

    The decoders get ``max_pixels``: a frame larger than its headers said is not decoded."""
    found: dict[int, Any] = {}
    wanted = {s.index for s in streams}
    for stream in streams:
        stream.codec_context.thread_count = 1
        if max_pixels:
            stream.codec_context.options = {**stream.codec_context.options, "max_pixels": str(max_pixels)}
    for count, packet in enumerate(container.demux(streams)):
        if count >= DECODE_PACKET_LIMIT or wanted <= found.keys():
            break
        if packet.stream.index in found:
            continue
        try:
            frames = packet.decode()
        except MemoryError:
            raise  # over the address-space limit: the probe must fail, not carry on
        except av.FFmpegError:
            continue  # a damaged packet (or a frame over max_pixels): try the next
        if frames:
            found[packet.stream.index] = frames[0]
    return found


def _side_data(frame: Any | None) -> list[Any]:
    if frame is None:
        return []
    try:
        return list(frame.side_data)
    except ValueError:  # a side-data type newer than this PyAV (TIFF's EXIF, say): none usable
        return []


def _stream(stream: Any, first_frame: Any | None, bitstream_rate: Fraction | None) -> dict[str, Any]:
    ctx = stream.codec_context
    if ctx is None:  # no decoder for it in this build: say what little is known
        return {
            "index": stream.index,
            "codec_type": stream.type,
            "codec_tag_string": stream.codec_tag or None,
            "time_base": _ratio(stream.time_base),
            "tags": dict(stream.metadata),
        }
    out: dict[str, Any] = {
        "index": stream.index,
        "codec_name": ctx.codec.canonical_name if stream.type in ("video", "audio", "subtitle") else None,
        "codec_long_name": ctx.codec.long_name if stream.type in ("video", "audio", "subtitle") else None,
        "profile": stream.profile,
        "codec_type": stream.type,
        "codec_tag_string": stream.codec_tag or None,
    }
    if stream.type == "video":
        pix_fmt = ctx.pix_fmt or (first_frame.format.name if first_frame is not None else None)
        out.update(
            {
                "width": ctx.width or None,
                "height": ctx.height or None,
                "pix_fmt": pix_fmt,
                "sample_aspect_ratio": _ratio(stream.sample_aspect_ratio) if stream.sample_aspect_ratio else None,
                "display_aspect_ratio": _ratio(stream.display_aspect_ratio) if stream.display_aspect_ratio else None,
            }
        )
    elif stream.type == "audio":
        out.update(
            {
                "sample_fmt": ctx.format.name if ctx.format else None,
                "sample_rate": str(ctx.sample_rate) if ctx.sample_rate else None,
                "channels": ctx.channels,
                "channel_layout": ctx.layout.name if ctx.layout else None,
            }
        )
    out.update(
        {
            "r_frame_rate": _ratio(getattr(stream, "base_rate", None)),
            "avg_frame_rate": _ratio(getattr(stream, "average_rate", None)),
            "time_base": _ratio(stream.time_base),
            "start_pts": stream.start_time,
            "start_time": _seconds(stream.start_time, stream.time_base),
            "duration_ts": stream.duration,
            "duration": _seconds(stream.duration, stream.time_base),
            "bit_rate": str(ctx.bit_rate) if ctx.bit_rate else None,
            "nb_frames": str(stream.frames) if stream.frames else None,
            "disposition": {flag.name: int(bool(stream.disposition & flag)) for flag in type(stream.disposition)},
            "tags": dict(stream.metadata),
        }
    )
    if stream.type == "video":
        # Not in ffprobe's output: the frame rate the elementary stream itself declares (H.264/HEVC
        # VUI timing). ffmpeg uses it for raw streams; without it, it assumes 25 fps.
        out["bitstream_frame_rate"] = _ratio(bitstream_rate) if bitstream_rate else None
        side = []
        for data in _side_data(first_frame):
            if data.type.name == "DISPLAYMATRIX":
                side.append(_display_matrix(bytes(data)))
        if side:
            out["side_data_list"] = side
    return {key: value for key, value in out.items() if value is not None}


def _pyav(target: str, input_format: str, framerate: str | None, max_pixels: int | None) -> dict[str, Any]:
    url, protocols = formats.protocols_for(target)
    formats.check_input(input_format, protocols)
    # Only this demuxer, only the vault's protocols: nothing in the file can open another.
    container_options = {"protocol_whitelist": protocols, "format_whitelist": input_format}
    if framerate:
        container_options["framerate"] = framerate
    # Per-stream decoder options, used while libavformat looks for the streams' parameters.
    options = {"threads": "1", **({"max_pixels": str(max_pixels)} if max_pixels else {})}
    with _libav_errors() as logged:
        try:
            container = av.open(
                url, format=input_format, options=options, container_options=container_options, timeout=60
            )
        except MemoryError:
            raise
        except (av.FFmpegError, OSError, ValueError) as exc:
            _refuse_oversized(logged)
            message = str(getattr(exc, "strerror", None) or exc).replace(url, "the file")
            raise ProbeError(f"not readable as media: {message}") from exc
    try:
        # libavformat decodes a frame or two while it looks for the streams' parameters; a
        # decoder that refused a picture over max_pixels says how large it was, and a refused
        # picture leaves the stream's size unknown, so the log is the place to find it.
        _refuse_oversized(logged)
        if max_pixels:
            for stream in container.streams.video:
                ctx = stream.codec_context
                if ctx is not None and (ctx.width or 0) * (ctx.height or 0) > max_pixels:
                    raise TooManyPixels(ctx.width, ctx.height, max_pixels)
        # Rates before decoding: decoding can fill in the codec context's rate.
        rates = {s.index: s.codec_context.framerate for s in container.streams.video if s.codec_context}
        try:
            frames = _first_frames(container, [s for s in container.streams.video if s.codec_context], max_pixels)
        except MemoryError:
            raise
        except (av.FFmpegError, OSError):
            frames = {}
        streams = [_stream(s, frames.get(s.index), rates.get(s.index)) for s in container.streams]
        if not any(s["codec_type"] in ("video", "audio") for s in streams):
            raise ProbeError("no audio or video streams")
        fmt = container.format
        size = container.size if container.size and container.size > 0 else None
        result: dict[str, Any] = {
            "format": {
                key: value
                for key, value in {
                    "filename": target,
                    "nb_streams": len(streams),
                    "format_name": sniff.full_name(fmt.name),
                    "format_long_name": fmt.long_name,
                    "start_time": _seconds(container.start_time, Fraction(1, av.time_base)),
                    "duration": _seconds(container.duration, Fraction(1, av.time_base)),
                    "size": str(size) if size else None,
                    "bit_rate": str(container.bit_rate) if container.bit_rate else None,
                    "tags": dict(container.metadata),
                }.items()
                if value is not None
            },
            "streams": streams,
            "chapters": [_chapter(i, c) for i, c in enumerate(container.chapters())],
        }
        return result
    finally:
        container.close()


@contextmanager
def _libav_errors() -> Iterator[list[Any]]:
    """libav's error messages, as (level, name, text), while the block runs (PyAV forwards
    none unless asked); the list fills as they come."""
    previous = av.logging.get_level()
    if previous is None or previous < av.logging.ERROR:
        av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture(local=False) as captured:
            yield captured
    finally:
        av.logging.set_level(previous)


def _refuse_oversized(messages: list[Any]) -> None:
    for entry in messages:
        found = _OVER_PIXELS.search(str(entry[-1]))
        if found:
            width, height, limit = map(int, found.groups())
            raise TooManyPixels(width, height, limit)


def _chapter(number: int, chapter: Any) -> dict[str, Any]:
    time_base = chapter["time_base"]
    return {
        "id": chapter.get("id", number),
        "time_base": _ratio(time_base),
        "start": chapter["start"],
        "start_time": _seconds(chapter["start"], time_base),
        "end": chapter["end"],
        "end_time": _seconds(chapter["end"], time_base),
        "tags": dict(chapter.get("metadata") or {}),
    }


# -- summary ------------------------------------------------------------------------------------


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _rate(value: str | None) -> float | None:
    if not value or value == "0/0":
        return None
    num, _, den = value.partition("/")
    try:
        rate = Fraction(int(num), int(den or 1))
    except (ValueError, ZeroDivisionError):
        return None
    return round(float(rate), 3) if rate > 0 else None


def _container(fmt: dict[str, Any]) -> str | None:
    name = fmt.get("format_name")
    if not name:
        return None
    if name.startswith("mov,mp4"):
        brand = str(fmt.get("tags", {}).get("major_brand", "")).strip().lower()
        if brand == "qt":
            return "mov"
        if brand.startswith(("3gp", "3g2")):
            return "3gp"
        return "mp4"
    return str(name).split(",")[0]


def _is_picture(stream: dict[str, Any]) -> bool:
    return bool(stream.get("disposition", {}).get("attached_pic"))


def summarise(data: dict[str, Any]) -> dict[str, Any]:
    """The item's media summary: container, codecs, duration, size, frame rate, time, rotation."""
    fmt = data.get("format", {})
    streams = data.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video" and not _is_picture(s)), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    given = (data.get("input") or {}).get("framerate")
    container = _container(fmt)
    frame_rate = None
    assumed = False
    rotation = 0
    if video:
        if container in RAW_ELEMENTARY and not given:
            # What ffmpeg will use: the bitstream's own timing, else its 25 fps assumption.
            frame_rate = _rate(video.get("bitstream_frame_rate"))
            assumed = frame_rate is None
            frame_rate = frame_rate or float(ASSUMED_FRAME_RATE)
        else:
            frame_rate = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
        for side in video.get("side_data_list", []):
            if "rotation" in side:
                rotation = int(side["rotation"])
    creation = fmt.get("tags", {}).get("creation_time")
    if not creation:
        creation = next((s["tags"]["creation_time"] for s in streams if s.get("tags", {}).get("creation_time")), None)
    frames = _float((video or {}).get("nb_frames"))
    return {
        "container": container,
        "format_name": fmt.get("format_name"),
        "video_codec": (video or {}).get("codec_name"),
        "pix_fmt": (video or {}).get("pix_fmt"),
        "audio_codec": (audio or {}).get("codec_name"),
        "duration": _float(fmt.get("duration")) or _float((video or audio or {}).get("duration")),
        "width": (video or {}).get("width"),
        "height": (video or {}).get("height"),
        "frame_rate": frame_rate,
        "frame_rate_assumed": assumed,
        "frames": int(frames) if frames else None,
        "creation_time": creation,
        "rotation": rotation,
    }


def is_browser_playable(summary: dict[str, Any]) -> bool:
    """Already H.264 yuv420p (+ AAC or silent) in MP4/MOV: a remux is enough.

    A rotated clip is re-encoded so that the rotation is applied to the pixels: players that
    ignore the display matrix would otherwise show it on its side.
    """
    return (
        summary.get("container") in ("mp4", "mov")
        and summary.get("video_codec") == "h264"
        and summary.get("pix_fmt") == "yuv420p"
        and summary.get("audio_codec") in (None, "aac")
        and not summary.get("rotation")
    )


# -- routing ------------------------------------------------------------------------------------


def _magic(head: bytes) -> str | None:
    if head.startswith(b"%PDF"):
        return "pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "archive"
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")):
        return "image"
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return "image"
    return None


def classify(head: bytes, probe: dict[str, Any] | None) -> str:
    """One of ``KINDS``: magic bytes first (the first few hundred bytes), then the probe."""
    kind = _magic(head)
    if kind:
        return kind
    if not probe:
        return "other"
    streams = probe.get("streams", [])
    if probe.get("format", {}).get("format_name") in IMAGE_FORMATS:
        return "image"
    if any(s.get("codec_type") == "video" and not _is_picture(s) for s in streams):
        return "video"
    if any(s.get("codec_type") == "audio" for s in streams):
        return "audio"
    return "other"
