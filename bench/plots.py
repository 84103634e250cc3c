"""The report's PNG plots, one per benchmark, from each benchmark's JSON results.

A plot whose results are missing is skipped; one whose results lack what it draws is reported
as not drawn (with why), so one benchmark's change of shape never costs the other plots.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

OURS, PEER = "#1f6fb4", "#b0b0b0"
GB = 10**9


def _size(size: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} B"


def _bars(ax: Axes, groups: list[str], series: dict[str, list[float]], colours: list[str]) -> None:
    width = 0.8 / len(series)
    for index, ((label, values), colour) in enumerate(zip(series.items(), colours, strict=False)):
        offsets = [g + (index - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(offsets, values, width, label=label, color=colour)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_xticks(range(len(groups)), groups)
    ax.legend(fontsize=8)


def paired(result: dict[str, Any], key: str, ours: str, peer: str, title: str) -> Figure:
    """Median MB/s per size, ours against the peer (upload, s3put)."""
    rows = result["rows"]
    sizes = sorted({row["size"] for row in rows})
    by = {(row[key], row["size"]): row for row in rows}
    labels = {row[key]: row["what"] for row in rows}
    figure, ax = plt.subplots(figsize=(7, 4))
    _bars(ax, [_size(s) for s in sizes], {labels[name]: [by[(name, s)]["median_mb_per_s"] for s in sizes]
                                          for name in (ours, peer)}, [OURS, PEER])
    ax.set_ylabel("MB/s (median; MB = 10^6 bytes)")
    ax.set_title(title)
    return figure


def upload(result: dict[str, Any]) -> Figure:
    return paired(result, "server", "evidence", "tus-node", "Upload over tus: evidence serve vs @tus/server (Node)")


def s3put(result: dict[str, Any]) -> Figure:
    return paired(result, "client", "evidence", "boto3", "Into S3: tus → S3 store vs boto3 upload_file")


def concurrency(result: dict[str, Any]) -> Figure:
    rows = sorted(result["rows"], key=lambda row: row["uploads"])
    counts = [row["uploads"] for row in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(counts, [row["aggregate_mb_per_s"] for row in rows], "o-", color=OURS)
    left.set_xscale("log", base=2)
    left.set_xticks(counts, [str(c) for c in counts])
    left.set_xlabel("simultaneous uploads")
    left.set_ylabel("aggregate MB/s (median)")
    left.set_ylim(bottom=0)
    right.plot(counts, [row["patch_p99_seconds"] * 1000 for row in rows], "o-", color="#c0392b", label="p99")
    right.plot(counts, [row["patch_p50_seconds"] * 1000 for row in rows], "o--", color=PEER, label="p50")
    right.set_xscale("log", base=2)
    right.set_xticks(counts, [str(c) for c in counts])
    right.set_xlabel("simultaneous uploads")
    right.set_ylabel("PATCH latency, ms")
    right.legend(fontsize=8)
    figure.suptitle("Concurrent uploads into one evidence serve")
    return figure


def reviewers(result: dict[str, Any]) -> Figure:
    rows = result["rows"]
    names = [row["server"] for row in rows]
    colours = [OURS if name.startswith("evidence") else PEER for name in names]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    bars = left.bar(range(len(rows)), [row["requests_per_s"] for row in rows], color=colours)
    left.bar_label(bars, fmt="%.0f", fontsize=8)
    left.set_xticks(range(len(rows)), [n.replace(" (", "\n(") for n in names], fontsize=8)
    left.set_ylabel("requests/s (206, 256 KiB-1 MiB ranges)")
    right_bars = right.bar(range(len(rows)), [row["p99_ms"] for row in rows], color=colours)
    right.bar_label(right_bars, fmt="%.0f", fontsize=8)
    right.set_xticks(range(len(rows)), [n.replace(" (", "\n(") for n in names], fontsize=8)
    right.set_ylabel("p99 latency, ms")
    figure.suptitle(f"{result['load']['clients']} concurrent Range readers: a signed link vs nginx on the same file")
    return figure


def ledger(result: dict[str, Any]) -> Figure:
    runs = result["appends"]
    labels = [f"{run['writers']} writer{'s' if run['writers'] > 1 else ''}\n{run['entries_per_transaction']}/txn"
              for run in runs]
    figure, ax = plt.subplots(figsize=(7, 4))
    bars = ax.bar(range(len(runs)), [run["appends_per_s"] for run in runs], color=OURS)
    ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_xticks(range(len(runs)), labels, fontsize=8)
    goal = result.get("targets", {}).get("appends_per_s_4_writers") if isinstance(result.get("targets"), dict) else 1000
    if goal:
        ax.axhline(goal, color="#c0392b", linestyle="--", label=f"goal, 4 writers: {goal:,.0f}/s")
        ax.legend(fontsize=8)
    ceiling = result.get("commit_ceiling", {})
    if isinstance(ceiling, dict) and "commits_per_s" in ceiling:
        ax.axhline(ceiling["commits_per_s"], color=PEER, linestyle=":", label="bare UPDATE+COMMIT")
        ax.legend(fontsize=8)
    ax.set_ylabel("ledger appends/s (PostgreSQL)")
    ax.set_title("Custody ledger appends")
    return figure


def transcode(result: dict[str, Any]) -> Figure:
    rows = result["rows"]
    figure, ax = plt.subplots(figsize=(8, 4))
    _bars(ax, [f"{row['clip']}\n{row['size'] / GB:.2f} GB" for row in rows], {
        "ours: upload complete → proxy ready": [row["playable_s"] for row in rows],
        "ours: → ready (stills, HLS)": [row["ready_s"] for row in rows],
        "bare ffmpeg, same proxy command": [row["ffmpeg_s"] for row in rows],
    }, [OURS, "#7fb3e0", PEER])
    ax.set_ylabel("seconds")
    ax.set_title("Time to playable")
    return figure


PLOTS: dict[str, tuple[str, Callable[[dict[str, Any]], Figure]]] = {
    "upload": ("upload.png", upload),
    "s3put": ("s3put.png", s3put),
    "concurrency": ("concurrency.png", concurrency),
    "reviewers": ("reviewers.png", reviewers),
    "ledger": ("ledger.png", ledger),
    "transcode": ("transcode.png", transcode),
}


def draw_all(results: dict[str, dict[str, Any]], folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Draw what the results allow: ({file: title}, {benchmark: why not drawn})."""
    drawn: dict[str, str] = {}
    failed: dict[str, str] = {}
    for name, (file, draw) in PLOTS.items():
        if name not in results:
            continue
        try:
            picture = draw(results[name])
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as error:
            failed[name] = f"{type(error).__name__}: {error}"
            continue
        picture.tight_layout()
        picture.savefig(folder / file, dpi=110)
        plt.close(picture)
        drawn[file] = name
    return drawn, failed
