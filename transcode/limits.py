"""Bounds on every decoding child process: address space, CPU time, and how to say it ran out.

Each ffmpeg run and each PyAV probe runs in a child with ``RLIMIT_AS`` (a bomb that asks for
gigabytes gets ENOMEM in that child, not the host's OOM killer choosing a victim) and
``RLIMIT_CPU`` set to what is left of its item's CPU budget, so a small file cannot make hours
of work however it is crafted. The CPU each child used is read from the kernel when it is
reaped (``os.wait4``) and charged to the item.

Pure except for :func:`apply` (runs in the child before exec) and :func:`reap`.
"""

from __future__ import annotations

import math
import os
import resource
import signal
import subprocess
from dataclasses import dataclass
from typing import Any

HD_PIXELS = 1920 * 1080
# Footage is credited at most size / this many seconds when its CPU budget is worked out: a
# header may declare any duration, but a real recording needs bytes for each second. 4 kB/s
# (32 kbit/s) is below what CCTV or phone video is recorded at; slower audio (AMR at 600 B/s)
# is credited less than its length, but decodes hundreds of times faster than real time.
DATA_RATE_FLOOR = 4000
# Soft CPU limit -> SIGXCPU (ffmpeg stops, writing nothing more); this much later, SIGKILL.
CPU_GRACE_SECONDS = 2
# Messages meaning an allocation failed under the address-space limit.
_OUT_OF_MEMORY = (
    "Cannot allocate memory",
    "Out of memory",
    "out of memory",
    "MemoryError",
    "std::bad_alloc",
)


@dataclass(frozen=True)
class Limits:
    memory_bytes: int
    cpu_seconds: float  # what this child may use: the item's budget less what it used before
    budget_seconds: float  # the item's whole budget, for the message

    @property
    def cpu_soft(self) -> int:
        return max(1, math.ceil(self.cpu_seconds))


def budget_seconds(
    *, base: float, per_media_second: float, duration: float | None, width: int | None, height: int | None,
    size: int,
) -> float:
    """An item's CPU budget: ``base`` plus ``per_media_second`` for each second of footage at up
    to 1080p, scaled by the pixel count beyond it. The duration counted is at most what the
    file's size could hold (see :data:`DATA_RATE_FLOOR`)."""
    seconds = max(0.0, min(duration or 0.0, size / DATA_RATE_FLOOR))
    pixels = (width or 0) * (height or 0)
    return base + per_media_second * seconds * max(1.0, pixels / HD_PIXELS)


# A decoder reads hostile bytes: it is given none of the service's settings or credentials.
_WITHHELD = ("EVIDENCE_", "AWS_")


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a decoding child: the service's own settings and credentials left
    out, and glibc's malloc arenas capped (it reserves 64 MiB per thread that allocates, and
    ffmpeg runs dozens of threads, so the address-space limit would measure reservations
    rather than memory used)."""
    env = {key: value for key, value in (os.environ if base is None else base).items() if not key.startswith(_WITHHELD)}
    env["MALLOC_ARENA_MAX"] = "2"
    return env


def apply(limits: Limits) -> None:
    """Set the limits on the calling process (a child, between fork and exec)."""
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_soft, limits.cpu_soft + CPU_GRACE_SECONDS))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU and crashes would dump core


def preexec(limits: Limits | None) -> Any:
    """A ``preexec_fn`` for :class:`subprocess.Popen` (None when there are no limits)."""
    if limits is None:
        return None
    return lambda: apply(limits)


def wait_ended(process: subprocess.Popen[Any]) -> None:
    """Block until ``process`` has ended, leaving it unreaped (its pid stays its own)."""
    try:
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:
        pass  # reaped already


def reap(process: subprocess.Popen[Any]) -> tuple[int, float]:
    """Wait for ``process`` to end; (its return code, CPU seconds it used, user + system).

    ``Popen.wait`` cannot report resource usage, so the child is reaped with ``os.wait4`` and
    its return code handed back to the Popen object.
    """
    try:
        _, status, usage = os.wait4(process.pid, 0)
    except ChildProcessError:  # reaped elsewhere already: the usage is lost
        return process.wait(), 0.0
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime


def stopped_reason(limits: Limits | None, returncode: int, cpu_used: float, log_tail: str,
                   child: str = "decoder") -> str | None:
    """Why a child that failed was stopped by its bounds, in plain words (None: it was not);
    ``child`` is what the words call it (the decoder, the renderer)."""
    if limits is not None and (returncode == -signal.SIGXCPU or cpu_used >= limits.cpu_soft - 0.01):
        return f"stopped: used its CPU-time budget of {limits.budget_seconds:.0f} s"
    if limits is not None and any(marker in log_tail for marker in _OUT_OF_MEMORY):
        return f"stopped: needed more than {_size(limits.memory_bytes)} of memory"
    if returncode == -signal.SIGKILL:
        return "stopped: killed by the system (it may have needed more memory than the machine could give)"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"stopped: the {child} crashed on this file ({name})"
    return None


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20)):
        if count >= scale:
            return f"{count / scale:g} {unit}"
    return f"{count} bytes"
