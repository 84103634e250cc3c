"""Real test media, made with the pinned ffmpeg from lavfi sources (testsrc2 + sine).

Clips are tiny (2 s, 320x240 or smaller) so the whole set is made in about a second. Each file is
made the first time it is asked for and kept in one temporary directory for the test process
(removed when it exits). ``MEDIA`` names every file; :func:`library` returns the shared set.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transcode.ffmpeg import resolve_ffmpeg

SECONDS = 2
RATE = 25
SIZE = "320x240"
# The frames the variable-frame-rate clip keeps out of RATE * SECONDS: an irregular pattern
# (three kept, two dropped, plus one stray) so the gaps between frames are 40, 120 and 80 ms.
VFR_SELECT = r"lt(mod(n\,5)\,3)+eq(n\,44)"
VFR_FRAMES = sum(1 for n in range(RATE * SECONDS) if n % 5 < 3 or n == 44)
RAW_RATE = 10  # the raw H.264 streams are encoded at 10 fps, so ffmpeg's 25 fps guess shows
CREATION_TIME = "2024-03-01T12:34:56.000000Z"


def _video(size: str = SIZE, rate: int = RATE) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={SECONDS}"]


def _audio(sample_rate: int = 44100) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={sample_rate}:duration={SECONDS}"]


X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-threads", "1"]


@dataclass(frozen=True)
class Recipe:
    filename: str
    args: Callable[[Path], list[str]] | None  # ffmpeg arguments (after the executable) to make it
    frames: int | None = None  # video frames in the clip, where known exactly
    needs: str | None = None  # another file made first (the input of ``args``)
    cut_from: str | None = None  # or: the first half of this file's bytes


MEDIA: dict[str, Recipe] = {
    # Browser-playable already: the remux path.
    "h264_aac_mp4": Recipe(
        "h264_aac.mp4",
        lambda r: [*_video(), *_audio(), *X264, "-c:a", "aac", "-movflags", "+faststart",
                   "-metadata", f"creation_time={CREATION_TIME}", "-shortest", str(r / "h264_aac.mp4")],
        RATE * SECONDS,
    ),
    "mpeg4_mp3_avi": Recipe(
        "mpeg4_mp3.avi",
        lambda r: [*_video(), *_audio(), "-c:v", "mpeg4", "-q:v", "5", "-c:a", "libmp3lame", "-b:a", "64k",
                   str(r / "mpeg4_mp3.avi")],
        RATE * SECONDS,
    ),
    "mjpeg_mulaw_avi": Recipe(
        "mjpeg_mulaw.avi",
        lambda r: [*_video(), *_audio(), "-c:v", "mjpeg", "-q:v", "5", "-c:a", "pcm_mulaw", "-ar", "8000",
                   "-ac", "1", str(r / "mjpeg_mulaw.avi")],
        RATE * SECONDS,
    ),
    # As old phones made them: H.263 QCIF at 15 fps, AMR-NB 8 kHz mono.
    "h263_amr_3gp": Recipe(
        "h263_amr.3gp",
        lambda r: [*_video("176x144", 15), *_audio(), "-c:v", "h263", "-c:a", "libopencore_amrnb", "-ar", "8000",
                   "-ac", "1", "-b:a", "12.2k", "-shortest", str(r / "h263_amr.3gp")],
        15 * SECONDS,
    ),
    "mpeg2_ps": Recipe(
        "mpeg2.mpg",
        lambda r: [*_video(), *_audio(), "-c:v", "mpeg2video", "-c:a", "mp2", "-f", "vob", str(r / "mpeg2.mpg")],
        RATE * SECONDS,
    ),
    "hevc_mp4": Recipe(
        "hevc.mp4",
        lambda r: [*_video(), *_audio(), "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
                   "log-level=error:pools=1:frame-threads=1", "-tag:v", "hvc1", "-c:a", "aac", "-shortest",
                   str(r / "hevc.mp4")],
        RATE * SECONDS,
    ),
    # Raw elementary H.264 as a CCTV export: x264 writes the frame rate into the stream (VUI)...
    "raw_h264": Recipe(
        "raw.h264",
        lambda r: [*_video(rate=RAW_RATE), *X264, "-f", "h264", str(r / "raw.h264")],
        RAW_RATE * SECONDS,
    ),
    # ...OpenH264 does not, like many DVRs: ffmpeg then assumes 25 fps.
    "raw_h264_untimed": Recipe(
        "untimed.264",
        lambda r: [*_video(rate=RAW_RATE), "-c:v", "libopenh264", "-pix_fmt", "yuv420p", "-f", "h264",
                   str(r / "untimed.264")],
        RAW_RATE * SECONDS,
    ),
    "vfr_mp4": Recipe(
        "vfr.mp4",
        lambda r: [*_video(), "-vf", f"select='{VFR_SELECT}'", "-fps_mode", "vfr", *X264, str(r / "vfr.mp4")],
        VFR_FRAMES,
    ),
    # A phone held upright: stored landscape, with a display matrix rotating it 90 degrees.
    "rotated_mp4": Recipe(
        "rotated.mp4",
        lambda r: ["-display_rotation", "90", "-i", str(r / "h264_aac.mp4"), "-c", "copy", str(r / "rotated.mp4")],
        RATE * SECONDS,
        needs="h264_aac_mp4",
    ),
    "no_audio_mp4": Recipe(
        "no_audio.mp4",
        lambda r: [*_video(), *X264, "-an", str(r / "no_audio.mp4")],
        RATE * SECONDS,
    ),
    # The moov atom at the end (ffmpeg's default): cut in half, the index is gone.
    "moov_last_mp4": Recipe(
        "moov_last.mp4",
        lambda r: [*_video(), *_audio(), *X264, "-c:a", "aac", "-shortest", str(r / "moov_last.mp4")],
        RATE * SECONDS,
    ),
    # moov first (faststart): the first half still plays, the index declares all the frames.
    "truncated_mp4": Recipe("truncated.mp4", None, RATE * SECONDS, cut_from="h264_aac_mp4"),
    "truncated_moov_last_mp4": Recipe("truncated_moov_last.mp4", None, cut_from="moov_last_mp4"),
    # Audio only, as phones and interview recorders make it: a WAV with more channels than a
    # working copy keeps, an MP3, and AAC in MP4 (.m4a: the mov demuxer, kind audio).
    "surround_wav": Recipe(
        "surround.wav",
        lambda r: [*_audio(48000), "-af", "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0", "-c:a", "pcm_s16le",
                   str(r / "surround.wav")],
    ),
    "mono_mp3": Recipe(
        "mono.mp3",
        lambda r: [*_audio(22050), "-ac", "1", "-c:a", "libmp3lame", "-b:a", "48k", str(r / "mono.mp3")],
    ),
    "aac_m4a": Recipe(
        "aac.m4a",
        lambda r: [*_audio(), "-ac", "2", "-c:a", "aac", "-b:a", "96k", str(r / "aac.m4a")],
    ),
    "photo_jpg": Recipe(
        "photo.jpg",
        lambda r: ["-f", "lavfi", "-i", "testsrc2=size=1000x750:rate=1:duration=1", "-frames:v", "1",
                   "-update", "1", str(r / "photo.jpg")],
    ),
}


class MediaLibrary:
    """Makes each test file on first use, in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.exe = resolve_ffmpeg().exe

    def path(self, name: str) -> Path:
        if name == "empty":
            return self._write("empty.bin", b"")
        if name == "not_media":
            text = b"Officer's notes, not a video.\n" * 200 + bytes(range(256)) * 8
            return self._write("notes.bin", text)
        recipe = MEDIA[name]
        target = self.root / recipe.filename
        if target.exists():
            return target
        if recipe.cut_from:
            data = self.path(recipe.cut_from).read_bytes()  # a few hundred KiB at most
            return self._write(recipe.filename, data[: len(data) // 2])
        if recipe.needs:
            self.path(recipe.needs)
        assert recipe.args is not None
        args = recipe.args(self.root)
        partial = target.with_name(target.name + ".part" + target.suffix)
        args[-1] = str(partial)
        done = subprocess.run(
            [self.exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
            capture_output=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"making {recipe.filename} failed: {done.stderr.decode(errors='replace')[-2000:]}")
        os.replace(partial, target)
        return target

    def frames(self, name: str) -> int | None:
        return MEDIA[name].frames

    def _write(self, filename: str, data: bytes) -> Path:
        target = self.root / filename
        if not target.exists():
            partial = target.with_name(target.name + ".part")
            partial.write_bytes(data)
            os.replace(partial, target)
        return target


@functools.cache
def library() -> MediaLibrary:
    """The test process's one media library (a temporary directory, removed at exit)."""
    root = Path(tempfile.mkdtemp(prefix="evidence-media-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return MediaLibrary(root)


def make_clip(path: Path, seconds: int, size: str = "640x480", *, frequency: int = 440) -> Path:
    """An MPEG-4/MP3 AVI as DVRs export it, long enough that making its proxy is a real transcode
    taking seconds (a worker can be killed in the middle of it)."""
    subprocess.run(
        [resolve_ffmpeg().exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=44100:duration={seconds}",
         "-c:v", "mpeg4", "-q:v", "4", "-c:a", "libmp3lame", "-b:a", "64k", str(path)],
        check=True, capture_output=True, timeout=120,
    )
    return path
