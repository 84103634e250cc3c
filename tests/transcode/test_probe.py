"""Probing (PyAV, real files), the summary, browser playability and routing."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.media import MediaLibrary, library
from transcode.ffmpeg import resolve_ffmpeg
from transcode.probe import (
    RAW_FORMATS,
    ProbeError,
    classify,
    is_browser_playable,
    method,
    probe,
    probe_json,
    summarise,
)


@pytest.fixture(scope="session")
def media() -> MediaLibrary:
    return library()


@pytest.mark.parametrize(
    "head, kind",
    [
        (b"%PDF-1.7\n%\xe2\xe3", "pdf"),
        (b"PK\x03\x04\x14\x00\x00\x00", "archive"),
        (b"PK\x05\x06" + bytes(18), "archive"),  # an empty ZIP
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image"),
        (b"GIF89a\x01\x00", "image"),
        (b"GIF87a\x01\x00", "image"),
        (b"II*\x00\x08\x00\x00\x00", "image"),
        (b"MM\x00*\x00\x00\x00\x08", "image"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00", "image"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00", "other"),  # an MP4 needs its probe
        (b"", "other"),
        (b"just some text", "other"),
    ],
)
def test_classify_by_magic(head: bytes, kind: str) -> None:
    assert classify(head, None) == kind


def stream(codec_type: str, **extra: Any) -> dict[str, Any]:
    return {"codec_type": codec_type, "disposition": {"attached_pic": 0}, **extra}


def test_classify_by_probe() -> None:
    video = {"format": {"format_name": "avi"}, "streams": [stream("video"), stream("audio")]}
    audio = {"format": {"format_name": "mp3"}, "streams": [stream("audio")]}
    cover = {
        "format": {"format_name": "mp3"},
        "streams": [stream("audio"), stream("video", disposition={"attached_pic": 1})],
    }
    image = {"format": {"format_name": "image2"}, "streams": [stream("video")]}
    data = {"format": {"format_name": "ffmetadata"}, "streams": [stream("data")]}
    assert classify(b"RIFF....AVI ", video) == "video"
    assert classify(b"ID3", audio) == "audio"
    assert classify(b"ID3", cover) == "audio"  # cover art is not a video
    assert classify(b"BM", image) == "image"
    assert classify(b"", data) == "other"
    assert classify(b"%PDF-1.4", video) == "pdf"  # magic wins


def test_raw_formats() -> None:
    assert RAW_FORMATS == {
        ".h264": "h264", ".264": "h264", ".h265": "hevc", ".265": "hevc", ".hevc": "hevc", ".dav": "dhav"
    }


def ffprobe_like(**format_extra: Any) -> dict[str, Any]:
    return {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "12.500000", **format_extra},
        "streams": [
            stream(
                "video",
                codec_name="h264",
                pix_fmt="yuv420p",
                width=1920,
                height=1080,
                r_frame_rate="30000/1001",
                avg_frame_rate="0/0",
                nb_frames="375",
                tags={"creation_time": "2023-05-06T07:08:09.000000Z"},
                side_data_list=[{"side_data_type": "Display Matrix", "rotation": -90}],
            ),
            stream("audio", codec_name="aac"),
        ],
        "chapters": [],
    }


def test_summary_of_ffprobe_json() -> None:
    summary = summarise(ffprobe_like(tags={"major_brand": "qt  "}))
    assert summary["container"] == "mov"
    assert summary["frame_rate"] == 29.97  # avg 0/0 falls back to r_frame_rate
    assert summary["frames"] == 375
    assert summary["duration"] == 12.5
    assert summary["rotation"] == -90
    assert summary["creation_time"] == "2023-05-06T07:08:09.000000Z"  # from the stream when not global
    assert summarise(ffprobe_like(tags={"major_brand": "3gp5"}))["container"] == "3gp"
    assert summarise(ffprobe_like())["container"] == "mp4"
    assert summarise({"format": {"format_name": "matroska,webm"}, "streams": []})["container"] == "matroska"


def test_browser_playable() -> None:
    playable = {"container": "mp4", "video_codec": "h264", "pix_fmt": "yuv420p", "audio_codec": "aac", "rotation": 0}
    assert is_browser_playable(playable)
    assert is_browser_playable({**playable, "container": "mov", "audio_codec": None})
    assert not is_browser_playable({**playable, "container": "avi"})
    assert not is_browser_playable({**playable, "container": "3gp"})
    assert not is_browser_playable({**playable, "video_codec": "hevc"})
    assert not is_browser_playable({**playable, "pix_fmt": "yuv422p"})
    assert not is_browser_playable({**playable, "pix_fmt": "yuv420p10le"})
    assert not is_browser_playable({**playable, "audio_codec": "mp3"})
    assert not is_browser_playable({**playable, "rotation": 90})


@pytest.mark.parametrize("name", ["empty", "not_media", "truncated_moov_last_mp4"])
def test_unreadable_files_raise_probe_error(name: str, media: MediaLibrary) -> None:
    path = media.path(name)
    with pytest.raises(ProbeError) as caught:
        probe(str(path))
    assert str(caught.value)
    assert classify(path.read_bytes()[:512], None) == "other"


def test_empty_and_missing(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(ProbeError, match="empty"):
        probe(str(tmp_path / "empty.mp4"))
    with pytest.raises(ProbeError, match="cannot read"):
        probe(str(tmp_path / "missing.mp4"))


def test_a_text_file_that_looks_like_a_stream_is_not_media(tmp_path: Path) -> None:
    (tmp_path / "notes.264").write_bytes(b"not an h264 stream\n" * 100)
    with pytest.raises(ProbeError):
        probe(str(tmp_path / "notes.264"), input_format="h264")


def test_clockwise_rotation(media: MediaLibrary, tmp_path: Path) -> None:
    out = tmp_path / "cw.mp4"
    subprocess.run(
        [resolve_ffmpeg().exe, "-loglevel", "error", "-display_rotation", "-90", "-i",
         str(media.path("no_audio_mp4")), "-c", "copy", str(out)],
        check=True,
        timeout=60,
    )
    (side,) = probe(str(out))["streams"][0]["side_data_list"]
    assert side["rotation"] == -90
    assert side["displaymatrix"].splitlines()[1:3] == [
        "00000000:            0       65536           0",
        "00000001:       -65536           0           0",
    ]
    assert summarise(probe(str(out)))["rotation"] == -90


def test_probe_records_how_it_was_made(media: MediaLibrary) -> None:
    data = probe(str(media.path("raw_h264")), input_format="h264", framerate="10")
    assert data["input"] == {"format": "h264", "framerate": "10"}
    assert data["format"]["format_name"] == "h264"
    assert data["streams"][0]["avg_frame_rate"] == "10/1"


@pytest.fixture
def http_root(media: MediaLibrary) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(media.root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_probe_over_http(media: MediaLibrary, http_root: str) -> None:
    path = media.path("h264_aac_mp4")
    data = probe(f"{http_root}/{path.name}", input_format="mov")  # a remote input names its demuxer
    assert summarise(data)["video_codec"] == "h264"
    assert data["format"]["size"] == str(path.stat().st_size)


def test_probe_json_is_stable_and_names_the_file(media: MediaLibrary) -> None:
    data = probe(str(media.path("h264_aac_mp4")))
    stored = probe_json(data, filename="clip.mp4")
    assert stored == probe_json(probe(str(media.path("h264_aac_mp4"))), filename="clip.mp4")
    assert json.loads(stored)["format"]["filename"] == "clip.mp4"
    assert json.loads(stored)["streams"] == data["streams"]


def test_method_names_the_libraries() -> None:
    described = method()
    assert described["tool"] == "pyav" and described["version"]
    assert set(described["libraries"]) >= {"libavcodec", "libavformat"}


def test_a_signed_urls_query_is_not_kept(media: MediaLibrary, http_root: str) -> None:
    path = media.path("no_audio_mp4")
    data = probe(f"{http_root}/{path.name}?X-Amz-Signature=secret&X-Amz-Expires=60", input_format="mov")
    assert "secret" not in probe_json(data).decode()
    assert data["format"]["filename"] == f"{http_root}/{path.name}"
