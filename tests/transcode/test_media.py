"""Real ffmpeg on real (generated) media: probe, proxy, stills, validation, HLS."""

from __future__ import annotations

import hashlib
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.media import CREATION_TIME, RAW_RATE, MediaLibrary, library
from transcode.ffmpeg import (
    HLS_INIT,
    HLS_PLAYLIST,
    Input,
    Tool,
    contact_sheet_args,
    hls_args,
    poster_args,
    proxy_args,
    resolve_ffmpeg,
    thumbnail_args,
    validate_args,
)
from transcode.probe import RAW_FORMATS, choose_demuxer, classify, is_browser_playable, probe, summarise
from transcode.run import FFmpegError, RunResult, run_ffmpeg

# name: (video codec, audio codec or None, container, remux?)
VIDEOS: dict[str, tuple[str, str | None, str, bool]] = {
    "h264_aac_mp4": ("h264", "aac", "mp4", True),
    "mpeg4_mp3_avi": ("mpeg4", "mp3", "avi", False),
    "mjpeg_mulaw_avi": ("mjpeg", "pcm_mulaw", "avi", False),
    "h263_amr_3gp": ("h263", "amr_nb", "3gp", False),
    "mpeg2_ps": ("mpeg2video", "mp2", "mpeg", False),
    "hevc_mp4": ("hevc", "aac", "mp4", False),
    "raw_h264": ("h264", None, "h264", False),
    "vfr_mp4": ("h264", None, "mp4", True),
    "rotated_mp4": ("h264", "aac", "mp4", False),  # rotation is applied, so it is re-encoded
    "no_audio_mp4": ("h264", None, "mp4", True),
}


@pytest.fixture(scope="session")
def media() -> MediaLibrary:
    return library()


@pytest.fixture(scope="session")
def tool() -> Tool:
    return resolve_ffmpeg()


def top_level_boxes(path: Path) -> list[bytes]:
    """The types of an MP4's top-level boxes, in file order."""
    kinds = []
    with open(path, "rb") as stream:
        while header := stream.read(8):
            size, kind = struct.unpack(">I4s", header)
            kinds.append(kind)
            if size == 0:
                break
            if size == 1:
                size = struct.unpack(">Q", stream.read(8))[0] - 8
            stream.seek(size - 8, 1)
    return kinds


def input_of(path: Path) -> str | None:
    return RAW_FORMATS.get(path.suffix.lower())


def opened(path: Path, framerate: str | None = None) -> Input:
    """The file as the pipeline opens it: with the demuxer its bytes (or raw extension) name."""
    choice = choose_demuxer(path.read_bytes()[: 1 << 20], raw=input_of(path))
    assert choice.demuxer, choice
    return Input(str(path.resolve()), choice.demuxer, framerate=framerate)


def make_proxy(
    tool: Tool, src: Path, dst: Path, summary: dict[str, Any], *, remux: bool, framerate: str | None = None, **kw: Any
) -> RunResult:
    args = proxy_args(opened(src, framerate), str(dst), remux=remux, has_audio=bool(summary["audio_codec"]), **kw)
    return run_ffmpeg(tool, args, duration=summary["duration"], timeout=60)


def check_proxy(path: Path) -> dict[str, Any]:
    data = probe(str(path))
    summary = summarise(data)
    assert summary["container"] == "mp4"
    assert summary["video_codec"] == "h264"
    assert summary["pix_fmt"] == "yuv420p"
    assert summary["audio_codec"] in (None, "aac")
    assert summary["width"] % 2 == 0 and summary["height"] % 2 == 0
    assert summary["rotation"] == 0
    boxes = top_level_boxes(path)
    assert boxes.index(b"moov") < boxes.index(b"mdat"), boxes  # faststart
    return summary


@pytest.mark.parametrize("name", list(VIDEOS))
def test_probe_and_proxy(name: str, media: MediaLibrary, tool: Tool, tmp_path: Path) -> None:
    video_codec, audio_codec, container, remux = VIDEOS[name]
    src = media.path(name)
    data = probe(str(src), input_format=input_of(src))
    summary = summarise(data)
    assert classify(src.read_bytes()[:512], data) == "video"
    assert (summary["container"], summary["video_codec"], summary["audio_codec"]) == (container, video_codec, audio_codec)
    assert summary["width"] and summary["height"] and summary["frame_rate"]
    assert is_browser_playable(summary) is remux

    started = time.monotonic()
    run = make_proxy(tool, src, tmp_path / "proxy.mp4", summary, remux=remux)
    took = time.monotonic() - started
    proxy = check_proxy(tmp_path / "proxy.mp4")
    assert (proxy["audio_codec"] == "aac") is (audio_codec is not None)

    decoded = run_ffmpeg(tool, validate_args(opened(src)), timeout=60)
    assert proxy["frames"] == decoded.frame == run.frame  # not one frame gained or lost
    assert proxy["frames"] == media.frames(name)  # as generated
    duration = summary["duration"] or decoded.out_time
    assert duration is not None
    assert abs(proxy["duration"] - duration) <= 1 / summary["frame_rate"] + 1e-6
    if remux:
        assert took < 5  # a copy, not an encode
    if name == "rotated_mp4":
        assert summary["rotation"] == 90
        assert (proxy["width"], proxy["height"]) == (summary["height"], summary["width"])
        assert "side_data_list" not in probe(str(tmp_path / "proxy.mp4"))["streams"][0]


