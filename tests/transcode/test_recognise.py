"""What becomes of a file, from its first bytes and the probe child's answer (pure)."""

from __future__ import annotations

from typing import Any

from tests.support import hostile
from transcode.probe_child import Outcome
from transcode.recognise import Bounds, Verdict, after_probe, before_probe, megapixels, pixel_limit

BOUNDS = Bounds(max_image_pixels=100_000_000, max_video_pixels=7680 * 4320)
REFUSAL = "no working copy: the file is an HLS or M3U playlist, a format that refers to other files; it is kept exactly as received"
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


def video_probe(width: int = 640, height: int = 480) -> dict[str, Any]:
    stream = {"codec_type": "video", "codec_name": "h264", "width": width, "height": height, "pix_fmt": "yuv420p",
              "avg_frame_rate": "25/1", "disposition": {"attached_pic": 0}}
    return {"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "2.000000"}, "streams": [stream]}


def verdict(head: bytes, suffix: str, outcome: Outcome, raw: str | None = None) -> Verdict:
    return after_probe(head, suffix, outcome, BOUNDS, raw=raw, framerate=None)


def test_pdfs_archives_and_image_bombs_are_decided_before_any_probe() -> None:
    assert before_probe(b"%PDF-1.7\n", BOUNDS) == Verdict(kind="pdf")
    assert before_probe(b"PK\x03\x04rest", BOUNDS) == Verdict(kind="archive")
    assert before_probe(hostile.png_bomb(30000, 30000), BOUNDS) == Verdict(
        failure="the image is 30000x30000 pixels (900 megapixels), more than the 100 megapixels allowed: not decoded"
    )
    assert before_probe(hostile.png_bomb(1000, 750), BOUNDS) is None  # an ordinary photo goes on to its probe
    assert before_probe(MP4_HEAD, BOUNDS) is None
    assert pixel_limit(hostile.png_bomb(10, 10), BOUNDS) == 100_000_000
    assert pixel_limit(MP4_HEAD, BOUNDS) == 7680 * 4320


def test_a_refused_format_is_kept_with_its_warning_whatever_its_name() -> None:
    playlist = hostile.hls("/srv/vault/originals/0123")
    for suffix in (".m3u8", ".mp4", ".h264", ""):
        assert verdict(playlist, suffix, Outcome(refusal=REFUSAL)) == Verdict(kind="other", warnings=[REFUSAL])


def test_unreadable_files() -> None:
    notes = b"Officer's notes.\n" * 20
    assert verdict(notes, ".txt", Outcome()) == Verdict(kind="text")  # not media, not named as media: text
    assert verdict(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), ".doc", Outcome()) == Verdict(kind="other")  # OLE
    assert verdict(notes, ".mp4", Outcome()) == Verdict(failure="not readable as media: no demuxer recognises it")
    cut = Outcome(demuxer="mov", error="not readable as media: moov atom not found")
    assert verdict(MP4_HEAD, ".mov", cut) == Verdict(failure="not readable as media: moov atom not found")
    assert verdict(MP4_HEAD, ".bin", cut) == Verdict(kind="other")  # the name decides, as it always has
    listing = b"/srv/vault/originals/0123\nhttps://evidence.example/api/v1/items/9/derivatives/proxy\n"
    found = verdict(listing, ".avi", Outcome())
    assert found.kind == "other" and found.failure is None
    assert found.warnings == [
        "no working copy: the file is a text file that names other files or locations, a format that refers to other"
        " files; it is kept exactly as received"
    ]
    assert verdict(listing, ".cam", Outcome(), raw="h264").kind == "other"  # named as a raw stream


def test_pictures_over_the_limits() -> None:
    assert verdict(MP4_HEAD, ".avi", Outcome(demuxer="avi", pixels=(8000, 8000, 33_177_600))) == Verdict(
        failure="its frames are 8000x8000 pixels (64 megapixels), more than the 33.2 megapixels allowed: not decoded"
    )
    assert verdict(b"BM", ".bmp", Outcome(demuxer="bmp_pipe", pixels=(20000, 10000, 100_000_000))).failure == (
        "the image is 20000x10000 pixels (200 megapixels), more than the 100 megapixels allowed: not decoded"
    )
    big = verdict(MP4_HEAD, ".mp4", Outcome(demuxer="mov", data=video_probe(8192, 8192)))
    assert big.failure and big.failure.startswith("its frames are 8192x8192 pixels")


def test_media_keeps_its_demuxer_and_probe() -> None:
    data = video_probe()
    found = verdict(MP4_HEAD, ".mp4", Outcome(demuxer="mov", data=data))
    assert found.kind == "video" and found.failure is None and found.probe is data
    assert found.summary["demuxer"] == "mov" and found.summary["width"] == 640
    assert found.summary["input_framerate"] is None and found.warnings == []


def test_megapixels_read_as_a_person_would_write_them() -> None:
    assert megapixels(33_177_600) == "33.2 megapixels"
    assert megapixels(1_600_000_000) == "1,600 megapixels"  # not 1.6e+03
    assert megapixels(100_000_000) == "100 megapixels"
