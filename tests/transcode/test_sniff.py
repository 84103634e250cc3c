"""libavformat's prober on real bytes (no filename, no I/O).

Every evidence format is made with the pinned ffmpeg (tiny files) and must be recognised from
its bytes as the allowed demuxer; every recipe must be refused whatever it is called.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import hostile
from transcode import sniff
from transcode.ffmpeg import resolve_ffmpeg
from transcode.probe import choose_demuxer

VIDEO = ["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=0.5"]
AUDIO = ["-f", "lavfi", "-i", "sine=duration=0.5:sample_rate=8000"]
STILL = ["-f", "lavfi", "-i", "color=c=teal:size=123x45:rate=1:duration=1", "-frames:v", "1"]

# file name: (ffmpeg arguments making it, the demuxer it must be opened with)
SAMPLES: dict[str, tuple[list[str], str]] = {
    "clip.mp4": ([*VIDEO, "-c:v", "libx264", "-pix_fmt", "yuv420p"], "mov"),
    "clip.3gp": ([*VIDEO, "-c:v", "h263", "-s", "128x96"], "mov"),
    "clip.mkv": ([*VIDEO, "-c:v", "mpeg4"], "matroska"),
    "clip.webm": ([*VIDEO, "-c:v", "libvpx"], "matroska"),
    "clip.avi": ([*VIDEO, "-c:v", "mpeg4"], "avi"),
    "clip.mpg": ([*VIDEO, "-c:v", "mpeg2video", "-f", "vob"], "mpeg"),
    "clip.ts": ([*VIDEO, "-c:v", "mpeg2video"], "mpegts"),
    "clip.flv": ([*VIDEO, "-c:v", "flv"], "flv"),
    "clip.wmv": ([*VIDEO, "-c:v", "wmv2"], "asf"),
    "clip.rm": ([*VIDEO, "-c:v", "rv20"], "rm"),
    "clip.ogv": ([*VIDEO, "-c:v", "libtheora"], "ogg"),
    "raw.h264": ([*VIDEO, "-c:v", "libx264", "-f", "h264"], "h264"),
    "raw.hevc": ([*VIDEO, "-c:v", "libx265", "-x265-params", "log-level=error", "-f", "hevc"], "hevc"),
    "raw.m2v": ([*VIDEO, "-c:v", "mpeg2video", "-f", "mpeg2video"], "mpegvideo"),
    "raw.m4v": ([*VIDEO, "-c:v", "mpeg4", "-f", "m4v"], "m4v"),
    "still.png": ([*STILL], "png_pipe"),
    "still.jpg": ([*STILL], "jpeg_pipe"),
    "still.gif": ([*STILL], "gif"),
    "still.bmp": ([*STILL], "bmp_pipe"),
    "still.tiff": ([*STILL], "tiff_pipe"),
    "still.webp": ([*STILL], "webp_pipe"),
    "voice.mp3": ([*AUDIO], "mp3"),
    "voice.wav": ([*AUDIO], "wav"),
    "voice.aac": ([*AUDIO, "-c:a", "aac", "-f", "adts"], "aac"),
    "voice.flac": ([*AUDIO], "flac"),
    "voice.amr": ([*AUDIO, "-c:a", "libopencore_amrnb", "-ar", "8000", "-ac", "1"], "amr"),
    "voice.aiff": ([*AUDIO], "aiff"),
    "voice.ogg": ([*AUDIO, "-c:a", "libopus"], "ogg"),
    "voice.m4a": ([*AUDIO, "-c:a", "aac"], "mov"),
    "voice.wma": ([*AUDIO, "-c:a", "wmav2"], "asf"),
}


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("samples")
    exe = resolve_ffmpeg().exe
    for name, (args, _) in SAMPLES.items():
        subprocess.run([exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args, str(root / name)],
                       check=True, timeout=60, capture_output=True)
    return root


@pytest.mark.parametrize("name", list(SAMPLES))
def test_evidence_formats_are_recognised_from_their_bytes(name: str, samples: Path) -> None:
    head = (samples / name).read_bytes()[: sniff.PROBE_BYTES]
    assert choose_demuxer(head).demuxer == SAMPLES[name][1]


def test_the_filename_plays_no_part(samples: Path) -> None:
    # The same bytes under any name: the prober never sees the name (HLS and image2 score on it).
    head = (samples / "clip.avi").read_bytes()
    found = sniff.sniff(head)
    assert found is not None and (found.name, found.score) == ("avi", 100)
    assert sniff.sniff(hostile.hls("seg.ts")) is None  # an HLS playlist probes on its extension only
    assert sniff.sniff(b"") is None and sniff.sniff(bytes(4096)) is None


def test_full_names_as_ffprobe_prints_them() -> None:
    assert sniff.full_name("mov") == "mov,mp4,m4a,3gp,3g2,mj2"
    assert sniff.full_name("matroska") == "matroska,webm"
    assert sniff.full_name("avi") == "avi"


def test_every_recipe_is_refused_with_its_reason(tmp_path: Path) -> None:
    victim = hostile.Victim("0123456789abcdef0123456789abcdef", tmp_path / "originals" / ("0123456789abcdef" * 2),
                            "http://127.0.0.1:8000/api/v1/items/x/derivatives/proxy")
    files = hostile.recipes(victim)
    assert len(files) > 20
    for name, data in files.items():
        if name == "bare-list.avi":
            assert choose_demuxer(data).unrecognised, name  # no header: only its name says media
            continue
        choice = choose_demuxer(data, raw="h264" if name.endswith(".h264") else None)
        assert choice.demuxer is None, name
        assert choice.refusal and "refers to other files" in choice.refusal, (name, choice)
    for data in (hostile.svg(str(victim.path)), hostile.svg_html_polyglot(victim.api_url)):
        assert "SVG" in (choose_demuxer(data).refusal or "")


def test_audio_behind_a_tag_larger_than_the_window(samples: Path) -> None:
    """Cover art can make an ID3 tag longer than the prober's window, which then sees only the
    tag and guesses MP3: the tag is measured, and what follows it probed."""
    flac = (samples / "voice.flac").read_bytes()
    body = bytes(3 * 1024 * 1024)
    size = len(body)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    tagged = b"ID3\x04\x00\x00" + syncsafe + body + flac
    assert sniff.id3_length(tagged) == 10 + size
    assert choose_demuxer(tagged[: sniff.PROBE_BYTES]).demuxer == "mp3"  # the tag alone: a wrong guess
    assert choose_demuxer(tagged[10 + size :]).demuxer == "flac"
    assert sniff.id3_length(b"ID3\x04\x00\x00\x80\x00\x00\x00") == 0  # not syncsafe: not a tag
    assert sniff.id3_length(flac[:3]) == 0