def test_summary_of_the_phone_clip(media: MediaLibrary) -> None:
    data = probe(str(media.path("h264_aac_mp4")))
    summary = summarise(data)
    assert summary == {
        "container": "mp4",
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
        "video_codec": "h264",
        "pix_fmt": "yuv420p",
        "audio_codec": "aac",
        "duration": 2.0,
        "width": 320,
        "height": 240,
        "frame_rate": 25.0,
        "frame_rate_assumed": False,
        "frames": 50,
        "creation_time": CREATION_TIME,
        "rotation": 0,
    }
    video, audio = data["streams"]
    assert (video["r_frame_rate"], video["avg_frame_rate"], video["nb_frames"]) == ("25/1", "25/1", "50")
    assert (audio["sample_rate"], audio["channels"], audio["codec_type"]) == ("44100", 1, "audio")
    assert data["format"]["size"] == str(media.path("h264_aac_mp4").stat().st_size)
    assert data["chapters"] == []


def test_rotation_as_ffprobe_shows_it(media: MediaLibrary) -> None:
    (side,) = probe(str(media.path("rotated_mp4")))["streams"][0]["side_data_list"]
    assert side == {
        "side_data_type": "Display Matrix",
        "displaymatrix": "\n00000000:            0      -65536           0\n"
        "00000001:        65536           0           0\n"
        "00000002:            0           0  1073741824\n",
        "rotation": 90,
    }


def test_variable_frame_rate_survives_a_transcode(media: MediaLibrary, tool: Tool, tmp_path: Path) -> None:
    src = media.path("vfr_mp4")
    summary = summarise(probe(str(src)))
    make_proxy(tool, src, tmp_path / "proxy.mp4", summary, remux=False)
    proxy = check_proxy(tmp_path / "proxy.mp4")
    assert proxy["frames"] == media.frames("vfr_mp4") == summary["frames"]
    assert abs(proxy["duration"] - summary["duration"]) <= 0.04 + 1e-6


def test_raw_stream_without_timing_gets_25_fps(media: MediaLibrary, tool: Tool, tmp_path: Path) -> None:
    src = media.path("raw_h264_untimed")
    summary = summarise(probe(str(src), input_format="h264"))
    assert summary["frame_rate_assumed"] is True and summary["frame_rate"] == 25.0
    make_proxy(tool, src, tmp_path / "assumed.mp4", summary, remux=False)
    assumed = check_proxy(tmp_path / "assumed.mp4")
    frames = media.frames("raw_h264_untimed")
    assert (assumed["frames"], assumed["frame_rate"]) == (frames, 25.0)
    assert assumed["duration"] == pytest.approx(frames / 25)  # 10 fps footage played too fast

    given = summarise(probe(str(src), input_format="h264", framerate=str(RAW_RATE)))
    assert given["frame_rate_assumed"] is False and given["frame_rate"] == RAW_RATE
    make_proxy(tool, src, tmp_path / "given.mp4", given, remux=False, framerate=str(RAW_RATE))
    proxy = check_proxy(tmp_path / "given.mp4")
    assert (proxy["frames"], proxy["frame_rate"]) == (frames, RAW_RATE)
    assert proxy["duration"] == pytest.approx(frames / RAW_RATE)


def test_raw_stream_with_timing_keeps_its_rate(media: MediaLibrary) -> None:
    summary = summarise(probe(str(media.path("raw_h264")), input_format="h264"))
    assert summary["frame_rate_assumed"] is False and summary["frame_rate"] == RAW_RATE


def test_proxy_is_byte_identical_on_a_second_run(media: MediaLibrary, tool: Tool, tmp_path: Path) -> None:
    src = media.path("mpeg4_mp3_avi")
    summary = summarise(probe(str(src)))
    digests = []
    for run in ("one", "two"):
        make_proxy(tool, src, tmp_path / f"{run}.mp4", summary, remux=False)
        digests.append(hashlib.sha256((tmp_path / f"{run}.mp4").read_bytes()).hexdigest())
    assert digests[0] == digests[1]


