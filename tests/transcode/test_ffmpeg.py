"""The ffmpeg argument builders (pure) and the pinned build."""

from __future__ import annotations

import os

import pytest

from transcode import ffmpeg, formats
from transcode.ffmpeg import (
    Input,
    Tool,
    ToolError,
    contact_sheet_args,
    hls_args,
    poster_args,
    proxy_args,
    resolve_ffmpeg,
    sheet_times,
    thumbnail_args,
    validate_args,
)


def src(name: str = "in.mp4", demuxer: str = "mov", **options: object) -> Input:
    """An input in a local vault (the builders refuse anything not absolute)."""
    return Input(f"/vault/originals/{name}", demuxer, **options)  # type: ignore[arg-type]


def url(name: str = "in.mp4") -> str:
    return f"file:/vault/originals/{name}"


def output_part(args: list[str]) -> list[str]:
    """Everything after the last ``-i FILE``."""
    last = max(i for i, a in enumerate(args) if a == "-i")
    return args[last + 2 :]


def option(args: list[str], name: str) -> str:
    """The value that follows the (single) ``name`` in ``args``."""
    assert args.count(name) == 1, f"{name} appears {args.count(name)} times in {args}"
    return args[args.index(name) + 1]


def before_input(args: list[str], name: str) -> bool:
    return name in args and args.index(name) < args.index("-i")


def input_part(args: list[str]) -> list[str]:
    """The input options of a single-input command, up to and including ``-i FILE``."""
    return args[: args.index("-i") + 2]


def test_progress_and_overwrite_on_every_command() -> None:
    for args in (
        proxy_args(src(), "out.mp4", remux=False),
        proxy_args(src(), "out.mp4", remux=True),
        poster_args(src(), "p.jpg", at_seconds=1),
        contact_sheet_args(src(), "s.jpg", duration=60),
        validate_args(src()),
        hls_args(src("proxy.mp4"), "hls"),
        thumbnail_args(src("in.png", "png_pipe"), "t.jpg"),
    ):
        assert option(args, "-progress") == "pipe:1"
        assert "-nostats" in args and "-nostdin" in args and "-y" in args


def test_transcoded_proxy() -> None:
    args = proxy_args(src("in.avi", "avi"), "out.mp4", remux=False)
    assert args[-2:] == ["out.mp4", "-y"]
    assert option(args, "-i") == url("in.avi")
    assert option(args, "-c:v") == "libx264"
    assert option(args, "-preset") == ffmpeg.X264_PRESET
    assert option(args, "-crf") == str(ffmpeg.X264_CRF)
    assert option(args, "-pix_fmt") == "yuv420p"
    assert option(args, "-vf").startswith("scale=trunc(iw/2)*2:trunc(ih/2)*2:")
    assert option(args, "-c:a") == "aac"
    assert option(args, "-movflags") == "+faststart"
    assert option(args, "-fps_mode") == "passthrough"
    assert option(args, "-map_metadata") == "0"
    assert option(args, "-force_key_frames") == "expr:gte(t,n_forced*2)"
    assert option(args, "-fflags") == "+bitexact"
    assert option(args, "-flags:v") == "+bitexact"
    assert option(args, "-flags:a") == "+bitexact"
    assert option(output_part(args), "-f") == "mp4"
    # -threads fixed for the decoder (before -i) and the encoder (after it)
    assert args.count("-threads") == 2 and all(args[i + 1] == "2" for i, a in enumerate(args) if a == "-threads")
    maps = [args[i + 1] for i, a in enumerate(args) if a == "-map"]
    assert maps == ["0:v:0", "0:a:0?"]


def test_transcoded_proxy_options() -> None:
    args = proxy_args(src("in.mov"), "out.mp4", remux=False, has_audio=False, threads=4, keyframe_seconds=1)
    assert "-c:a" not in args and "0:a:0?" not in args and "-flags:a" not in args
    assert option(args, "-force_key_frames") == "expr:gte(t,n_forced*1)"
    assert [args[i + 1] for i, a in enumerate(args) if a == "-threads"] == ["4", "4"]


def test_remuxed_proxy_copies_streams() -> None:
    args = proxy_args(src(), "out.mp4", remux=True)
    assert option(args, "-c") == "copy"
    assert option(args, "-movflags") == "+faststart"
    assert option(args, "-map_metadata") == "0"
    assert "libx264" not in args and "-vf" not in args and "-c:a" not in args and "-flags:v" not in args
    assert option(args, "-fflags") == "+bitexact"
    assert [args[i + 1] for i, a in enumerate(args) if a == "-map"] == ["0:v:0", "0:a:0?"]


