"""What every upload benchmark needs: random source files, hashing, the machine's own limits,
a process tree's memory and CPU, medians and targets, and the ``main`` that saves the JSON.

Throughput is in MB/s with MB = 10^6 bytes; memory in bytes (MiB in tables).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Self

import psutil  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from rich.console import Console

MB = 10**6
MiB = 2**20
BLOCK = 4 * MiB
SAMPLE_EVERY = 0.05

# A log (not a terminal) gets room for the whole table rather than rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 110)
err = Console(stderr=True)


class BenchFailed(Exception):
    """The bench itself found something wrong (wrong bytes stored, a server that died)."""


# -- sizes and files ----------------------------------------------------------------------


def human(size: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", MiB), ("KiB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def write_random(path: Path, size: int) -> str:
    """``size`` incompressible bytes (an AES-CTR keystream: urandom is too slow for GiBs),
    written in blocks and made durable; returns their SHA-256."""
    cipher = Cipher(algorithms.AES(os.urandom(32)), modes.CTR(os.urandom(16))).encryptor()
    zeros = bytes(BLOCK)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = cipher.update(zeros[: min(BLOCK, left)])
            digest.update(block)
            out.write(block)
            left -= len(block)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def sha256_stream(stream: Any, limit: int | None = None) -> tuple[str, int]:
    """SHA-256 and length of what ``stream`` yields (at most ``limit`` bytes when given)."""
    digest, length = hashlib.sha256(), 0
    while limit is None or length < limit:
        block = stream.read(BLOCK if limit is None else min(BLOCK, limit - length))
        if not block:
            break
        digest.update(block)
        length += len(block)
    return digest.hexdigest(), length


def sha256_file(path: Path) -> tuple[str, int]:
    with open(path, "rb") as stream:
        return sha256_stream(stream)


def check_stored(what: str, stored: tuple[str, int], digest: str, size: int) -> None:
    """Stop the run when a server stored other bytes than were sent."""
    if stored != (digest, size):
        raise BenchFailed(
            f"WRONG BYTES STORED by {what}: sha256 {stored[0]} ({stored[1]} bytes), sent {digest} ({size} bytes)"
        )


def measure_cp(source: Path, size: int) -> float:
    """MB/s of ``cp`` to a new file on the same disk, until the copy is on disk."""
    copy = source.with_name(source.name + ".cp")
    try:
        started = time.perf_counter()
        subprocess.run(["cp", str(source), str(copy)], check=True)
        fd = os.open(copy, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return size / (time.perf_counter() - started) / MB
    finally:
        copy.unlink(missing_ok=True)


def measure_sha256(source: Path, size: int, expected: str) -> float:
    started = time.perf_counter()
    found = sha256_file(source)
    seconds = time.perf_counter() - started
    if found != (expected, size):
        raise BenchFailed(f"the source file changed under the bench: {found}, wrote {expected}")
    return size / seconds / MB


# -- a process tree's memory and CPU ------------------------------------------------------


def _tree(process: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        return [process, *process.children(recursive=True)]
    return []


def tree_rss(process: psutil.Process) -> tuple[int, int]:
    """RSS of a process and all its children, and of the process alone."""
    main = int(process.memory_info().rss)
    total = main
    for child in _tree(process)[1:]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += int(child.memory_info().rss)
    return total, main


def tree_cpu_seconds(process: psutil.Process) -> float:
    seconds = 0.0
    for member in _tree(process):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = member.cpu_times()
            seconds += float(times.user + times.system)
    return seconds


def own_cpu_seconds() -> float:
    """CPU of this process (the client: reading, SHA-1 per chunk, sending)."""
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


class RssSampler:
    """Peak RSS of a process and all its children, sampled every 50 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.peak_main = self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def sample(self) -> tuple[int, int]:
        return tree_rss(self.process)

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.process)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                total, main = self.sample()
            except psutil.NoSuchProcess:
                return
            self.peak, self.peak_main = max(self.peak, total), max(self.peak_main, main)
            self.samples += 1
            self._stop.wait(SAMPLE_EVERY)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- figures and targets ------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile: a value that was measured, never an interpolation."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def target(what: str, goal: str, measured: float | None, met: bool, **extra: Any) -> dict[str, Any]:
    """One line of a result's ``targets``: what was aimed at, what was measured, and whether it met it.
    ``measured`` is None when the run could not measure it (then it is not met)."""
    return {"what": what, "goal": goal, "measured": measured, "met": bool(met and measured is not None), **extra}


def host() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def stamp(result: dict[str, Any], key: str) -> None:
    result[key] = datetime.now(UTC).isoformat(timespec="seconds")


def verdict(ok: bool) -> str:
    return "✓" if ok else "✗"


# -- main ---------------------------------------------------------------------------------


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # run the clean-ups, as for Ctrl-C


def run_and_save(args: argparse.Namespace, run: Callable[[argparse.Namespace], dict[str, Any]]) -> int:
    """A benchmark's ``main``: run it (SIGTERM cleans up like Ctrl-C), write its JSON to ``args.out``."""
    signal.signal(signal.SIGTERM, _terminated)
    try:
        result = run(args)
    except BenchFailed as error:
        err.print(f"[bold red]bench failed:[/] {error}")
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    err.print(f"results written to {args.out}")
    return 0


def read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise BenchFailed(f"the source ended early: {len(data)} of {size} bytes")
    return data
