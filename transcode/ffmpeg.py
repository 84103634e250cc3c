"""The pinned ffmpeg build and pure builders of its argument lists (ffmpeg-python).

Every builder returns the arguments that follow the executable, so the exact command can be
recorded with the working copy it made and repeated by anyone holding the same build. Nothing
here runs ffmpeg except :func:`resolve_ffmpeg`, which asks the build for its version.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, Protocol, cast

import ffmpeg

from transcode import formats

# The processing method is fixed (Forensic Science Regulator Code): one preset, one quality,
# one thread count. x264 output depends on its thread count, so it is never left to the host.
X264_PRESET = "veryfast"
X264_CRF = 23
# x264's lookahead in a thread of its own decides frame types by timing: under load one encode
# in four of the same input differed by a frame (measured). Without it (but with its analysis
# split across two threads) 64 encodes under load were byte-identical; it costs about a
# quarter of the encoding speed on two cores, which the method's repeatability is worth.
X264_PARAMS = "sync-lookahead=0:lookahead-threads=2"
AAC_BITRATE = "128k"
THREADS = 2
# Resampling that gives the same pixels whatever SIMD the host has.
SWS_FLAGS = "bicubic+accurate_rnd+full_chroma_int+bitexact"
# Limited range: a full-range (JPEG) source would otherwise give an H.264 stream flagged
# full range (yuvj420p), which some browsers show washed out.
EVEN_SCALE = f"scale=trunc(iw/2)*2:trunc(ih/2)*2:flags={SWS_FLAGS}:out_range=tv,format=yuv420p"
# Tags, timestamps and encoder strings that would differ between runs or hosts are left out.
MUX_BITEXACT = {"fflags": "+bitexact"}
VIDEO_BITEXACT = {"flags:v": "+bitexact"}
AUDIO_BITEXACT = {"flags:a": "+bitexact"}
PROGRESS = ("-hide_banner", "-nostdin", "-nostats", "-progress", "pipe:1")

STILL_WIDTH = 1280
# An image's working copy fits a screen: its long edge at most this (never enlarged).
VIEW_EDGE = 1920
SHEET_TILE_WIDTH = 320
THUMBNAIL_WIDTH = 640
JPEG_QUALITY = 3  # mjpeg -q:v, 2 (best) to 31
HLS_SEGMENT_SECONDS = 2
HLS_PLAYLIST = "index.m3u8"
HLS_INIT = "init.mp4"
HLS_SEGMENT = "segment_%05d.m4s"
# Decoder threads for inputs opened only to take a still: one each, since a contact sheet
# opens sixteen inputs at once and each thread reserves its stack in the address space.
STILL_THREADS = 1
# Raw elementary streams have no index and no timestamps of their own: they cannot seek, and
# with keyframes-only decoding ffmpeg numbers the keyframes as if they were consecutive frames.
UNSEEKABLE = frozenset({"h264", "hevc"})
# An audio working copy keeps mono as mono and folds anything wider to stereo; AAC in MP4 takes
# only these rates, so a recording at 192 kHz (or 6 kHz) is resampled to the nearest (48 kHz at most: a working copy).
AUDIO_FORMAT = "aformat=channel_layouts=mono|stereo:sample_rates=48000|44100|32000|24000|22050|16000|12000|11025|8000"


# -- ffmpeg-python, behind the calls made here (it publishes no types) ----------------------


class Stream(Protocol):
    """A stream of ffmpeg-python's graph: an input, a stream picked from one, a filter's output."""

    def __getitem__(self, specifier: str) -> Stream: ...

    def filter(self, name: str, *args: object, **kwargs: object) -> Stream: ...

    def trim(self, **kwargs: object) -> Stream: ...


class Output(Protocol):
    def overwrite_output(self) -> Output: ...

    def get_args(self) -> list[str]: ...


def _input(url: str, **options: object) -> Stream:
    return cast(Stream, ffmpeg.input(url, **options))


def _output(streams: list[Stream], target: str, **options: object) -> Output:
    return cast(Output, ffmpeg.output(*streams, target, **options))


def _concat(streams: list[Stream], **options: object) -> Stream:
    return cast(Stream, ffmpeg.concat(*streams, **options))


# -- the build and its inputs -----------------------------------------------------------------


class ToolError(RuntimeError):
    """The configured ffmpeg cannot be found or does not run."""


@dataclass(frozen=True)
class Tool:
    """An ffmpeg executable and the version it reports (recorded with everything it makes)."""

    exe: str
    version: str


def resolve_ffmpeg(configured: str | None = None) -> Tool:
    """The configured ffmpeg, or the static build pinned by the ``imageio-ffmpeg`` wheel."""
    if configured:
        exe = shutil.which(configured) or configured
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            raise ToolError(f"ffmpeg not found or not executable: {configured}")
    else:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    return _tool(os.path.realpath(exe))


@functools.lru_cache(maxsize=8)
def _tool(exe: str) -> Tool:
    try:
        done = subprocess.run(
            [exe, "-hide_banner", "-version"], capture_output=True, timeout=30, check=True, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolError(f"cannot run {exe} -version: {exc}") from exc
    first = done.stdout.decode("utf-8", "replace").splitlines()[0] if done.stdout else ""
    # "ffmpeg version n9.0.2-17-g2a571b6068-20260930 Copyright (c) ..."
    words = first.split()
    if len(words) < 3 or words[:2] != ["ffmpeg", "version"]:
        raise ToolError(f"{exe} does not look like ffmpeg: {first!r}")
    return Tool(exe=exe, version=words[2])


@dataclass(frozen=True)
class Input:
    """An input as ffmpeg must open it: the vault location (a path or a presigned URL), the
    demuxer named explicitly (never guessed, see :mod:`transcode.formats`), the rate for raw
    streams, and the largest picture its decoders may produce.

    Every input carries ``-f``, ``-format_whitelist`` (nothing nested inside it may open another
    demuxer) and ``-protocol_whitelist`` (the vault's protocols only), so no file can make
    ffmpeg read anything but its own bytes.
    """

    location: str
    demuxer: str
    framerate: str | None = None
    max_pixels: int | None = None

    def __post_init__(self) -> None:
        formats.check_input(self.demuxer, self.protocols)

    @property
    def url(self) -> str:
        return formats.protocols_for(self.location)[0]

    @property
    def protocols(self) -> str:
        return formats.protocols_for(self.location)[1]

    def node(self, **options: object) -> Stream:
        bounded: dict[str, object] = {
            "format": self.demuxer,
            "format_whitelist": self.demuxer,
            "protocol_whitelist": self.protocols,
            **options,
        }
        if self.framerate:
            bounded["framerate"] = self.framerate
        if self.max_pixels:
            bounded["max_pixels"] = self.max_pixels
        return _input(self.url, **bounded)


# -- argument lists ---------------------------------------------------------------------------


def _args(output: Output) -> list[str]:
    return [*PROGRESS, *output.overwrite_output().get_args()]


def proxy_args(
    src: Input,
    dst: str,
    *,
    remux: bool,
    has_audio: bool = True,
    threads: int = THREADS,
    keyframe_seconds: float = 2.0,
) -> list[str]:
    """A browser-playable MP4 (H.264 yuv420p + AAC, moov first) of the first video and audio stream.

    ``remux`` copies streams that are already H.264/AAC; otherwise they are encoded with fixed
    settings so that the same input gives a byte-identical proxy on every worker. Frames pass
    through with their own timestamps (variable-frame-rate CCTV neither gains nor loses frames),
    rotation is applied to the pixels (ffmpeg's autorotate) and keyframes fall every
    ``keyframe_seconds`` so the proxy can be cut into HLS segments without re-encoding.
    """
    source = src.node(threads=threads)
    streams = [source["v:0"]]
    if has_audio:
        streams.append(source["a:0?"])
    common: dict[str, Any] = {"map_metadata": 0, "movflags": "+faststart", "format": "mp4", **MUX_BITEXACT}
    if remux:
        return _args(_output(streams, dst, c="copy", **common))
    options: dict[str, Any] = {
        "c:v": "libx264",
        "preset": X264_PRESET,
        "crf": X264_CRF,
        "pix_fmt": "yuv420p",
        "vf": EVEN_SCALE,
        "fps_mode": "passthrough",
        "force_key_frames": f"expr:gte(t,n_forced*{keyframe_seconds:g})",
        "threads": threads,
        "x264-params": X264_PARAMS,  # repeatable: see X264_PARAMS
        **VIDEO_BITEXACT,
        **common,
    }
    if has_audio:
        options.update({"c:a": "aac", "b:a": AAC_BITRATE, **AUDIO_BITEXACT})
    return _args(_output(streams, dst, **options))


def _seekable(src: Input) -> None:
    if src.demuxer in UNSEEKABLE:
        raise ValueError(
            f"a raw {src.demuxer} stream cannot seek by time: make stills from its proxy instead"
        )


def _still(**options: Any) -> dict[str, Any]:
    # passthrough: after a keyframes-only seek the chosen frame can sit before the seek point
    # (a negative timestamp), and a constant-rate output would drop it.
    return {
        "frames:v": 1,
        "q:v": JPEG_QUALITY,
        "format": "image2",
        "update": 1,
        "fps_mode": "passthrough",
        **MUX_BITEXACT,
        **VIDEO_BITEXACT,
        **options,
    }


def _fit(width: int) -> str:
    # JPEG is full-range YUV; never enlarge; keep the height even.
    return f"scale='min({width},iw)':-2:flags={SWS_FLAGS}:out_range=full"


def poster_args(src: Input, dst: str, *, at_seconds: float) -> list[str]:
    """One JPEG: the keyframe at or before ``at_seconds``; only keyframes are decoded.

    Raises ``ValueError`` for raw H.264/HEVC (``UNSEEKABLE``): use the proxy as ``src``.
    """
    _seekable(src)
    source = src.node(
        ss=f"{max(at_seconds, 0.0):.3f}", noaccurate_seek=None, skip_frame="nokey", threads=STILL_THREADS
    )
    return _args(_output([source["v:0"]], dst, **_still(vf=_fit(STILL_WIDTH))))


def sheet_times(duration: float, count: int) -> list[float]:
    """``count`` instants evenly spread over ``duration``, each in the middle of its slice."""
    if duration <= 0 or count <= 0:
        raise ValueError("a contact sheet needs a positive duration and tile count")
    return [duration * (i + 0.5) / count for i in range(count)]


def contact_sheet_args(
    src: Input,
    dst: str,
    *,
    duration: float,
    columns: int = 4,
    rows: int = 4,
    tile_width: int = SHEET_TILE_WIDTH,
) -> list[str]:
    """One JPEG tiling ``columns x rows`` keyframes spread evenly over ``duration``.

    Each tile comes from its own seek (one input per tile, keyframes only), so the cost does not
    grow with the length of the footage: hours of CCTV take as long as a minute of it. For a raw
    elementary stream (``UNSEEKABLE``: ``ValueError``), make the sheet from the proxy.
    """
    _seekable(src)
    tiles: list[Stream] = []
    for at in sheet_times(duration, columns * rows):
        source = src.node(ss=f"{at:.3f}", noaccurate_seek=None, skip_frame="nokey", threads=STILL_THREADS)
        tiles.append(
            source["v:0"]
            .trim(end_frame=1)
            .filter("scale", tile_width, -2, flags=SWS_FLAGS, out_range="full")
            .filter("setsar", 1)
        )
    sheet = _concat(tiles, v=1, a=0).filter("tile", f"{columns}x{rows}")
    return _args(_output([sheet], dst, **_still()))


def validate_args(src: Input, *, threads: int = THREADS) -> list[str]:
    """Decode everything, write nothing: ``-progress`` reports the video frames decoded."""
    source = src.node(threads=threads)
    # Errors only on stderr: whatever it says is then a decoding problem worth reporting.
    return ["-loglevel", "error", *_args(_output([source["v:0?"], source["a?"]], "-", format="null", fps_mode="passthrough"))]


def hls_args(proxy: Input, out_dir: str) -> list[str]:
    """HLS VOD with fMP4 segments cut from the proxy without re-encoding (its keyframes are 2 s apart)."""
    source = proxy.node()
    options: dict[str, Any] = {
        "c": "copy",
        "format": "hls",
        "hls_time": HLS_SEGMENT_SECONDS,
        "hls_playlist_type": "vod",
        "hls_segment_type": "fmp4",
        "hls_fmp4_init_filename": HLS_INIT,
        "hls_segment_filename": os.path.join(out_dir, HLS_SEGMENT),
        "hls_flags": "independent_segments",
        **MUX_BITEXACT,
    }
    return _args(_output([source["v:0"], source["a:0?"]], os.path.join(out_dir, HLS_PLAYLIST), **options))


def thumbnail_args(src: Input, dst: str) -> list[str]:
    """A JPEG of an image, at most 640 px wide (never enlarged)."""
    source = src.node(threads=STILL_THREADS)
    return _args(_output([source["v:0"]], dst, **_still(vf=_fit(THUMBNAIL_WIDTH))))


def view_args(src: Input, dst: str, *, edge: int = VIEW_EDGE) -> list[str]:
    """A JPEG of an image to look at: its long edge at most ``edge`` (never enlarged), turned
    upright and no metadata carried over.

    The pinned build reads a JPEG's EXIF Orientation into the frame's display matrix and, with
    ``-autorotate`` (its default, named here so the record says so), turns and mirrors the
    pixels for all eight orientations (checked by tests/transcode/test_views.py)."""
    source = src.node(threads=STILL_THREADS, autorotate=None)
    box = (
        f"scale=w='min({edge},iw)':h='min({edge},ih)':force_original_aspect_ratio=decrease"
        f":flags={SWS_FLAGS}:out_range=full"
    )
    return _args(_output([source["v:0"]], dst, **_still(vf=box, map_metadata=-1)))


def audio_args(src: Input, dst: str, *, threads: int = THREADS) -> list[str]:
    """An M4A to listen to: the first audio stream as AAC (at most two channels) in MP4, moov
    first so a player starts before the whole file has arrived; cover art and video left out."""
    source = src.node(threads=threads)
    options: dict[str, Any] = {
        "c:a": "aac",
        "b:a": AAC_BITRATE,
        "af": AUDIO_FORMAT,
        "map_metadata": -1,
        "movflags": "+faststart",
        "format": "mp4",
        **AUDIO_BITEXACT,
        **MUX_BITEXACT,
    }
    return _args(_output([source["a:0"]], dst, **options))
