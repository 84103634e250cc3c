"""Run ffmpeg: stream its ``-progress`` output, keep a bounded tail of its log, enforce a time
limit and (given :class:`~transcode.limits.Limits`) bounds on its memory and CPU time."""

from __future__ import annotations

import collections
import io
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from transcode import limits as bounds
from transcode.ffmpeg import Tool
from transcode.limits import Limits

STDERR_TAIL = 4096
PROGRESS_INTERVAL = 1.0  # seconds between on_progress calls
# What libavutil logs when a decoder is asked for a picture larger than ``-max_pixels``.
OVER_PIXELS = b"exceeds specified max pixel count"


class FFmpegError(RuntimeError):
    """ffmpeg exited non-zero (or was killed); ``stderr_tail`` says why, in ffmpeg's words.

    ``stopped`` is set when its bounds stopped it (CPU time, memory) or it crashed;
    ``over_pixels`` when a decoder refused a picture over ``-max_pixels``."""

    def __init__(
        self, returncode: int, stderr_tail: str, *, timed_out: bool = False, cpu_seconds: float = 0.0,
        stopped: str | None = None, over_pixels: bool = False,
    ) -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.timed_out = timed_out
        self.cpu_seconds = cpu_seconds
        self.stopped = stopped
        self.over_pixels = over_pixels
        last = next((line for line in reversed(stderr_tail.splitlines()) if line.strip()), "")
        reason = "timed out" if timed_out else stopped or f"exited with status {returncode}"
        super().__init__(f"ffmpeg {reason}" + (f": {last.strip()}" if last else ""))


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stderr_tail: str
    frame: int | None  # the last ``frame=`` seen: video frames written (decoded, for -f null)
    out_time_us: int | None  # the last ``out_time_us=`` seen: how far into the output it got
    seconds: float  # wall time
    cpu_seconds: float = 0.0  # user + system time of the ffmpeg process
    over_pixels: bool = False  # a decoder refused a picture over -max_pixels (and went on)

    @property
    def out_time(self) -> float | None:
        return None if self.out_time_us is None else self.out_time_us / 1_000_000


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:  # "N/A" before the first frame
        return None


def _drain_tail(stream: io.BufferedReader, tail: collections.deque[bytes], seen: set[bytes]) -> None:
    # ffmpeg's log is read continuously so the process never blocks on a full pipe; only the
    # last few KiB are kept, however much it writes, and markers are looked for on the way.
    size = 0
    carry = b""  # the end of the previous chunk, for a marker split across two
    for chunk in iter(lambda: stream.read1(1024), b""):
        if OVER_PIXELS in carry + chunk:
            seen.add(OVER_PIXELS)
        carry = chunk[-len(OVER_PIXELS) :]
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
    limits: Limits | None = None,
) -> RunResult:
    """Run ``tool.exe *args`` (args from a builder, with ``-progress pipe:1``) to its end.

    ``on_progress`` gets a percentage (0-100, from out_time / ``duration``) at most once per
    second, and 100 at a clean end. ``limits`` bound its address space and CPU time. Raises
    :class:`FFmpegError` on a non-zero exit or timeout; either way the CPU time it used is
    reported (``cpu_seconds``), so it can be charged to the item.
    """
    started = time.monotonic()
    process = subprocess.Popen(
        [tool.exe, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=bounds.child_env() if limits else None, preexec_fn=bounds.preexec(limits),
    )
    stdout, stderr = process.stdout, process.stderr
    # Popen gives buffered pipes when asked for PIPE (whose read1 the log's reader uses).
    if stdout is None or not isinstance(stderr, io.BufferedReader):
        raise RuntimeError("ffmpeg was started without buffered pipes")
    tail: collections.deque[bytes] = collections.deque()
    seen: set[bytes] = set()
    reader = threading.Thread(target=_drain_tail, args=(stderr, tail, seen), daemon=True)
    reader.start()
    timed_out = threading.Event()
    # The child is reaped with os.wait4 (for its CPU time), not by Popen: signal it by pid, and
    # never once it has been reaped (its pid could belong to another process by then).
    guard = threading.Lock()
    reaped = False

    def kill() -> None:
        with guard:
            if not reaped:
                os.kill(process.pid, signal.SIGKILL)

    def expire() -> None:
        timed_out.set()
        kill()

    timer = threading.Timer(timeout, expire) if timeout else None
    if timer:
        timer.daemon = True
        timer.start()
    frame: int | None = None
    out_time_us: int | None = None
    reported = 0.0  # when on_progress was last called
    last = -1.0  # and with what
    finished = False
    try:
        for raw in stdout:
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
        finished = True
    finally:
        if not finished:
            kill()  # left by an exception (on_progress failed, say): stop ffmpeg before waiting
        bounds.wait_ended(process)  # ended, not yet reaped: the timer may still signal it safely
        with guard:
            returncode, cpu_seconds = bounds.reap(process)
            reaped = True
        if timer:
            timer.cancel()
        stdout.close()
        reader.join(timeout=5)
        stderr.close()
    stderr_tail = b"".join(tail)[-STDERR_TAIL:].decode("utf-8", "replace")
    over_pixels = OVER_PIXELS in seen
    if timed_out.is_set() or returncode != 0:
        stopped = bounds.stopped_reason(limits, returncode, cpu_seconds, stderr_tail)
        raise FFmpegError(
            returncode, stderr_tail, timed_out=timed_out.is_set(), cpu_seconds=cpu_seconds, stopped=stopped,
            over_pixels=over_pixels,
        )
    if on_progress and duration and last < 100.0:
        on_progress(100.0)
    return RunResult(returncode, stderr_tail, frame, out_time_us, time.monotonic() - started, cpu_seconds, over_pixels)