@pytest.mark.parametrize("fmt", ["h264", "hevc", "dhav"])
def test_raw_streams_name_their_demuxer_and_rate(fmt: str) -> None:
    args = proxy_args(src("cam.bin", fmt, framerate="12.5"), "out.mp4", remux=False)
    assert option(input_part(args), "-f") == fmt
    assert option(input_part(args), "-framerate") == "12.5"
    plain = proxy_args(src("cam.bin", fmt), "out.mp4", remux=False)
    assert "-framerate" not in plain


def test_poster_decodes_keyframes_only() -> None:
    args = poster_args(src("in.dav", "dhav", framerate="10"), "poster.jpg", at_seconds=12.3456)
    assert option(args, "-skip_frame") == "nokey" and before_input(args, "-skip_frame")
    assert option(args, "-ss") == "12.346" and before_input(args, "-ss")
    assert before_input(args, "-noaccurate_seek")
    assert option(args, "-frames:v") == "1"
    assert option(args, "-fps_mode") == "passthrough"
    assert option(args, "-framerate") == "10"
    assert args[-2] == "poster.jpg"
    assert option(poster_args(src(), "p.jpg", at_seconds=-3), "-ss") == "0.000"
    assert option(input_part(args), "-threads") == "1"  # one decoder thread for one still


def test_contact_sheet_seeks_once_per_tile() -> None:
    args = contact_sheet_args(src(), "sheet.jpg", duration=3600, columns=3, rows=2)
    inputs = [i for i, a in enumerate(args) if a == "-i"]
    assert len(inputs) == 6
    seeks = [float(args[i + 1]) for i, a in enumerate(args) if a == "-ss"]
    assert seeks == pytest.approx([300, 900, 1500, 2100, 2700, 3300])
    assert args.count("-skip_frame") == 6 and args.count("nokey") == 6
    graph = option(args, "-filter_complex")
    assert "concat=a=0:n=6:v=1" in graph and "tile=3x2" in graph and graph.count("scale=320:-2") == 6
    assert option(args, "-frames:v") == "1"
    # Sixteen inputs at once: each decodes with one thread (every thread's stack counts
    # against the address-space limit).
    assert [args[i + 1] for i, a in enumerate(args) if a == "-threads"] == ["1"] * 6


@pytest.mark.parametrize("fmt", sorted(ffmpeg.UNSEEKABLE))
def test_stills_refuse_raw_streams(fmt: str) -> None:
    with pytest.raises(ValueError, match="proxy"):
        poster_args(src("cam.264", fmt), "p.jpg", at_seconds=1)
    with pytest.raises(ValueError, match="proxy"):
        contact_sheet_args(src("cam.264", fmt), "s.jpg", duration=60)
    assert option(input_part(poster_args(src("cam.dav", "dhav"), "p.jpg", at_seconds=1)), "-f") == "dhav"


def test_sheet_times() -> None:
    assert sheet_times(16, 4) == [2, 6, 10, 14]
    with pytest.raises(ValueError):
        sheet_times(0, 16)


def test_validate_decodes_to_null() -> None:
    args = validate_args(src("in.264", "h264", framerate="25"))
    assert option(input_part(args), "-f") == "h264"
    assert option(input_part(args), "-framerate") == "25"
    assert option(input_part(args), "-threads") == str(ffmpeg.THREADS)
    assert args[args.index("null") - 1] == "-f"
    assert args[-2:] == ["-", "-y"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "-map"] == ["0:v:0?", "0:a?"]
    assert option(args, "-fps_mode") == "passthrough"


def test_hls_from_the_proxy() -> None:
    args = hls_args(src("proxy.mp4"), "out")
    assert option(args, "-c") == "copy"
    assert option(input_part(args), "-f") == "mov"
    assert option(output_part(args), "-f") == "hls"
    assert option(args, "-hls_segment_type") == "fmp4"
    assert option(args, "-hls_time") == "2"
    assert option(args, "-hls_playlist_type") == "vod"
    assert option(args, "-hls_segment_filename") == os.path.join("out", "segment_%05d.m4s")
    assert args[-2] == os.path.join("out", "index.m3u8")


