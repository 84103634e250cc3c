"""Run ffmpeg: stream its ``-progress`` output, keep a bounded tail of its log, enforce a time limit."""

from __future__ import annotations

import collections
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from transcode.ffmpeg import Tool

STDERR_TAIL = 4096
PROGRESS_INTERVAL = 1.0  # seconds between on_progress calls


class FFmpegError(RuntimeError):
    """ffmpeg exited non-zero (or was killed); ``stderr_tail`` says why, in ffmpeg's words."""

    def __init__(self, returncode: int, stderr_tail: str, *, timed_out: bool = False) -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.timed_out = timed_out
        last = next((line for line in reversed(stderr_tail.splitlines()) if line.strip()), "")
        reason = "timed out" if timed_out else f"exited with status {returncode}"
        super().__init__(f"ffmpeg {reason}" + (f": {last.strip()}" if last else ""))


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stderr_tail: str
    frame: int | None  # the last ``frame=`` seen: video frames written (decoded, for -f null)
    out_time_us: int | None  # the last ``out_time_us=`` seen: how far into the output it got
    seconds: float  # wall time

    @property
    def out_time(self) -> float | None:
        return None if self.out_time_us is None else self.out_time_us / 1_000_000


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:  # "N/A" before the first frame
        return None


def _drain_tail(stream: object, tail: collections.deque[bytes]) -> None:
    # ffmpeg's log is read continuously so the process never blocks on a full pipe; only the
    # last few KiB are kept, however much it writes.
    size = 0
    for chunk in iter(lambda: stream.read1(1024), b""):  # type: ignore[attr-defined]
        tail.append(chunk)
        size += len(chunk)
        while size - len(tail[0]) >= STDERR_TAIL:
            size -= len(tail.popleft())


def run_ffmpeg(
    tool: Tool,
    args: list[str],
    *,
    duration: float | None = None,
    on_progress: Callable[[float], None] | None = None,
    timeout: float | None = None,
) -> RunResult:
    """Run ``tool.exe *args`` (args from a builder, with ``-progress pipe:1``) to its end.

    ``on_progress`` gets a percentage (0-100, from out_time / ``duration``) at most once per
    second, and 100 at a clean end. Raises :class:`FFmpegError` on a non-zero exit or timeout.
    """
    started = time.monotonic()
    process = subprocess.Popen(
        [tool.exe, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    tail: collections.deque[bytes] = collections.deque()
    reader = threading.Thread(target=_drain_tail, args=(process.stderr, tail), daemon=True)
    reader.start()
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        process.kill()

    timer = threading.Timer(timeout, expire) if timeout else None
    if timer:
        timer.daemon = True
        timer.start()
    frame: int | None = None
    out_time_us: int | None = None
    reported = 0.0  # when on_progress was last called
    last = -1.0  # and with what
    try:
        for raw in process.stdout:
            key, _, value = raw.decode("ascii", "replace").strip().partition("=")
            if key == "frame":
                frame = _int(value) if _int(value) is not None else frame
            elif key == "out_time_us":
                out_time_us = _int(value) if _int(value) is not None else out_time_us
            elif key == "progress" and on_progress and duration and out_time_us is not None:
                now = time.monotonic()
                if now - reported >= PROGRESS_INTERVAL:
                    reported = now
                    last = max(0.0, min(100.0, out_time_us / 1e4 / duration))
                    on_progress(last)
        returncode = process.wait()
    finally:
        if timer:
            timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        reader.join(timeout=5)
        process.stderr.close()
    stderr_tail = b"".join(tail)[-STDERR_TAIL:].decode("utf-8", "replace")
    if timed_out.is_set() or returncode != 0:
        raise FFmpegError(returncode, stderr_tail, timed_out=timed_out.is_set())
    if on_progress and duration and last < 100.0:
        on_progress(100.0)
    return RunResult(returncode, stderr_tail, frame, out_time_us, time.monotonic() - started)