@pytest.mark.parametrize("name", ["h264_aac_mp4", "rotated_mp4", "mpeg2_ps", "h263_amr_3gp", "raw_h264"])
def test_poster_and_contact_sheet(name: str, media: MediaLibrary, tool: Tool, tmp_path: Path) -> None:
    src = media.path(name)
    summary = summarise(probe(str(src), input_format=input_of(src)))
    if input_of(src):  # a raw stream cannot seek: its stills come from its proxy
        make_proxy(tool, src, tmp_path / "proxy.mp4", summary, remux=False)
        src = tmp_path / "proxy.mp4"
        summary = summarise(probe(str(src)))
    run_ffmpeg(tool, poster_args(opened(src), str(tmp_path / "poster.jpg"), at_seconds=1.0))
    run_ffmpeg(tool, contact_sheet_args(opened(src), str(tmp_path / "sheet.jpg"), duration=summary["duration"]))
    for still in ("poster.jpg", "sheet.jpg"):
        head = (tmp_path / still).read_bytes()[:3]
        assert head == b"\xff\xd8\xff", still
        assert classify(head, None) == "image"
    poster = summarise(probe(str(tmp_path / "poster.jpg")))
    sheet = summarise(probe(str(tmp_path / "sheet.jpg")))
    width, height = (summary["height"], summary["width"]) if summary["rotation"] in (90, -90) else (
        summary["width"], summary["height"]
    )
    assert (poster["width"], poster["height"]) == (width, height)  # upright
    assert sheet["width"] == 4 * 320
    assert sheet["height"] == 4 * (round(320 * height / width) // 2 * 2)  # as scale=320:-2 rounds


def test_thumbnail_of_a_photo(media: MediaLibrary, tool: Tool, tmp_path: Path) -> None:
    src = media.path("photo_jpg")
    assert classify(src.read_bytes()[:16], None) == "image"
    run_ffmpeg(tool, thumbnail_args(opened(src), str(tmp_path / "thumb.jpg")))
    thumb = summarise(probe(str(tmp_path / "thumb.jpg")))
    assert (thumb["width"], thumb["height"]) == (640, 480)


def test_validation_counts_what_decodes(media: MediaLibrary, tool: Tool) -> None:
    whole = run_ffmpeg(tool, validate_args(opened(media.path("h264_aac_mp4"))))
    assert whole.frame == 50 and whole.out_time == pytest.approx(2.0)


def test_truncated_mp4_decodes_fewer_frames_than_declared(media: MediaLibrary, tool: Tool, tmp_path: Path) -> None:
    src = media.path("truncated_mp4")
    summary = summarise(probe(str(src)))
    assert summary["frames"] == 50  # the index (moov first) survived the cut
    try:
        result = run_ffmpeg(tool, validate_args(opened(src)), timeout=60)
    except FFmpegError as exc:  # also acceptable: a clear error, not a crash
        assert exc.stderr_tail
    else:
        assert result.frame is not None and result.frame < summary["frames"]
        assert "partial file" in result.stderr_tail or "Invalid" in result.stderr_tail
    # The half that is there can still be watched.
    make_proxy(tool, src, tmp_path / "proxy.mp4", summary, remux=is_browser_playable(summary))
    assert 0 < check_proxy(tmp_path / "proxy.mp4")["frames"] < 50


def test_mp4_cut_before_its_index_fails_clearly(media: MediaLibrary, tool: Tool) -> None:
    with pytest.raises(FFmpegError) as caught:
        run_ffmpeg(tool, validate_args(opened(media.path("truncated_moov_last_mp4"))), timeout=60)
    assert "moov atom not found" in caught.value.stderr_tail


def test_hls_from_the_proxy(media: MediaLibrary, tool: Tool, tmp_path: Path) -> None:
    src = media.path("mpeg2_ps")
    summary = summarise(probe(str(src)))
    make_proxy(tool, src, tmp_path / "proxy.mp4", summary, remux=False, keyframe_seconds=0.5)
    out = tmp_path / "hls"
    out.mkdir()
    run_ffmpeg(tool, hls_args(opened(tmp_path / "proxy.mp4"), str(out)))
    playlist = (out / HLS_PLAYLIST).read_text()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in playlist and "#EXT-X-ENDLIST" in playlist
    assert f'#EXT-X-MAP:URI="{HLS_INIT}"' in playlist
    segments = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    assert segments and all((out / s).is_file() for s in segments)
    assert (out / HLS_INIT).is_file()
    assert sum(float(line.split(":")[1].rstrip(",")) for line in playlist.splitlines() if line.startswith("#EXTINF")) == (
        pytest.approx(summary["duration"], abs=0.05)
    )