def test_thumbnail_is_a_small_jpeg() -> None:
    args = thumbnail_args(src("photo.png", "png_pipe", max_pixels=100_000_000), "thumb.jpg")
    assert "min(640,iw)" in option(args, "-vf")
    assert option(args, "-frames:v") == "1"
    assert option(input_part(args), "-f") == "png_pipe"  # one image, never an image2 pattern
    assert option(input_part(args), "-max_pixels") == "100000000"
    assert option(output_part(args), "-f") == "image2"  # the muxer writing our one JPEG


def test_resolve_pinned_build() -> None:
    tool = resolve_ffmpeg()
    assert os.path.isabs(tool.exe) and os.access(tool.exe, os.X_OK)
    assert tool.version and " " not in tool.version
    assert resolve_ffmpeg() is tool  # cached: -version runs once per executable
    assert resolve_ffmpeg(tool.exe) == tool  # a configured path is used as given


def test_resolve_configured_path_missing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ToolError, match="not found"):
        resolve_ffmpeg(str(tmp_path / "no-ffmpeg"))
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'not the tool'\n")
    fake.chmod(0o755)
    with pytest.raises(ToolError, match="does not look like ffmpeg"):
        resolve_ffmpeg(str(fake))


def test_tool_is_a_value() -> None:
    assert Tool("/x/ffmpeg", "7.1") == Tool("/x/ffmpeg", "7.1")


# -- every input is opened with its demuxer named and its protocols fenced ------------------


def every_builder(source: Input) -> list[list[str]]:
    return [
        proxy_args(source, "out.mp4", remux=False),
        proxy_args(source, "out.mp4", remux=True),
        poster_args(source, "p.jpg", at_seconds=1),
        contact_sheet_args(source, "s.jpg", duration=60),
        validate_args(source),
        hls_args(source, "hls"),
        thumbnail_args(source, "t.jpg"),
    ]


def inputs_of(args: list[str]) -> list[list[str]]:
    """The options of each input: what comes after the previous ``-i FILE`` (or the start)."""
    found, begin = [], 0
    for i, arg in enumerate(args):
        if arg == "-i":
            found.append(args[begin : i + 2])
            begin = i + 2
    return found


@pytest.mark.parametrize(
    "location, url, protocols",
    [
        ("/data/vault/originals/0123", "file:/data/vault/originals/0123", "file"),
        # A path that looks like a protocol is still a path.
        ("/data/concat:x|y/subfile,,start,0,end,9,,:z", "file:/data/concat:x|y/subfile,,start,0,end,9,,:z", "file"),
        ("https://s3.example/bucket/originals/0123?X-Amz-Signature=ab", "https://s3.example/bucket/originals/0123?X-Amz-Signature=ab", "https,tls,tcp"),
        ("http://127.0.0.1:9000/bucket/originals/0123?X-Amz-Signature=ab", "http://127.0.0.1:9000/bucket/originals/0123?X-Amz-Signature=ab", "http,tcp"),
    ],
)
def test_every_input_names_its_demuxer_and_protocols(location: str, url: str, protocols: str) -> None:
    source = Input(location, "mov", max_pixels=33_177_600)
    for args in every_builder(source):
        for part in inputs_of(args):
            assert option(part, "-i") == url
            assert option(part, "-f") == "mov"
            assert option(part, "-format_whitelist") == "mov"
            assert option(part, "-protocol_whitelist") == protocols
            assert option(part, "-max_pixels") == "33177600"


@pytest.mark.parametrize("demuxer", ["concat", "hls", "dash", "image2", "sdp", "rtp", "rtsp", "svg_pipe", "tee", "lavfi", "mov,mp4"])
def test_no_input_with_a_demuxer_off_the_list(demuxer: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        Input("/vault/originals/0123", demuxer)


@pytest.mark.parametrize(
    "location",
    ["concat:/a|/b", "subfile:/a", "data:video/mp4;base64,AAAA", "pipe:0", "crypto:/a", "ftp://h/a", "file:///etc/passwd",
     "rtmp://h/a", "relative/originals/0123", "tcp://127.0.0.1:80"],
)
def test_no_input_from_anywhere_but_the_vault(location: str) -> None:
    with pytest.raises(ValueError):
        Input(location, "mov")


def test_the_allow_list_holds_only_demuxers_that_read_one_file() -> None:
    assert set(formats.ALLOWED).isdisjoint(formats.REFERRING)
    assert "image2" not in formats.ALLOWED and "concat" not in formats.ALLOWED
    # Every name is one ffmpeg takes for -f (a single name, no lists).
    assert all("," not in name for name in formats.ALLOWED)
