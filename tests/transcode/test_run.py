"""Running ffmpeg: progress, the bounded log tail, errors and time limits (real ffmpeg, lavfi input)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from transcode.ffmpeg import PROGRESS, Tool, resolve_ffmpeg
from transcode.run import STDERR_TAIL, FFmpegError, run_ffmpeg


@pytest.fixture(scope="module")
def tool() -> Tool:
    return resolve_ffmpeg()


def generate(seconds: float, *extra: str, realtime: bool = False) -> list[str]:
    source = ["-re"] if realtime else []
    return [
        *PROGRESS,
        *extra,
        *source,
        "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=25:duration={seconds}",
        "-f", "null", "-",
    ]  # fmt: skip


def test_result_carries_frames_and_time(tool: Tool) -> None:
    result = run_ffmpeg(tool, generate(1))
    assert result.returncode == 0
    assert result.frame == 25
    assert result.out_time_us == 1_000_000 and result.out_time == 1.0
    assert result.seconds > 0


def test_progress_is_a_percentage_at_most_once_a_second(tool: Tool) -> None:
    seen: list[tuple[float, float]] = []
    run_ffmpeg(tool, generate(3.5, realtime=True), duration=3.5, on_progress=lambda p: seen.append((time.monotonic(), p)))
    values = [p for _, p in seen]
    assert values[-1] == 100.0
    assert values == sorted(values) and all(0 <= p <= 100 for p in values)
    assert len(values) >= 3  # a 3.5 s real-time run reports along the way, not just at the end (2.5 s gave two reports under load)
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(seen[:-1])]
    assert all(gap >= 0.9 for gap in gaps)


def test_failure_raises_with_ffmpegs_reason(tool: Tool, tmp_path: Path) -> None:
    with pytest.raises(FFmpegError) as caught:
        run_ffmpeg(tool, [*PROGRESS, "-i", str(tmp_path / "missing.mp4"), "-f", "null", "-"])
    assert caught.value.returncode != 0
    assert "No such file or directory" in caught.value.stderr_tail
    assert "No such file" in str(caught.value) or "failed" in str(caught.value).lower()


def test_timeout_kills_the_process(tool: Tool) -> None:
    started = time.monotonic()
    with pytest.raises(FFmpegError) as caught:
        run_ffmpeg(tool, generate(600, realtime=True), timeout=0.5)
    assert caught.value.timed_out
    assert "timed out" in str(caught.value)
    assert time.monotonic() - started < 10


def test_stderr_tail_is_bounded(tool: Tool) -> None:
    result = run_ffmpeg(tool, generate(1, "-loglevel", "debug"))
    assert 0 < len(result.stderr_tail.encode()) <= STDERR_TAIL
