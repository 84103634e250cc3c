"""Bounds on decoding children: the CPU budget (pure), the plain reasons, and the real thing:
ffmpeg under RLIMIT_CPU / RLIMIT_AS on generated bombs, and a frame that lies about its size."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.support import hostile
from transcode import ffmpeg
from transcode.ffmpeg import PROGRESS, Input, Tool, resolve_ffmpeg
from transcode.limits import HD_PIXELS, Limits, budget_seconds, child_env, stopped_reason
from transcode.run import FFmpegError, run_ffmpeg

GiB = 1 << 30
EIGHT_K = 7680 * 4320


@pytest.fixture(scope="module")
def tool() -> Tool:
    return resolve_ffmpeg()


def budget(duration: float | None, width: int | None = None, height: int | None = None, size: int = 10**9) -> float:
    return budget_seconds(base=120, per_media_second=10, duration=duration, width=width, height=height, size=size)


def test_the_budget_grows_with_duration_and_pixels_beyond_1080p() -> None:
    assert budget(None) == budget(0) == 120  # before the probe: the base
    assert budget(60, 1920, 1080) == 120 + 600
    assert budget(60, 640, 480) == 120 + 600  # smaller than 1080p costs no less
    assert budget(60, 3840, 2160) == pytest.approx(120 + 600 * 4)
    assert budget(60, 7680, 4320) == pytest.approx(120 + 600 * EIGHT_K / HD_PIXELS)


def test_a_small_file_cannot_claim_hours() -> None:
    # 19 KB declaring ten hours of 1080p: credited with what 19 KB can hold, not ten hours.
    assert budget(36_000, 1920, 1080, size=19_000) == pytest.approx(120 + 10 * 19_000 / 4000)
    assert budget(36_000, 1920, 1080, size=5 * 10**9) == 120 + 360_000  # a real ten-hour export


def test_plain_reasons() -> None:
    limits = Limits(memory_bytes=4 * GiB, cpu_seconds=7.2, budget_seconds=310.4)
    assert limits.cpu_soft == 8
    assert stopped_reason(limits, 255, 8.0, "Exiting normally, received signal 24.") == (
        "stopped: used its CPU-time budget of 310 s"
    )
    assert stopped_reason(limits, -signal.SIGXCPU, 3.0, "") == "stopped: used its CPU-time budget of 310 s"
    assert stopped_reason(limits, 1, 0.4, "[png] Cannot allocate memory") == "stopped: needed more than 4 GiB of memory"
    assert stopped_reason(Limits(256 << 20, 1, 1), 3, 0.1, "MemoryError: out of memory") == (
        "stopped: needed more than 256 MiB of memory"
    )
    assert "killed by the system" in (stopped_reason(limits, -signal.SIGKILL, 0.5, "") or "")
    assert stopped_reason(limits, -signal.SIGSEGV, 0.5, "") == "stopped: the decoder crashed on this file (SIGSEGV)"
    assert stopped_reason(limits, -signal.SIGSEGV, 0.5, "", child="renderer") == \
        "stopped: the renderer crashed on this file (SIGSEGV)"
    assert stopped_reason(limits, 1, 0.5, "moov atom not found") is None  # an ordinary failure
    assert stopped_reason(None, 1, 99.0, "") is None


def test_children_get_no_credentials() -> None:
    env = child_env({"PATH": "/usr/bin", "EVIDENCE_S3_SECRET_KEY": "s", "AWS_SECRET_ACCESS_KEY": "s", "LANG": "C"})
    assert env == {"PATH": "/usr/bin", "LANG": "C", "MALLOC_ARENA_MAX": "2"}


def test_cpu_time_is_bounded_and_measured(tool: Tool) -> None:
    endless = [*PROGRESS, "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=25:duration=3600",
               "-c:v", "libx264", "-preset", "veryfast", "-f", "null", "-"]  # fmt: skip
    started = time.monotonic()
    with pytest.raises(FFmpegError) as caught:
        run_ffmpeg(tool, endless, limits=Limits(memory_bytes=4 * GiB, cpu_seconds=0.5, budget_seconds=12.3))
    assert caught.value.stopped == "stopped: used its CPU-time budget of 12 s"
    assert 1.0 <= caught.value.cpu_seconds < 6  # the soft limit (1 s), at most the grace beyond it
    assert time.monotonic() - started < 20


def test_cpu_time_of_a_clean_run_is_reported(tool: Tool) -> None:
    short = [*PROGRESS, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1", "-f", "null", "-"]
    result = run_ffmpeg(tool, short, limits=Limits(memory_bytes=4 * GiB, cpu_seconds=60, budget_seconds=60))
    assert 0 < result.cpu_seconds < 10 and not result.over_pixels


def test_a_memory_bomb_stops_in_its_child(tool: Tool, tmp_path: Path) -> None:
    # 16000 x 16000 RGBA at 16 bits declared in 300 bytes: a 2 GB picture.
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(hostile.png_bomb(16000, 16000, color=6, depth=16))
    assert bomb.stat().st_size < 1000
    args = ffmpeg.thumbnail_args(Input(str(bomb), "png_pipe", max_pixels=300_000_000), str(tmp_path / "t.jpg"))
    with pytest.raises(FFmpegError) as caught:
        run_ffmpeg(tool, args, limits=Limits(memory_bytes=GiB, cpu_seconds=60, budget_seconds=60))
    assert caught.value.stopped == "stopped: needed more than 1 GiB of memory"


def test_a_frame_larger_than_its_headers_is_not_decoded(tool: Tool, tmp_path: Path) -> None:
    lying = tmp_path / "lying.avi"
    lying.write_bytes(hostile.lying_mjpeg_avi(8000, 8000))
    source = Input(str(lying), "avi", max_pixels=EIGHT_K)
    try:
        result = run_ffmpeg(tool, ffmpeg.validate_args(source), limits=Limits(4 * GiB, 60, 60))
        over, frames = result.over_pixels, result.frame
    except FFmpegError as error:
        over, frames = error.over_pixels, 0
    assert over and not frames
    # Without the bound the same file decodes its 64-megapixel frames: the test file is a real bomb.
    unbounded = ffmpeg.validate_args(Input(str(lying), "avi"))
    assert "-max_pixels" not in unbounded
    result = run_ffmpeg(tool, unbounded)
    assert result.frame == 2 and not result.over_pixels
