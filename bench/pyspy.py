"""An optional profile of a server while it takes an upload: ``py-spy record`` on its
process tree, and the functions holding the most samples."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.measure import console, err


def py_spy() -> str | None:
    return shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))


@contextlib.contextmanager
def profiled(pid: int, out: Path | None) -> Iterator[list[dict[str, Any]]]:
    """Sample the server with ``py-spy record`` while the block runs; fill the yielded list
    with the functions holding the most samples (own time, then including callees)."""
    top: list[dict[str, Any]] = []
    tool = py_spy() if out is not None else None
    if out is None or tool is None:
        if out is not None:
            err.print("[yellow]--profile: py-spy not found (pip install py-spy); not profiling[/]")
        yield top
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        [tool, "record", "--pid", str(pid), "--subprocesses", "--rate", "200", "--format", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # let it attach before the first byte
    try:
        yield top
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            _, stderr = spy.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, stderr = spy.communicate()
        if out.exists():
            top.extend(summarize_profile(out))
        else:
            err.print(f"[yellow]py-spy wrote no profile: {stderr.decode(errors='replace')[-500:]}[/]")


IDLE_LEAVES = ("threading.py", "queue.py", "selectors.py")


def _function(frame: str) -> str:
    """``name (path/file.py:123)`` -> ``name (path/file.py)``: lines of one function together."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def summarize_profile(path: Path, limit: int = 12) -> list[dict[str, Any]]:
    """Top functions by own samples, over busy samples only (a worker thread parked in
    ``threading``/``queue`` is idle, not slow); ``total_pct`` includes callees."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    busy = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [_function(f) for f in stack.split(";")[1:] if f]  # [0] names the process
        if not frames:
            continue
        if frames[-1].endswith(IDLE_LEAVES + tuple(f"{leaf})" for leaf in IDLE_LEAVES)):
            idle += samples
            continue
        busy += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not busy:
        return []
    rows = [
        {"function": name, "own_pct": round(100 * n / busy, 1), "total_pct": round(100 * inclusive[name] / busy, 1)}
        for name, n in own.most_common(limit)
    ]
    ours = [name for name, _ in inclusive.most_common()
            if ("(transfer/" in name or "(evidence/" in name) and "(evidence/cli/" not in name]
    rows += [
        {"function": name, "own_pct": round(100 * own[name] / busy, 1),
         "total_pct": round(100 * inclusive[name] / busy, 1), "project": True}
        for name in [name for name in ours if name not in {row["function"] for row in rows}][:limit]
    ]
    rows.append({"function": "(idle worker threads, excluded)", "own_pct": round(100 * idle / (busy + idle), 1),
                 "total_pct": None, "busy_samples": busy, "idle_samples": idle})
    return rows


def print_profile(title: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"server profile: {title} (py-spy, active threads)")
    table.add_column("function (file); · = project code by inclusive time")
    table.add_column("own %", justify="right")
    table.add_column("incl. %", justify="right")
    for row in rows:
        total = "" if row["total_pct"] is None else f"{row['total_pct']:.1f}"
        table.add_row(("· " if row.get("project") else "") + row["function"], f"{row['own_pct']:.1f}", total)
    console.print(table)
