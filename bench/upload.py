"""Upload throughput against the Node tus server: tuspy (8 MiB chunks, ``Upload-Checksum`` on
every chunk) into this project's ``evidence serve`` (file store) and into ``@tus/server`` with
``@tus/file-store`` (installed by the bench into a cache folder, bench/peers/tus_node.py), in
alternating rounds on the same machine, on the same random files.

    python -m bench.upload [--sizes 256MiB,1GiB] [--rounds 4] [--chunk 8MiB] [--rss-size 4GiB]
                           [--out bench/results/upload.json] [--profile] [--quick]

Each round uploads each size once to each server, a fresh server every time; the order of the
two servers flips from round to round (ours first, then the peer's first, ...), so a machine
that grows busier or quieter during the run favours neither. Figures: the median MB/s of each
server at each size, their ratio (target: at least 1.5), and the ratio within each round.

Both servers get the same ``Upload-Checksum`` headers. Whether each one verifies them is
measured, not assumed: a chunk with a wrong checksum is sent once to each (``checksum`` in the
JSON). Beside them, the disk's and the CPU's own limits on the same file (``cp`` + fsync,
``hashlib``), and a memory run: a 4 GiB upload into ``evidence serve`` with 64 MiB chunks, its
server's peak RSS against 150 MB.

Every upload is checked afterwards: the stored bytes, read back from the server's folder, must
hash to the source's SHA-256, or the run stops with an error (exit status 1). MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.measure import (
    MB,
    BenchFailed,
    RssSampler,
    console,
    err,
    host,
    human,
    measure_cp,
    measure_sha256,
    median,
    run_and_save,
    sha256_file,
    stamp,
    target,
    verdict,
    write_random,
)
from bench.peers import TusTarget, probe_checksum
from bench.peers.evidence import evidence_server
from bench.peers.tus_node import install, node_server
from bench.pyspy import print_profile
from bench.tusput import Upload, tus_upload
from evidence.cli.sizes import parse_size

# Names bench.browser takes from here.
__all__ = ["MB", "BenchFailed", "RssSampler", "console", "err", "human", "measure_sha256", "run_and_save",
           "verify_file_store", "write_random"]

TARGET_RATIO = 1.5  # this server's median MB/s over the Node server's, at every size
TARGET_RSS_BYTES = 150 * MB  # server (and children) during the memory run
RSS_CHUNK = 64 * 2**20
SERVERS: dict[str, Callable[[Path], contextlib.AbstractContextManager[TusTarget]]] = {
    "evidence": evidence_server,
    "tus-node": node_server,
}
LABELS = {"evidence": "evidence serve (file store)", "tus-node": "@tus/server (file store)"}


def verify_file_store(server: Any, upload_id: str) -> tuple[str, int]:
    """The one original in a ``tests.support`` Server's data dir: its SHA-256 and length."""
    originals = server.data_dir / "vault" / "originals"
    stored = sorted(originals.iterdir())
    if [path.name for path in stored] != [upload_id]:
        raise BenchFailed(f"expected exactly originals/{upload_id} in {originals}, found {[p.name for p in stored]}")
    return sha256_file(stored[0])


# -- the rounds ---------------------------------------------------------------------------


def order(round_number: int) -> list[str]:
    """Ours first in even rounds, the peer's first in odd ones."""
    names = list(SERVERS)
    return names if round_number % 2 == 0 else names[::-1]


def one_upload(name: str, work: Path, source: Path, digest: str, chunk: int, profile: Path | None) -> Upload:
    with SERVERS[name](work) as server:
        return tus_upload(server, source, digest, chunk, profile=profile if name == "evidence" else None)


def rounds(args: argparse.Namespace, work: Path, sources: dict[int, tuple[Path, str]]) -> list[Upload]:
    runs: list[Upload] = []
    for number in range(args.rounds):
        for size, (source, digest) in sources.items():
            for name in order(number):
                err.print(f"round {number + 1}/{args.rounds}: {human(size)} into {LABELS[name]}")
                profile = (args.out.parent / "profiles" / f"upload-{human(size).replace(' ', '')}.txt"
                           if args.profile and number == 0 else None)
                run = one_upload(name, work, source, digest, args.chunk, profile)
                run.round = number + 1
                err.print(f"  {run.mb_per_s:.0f} MB/s, sha256 verified")
                runs.append(run)
    return runs


def checksum_probes(work: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, start in SERVERS.items():
        with start(work) as server:
            found[name] = probe_checksum(server)
    return found


def memory_run(args: argparse.Namespace, work: Path) -> Upload:
    source = work / "rss-source.bin"
    err.print(f"memory run: writing {human(args.rss_size)} and uploading it in {human(RSS_CHUNK)} chunks")
    digest = write_random(source, args.rss_size)
    try:
        run = one_upload("evidence", work, source, digest, RSS_CHUNK, None)
    finally:
        source.unlink()
    run.purpose = "rss"
    return run


# -- figures ------------------------------------------------------------------------------


def summarize(runs: list[Upload], sizes: list[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One row per server and size (medians over the rounds), and the targets."""
    rows: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    for size in sizes:
        by_server = {name: [r for r in runs if r.server == name and r.size == size and r.purpose == "throughput"]
                     for name in SERVERS}
        medians = {name: round(median(r.mb_per_s for r in found), 1) for name, found in by_server.items()}
        for name, found in by_server.items():
            rows.append({
                "server": name,
                "what": LABELS[name],
                "size": size,
                "chunk_size": found[0].chunk_size,
                "rounds": len(found),
                "median_mb_per_s": medians[name],
                "min_mb_per_s": min(r.mb_per_s for r in found),
                "max_mb_per_s": max(r.mb_per_s for r in found),
                "mb_per_s": [r.mb_per_s for r in found],
                "median_server_cpu_seconds_per_gb": round(median(r.server_cpu_seconds / (size / 1e9) for r in found), 2),
                "max_peak_rss_bytes": max(r.peak_rss_bytes for r in found),
            })
        ratio = round(medians["evidence"] / medians["tus-node"], 2)
        paired = [round(ours.mb_per_s / theirs.mb_per_s, 2) for ours, theirs in
                  zip(by_server["evidence"], by_server["tus-node"], strict=True)]
        targets.append(target(
            f"upload {human(size)}: evidence serve / @tus/server, median MB/s", f"≥ {TARGET_RATIO}×", ratio,
            ratio >= TARGET_RATIO, ratios_by_round=paired,
        ))
    for run in runs:
        if run.purpose == "rss":
            targets.append(target(
                f"server RSS (with children) during a {human(run.size)} upload", "< 150 MB", run.peak_rss_bytes,
                run.peak_rss_bytes < TARGET_RSS_BYTES, unit="bytes",
            ))
    return rows, targets


def print_table(result: dict[str, Any]) -> None:
    table = Table(
        title=f"Upload: tuspy, {human(result['chunk_size'])} chunks, Upload-Checksum on; median of "
              f"{result['rounds']} alternating rounds; MB = 10^6 bytes",
        caption=f"{result['host']['cpus']} CPUs shared by client, servers (and anything else running); "
                f"load average at start {result['host']['load_average_at_start']}",
    )
    for column in ("server", "size", "median MB/s", "min–max", "srv CPU s/GB", "peak RSS MiB", "bytes"):
        table.add_column(column, justify="left" if column == "server" else "right", no_wrap=True)
    limits = result["limits"]
    table.add_row("cp + fsync (disk)", "", f"{limits['cp_mb_per_s']:.0f}", "", "", "", "")
    table.add_row("hashlib sha256 (CPU)", "", f"{limits['sha256_mb_per_s']:.0f}", "", "", "", "")
    for row in result["rows"]:
        table.add_row(row["what"], human(row["size"]), f"{row['median_mb_per_s']:.0f}",
                      f"{row['min_mb_per_s']:.0f}–{row['max_mb_per_s']:.0f}",
                      f"{row['median_server_cpu_seconds_per_gb']:.1f}", f"{row['max_peak_rss_bytes'] / 2**20:.0f}",
                      "sha256 ✓")
    console.print(table)
    for found in result["targets"]:
        measured = found["measured"]
        shown = f"{measured / 2**20:.0f} MiB" if found.get("unit") == "bytes" else f"{measured}"
        console.print(f"{verdict(found['met'])} {found['what']}: {shown} (goal {found['goal']})"
                      + (f", by round {found['ratios_by_round']}" if "ratios_by_round" in found else ""))
    for name, probe in result["checksum"].items():
        console.print(f"checksum extension, {LABELS[name]}: advertised {probe['advertised']}, wrong checksum "
                      f"answered {probe['wrong_checksum_status']}: {'verified' if probe['verified'] else 'NOT verified'}")


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.upload", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256MiB,1GiB", help="source file sizes, comma-separated (256MiB,1GiB)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds, at least 1 (4)")
    parser.add_argument("--chunk", type=parse_size, default=parse_size("8MiB"), help="tus chunk size (8MiB)")
    parser.add_argument("--rss-size", type=parse_size, default=parse_size("4GiB"),
                        help="size of the memory run (evidence serve, 64 MiB chunks); 0 skips it (4GiB)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/upload.json"), help="JSON results")
    parser.add_argument("--tmp-dir", type=Path, default=None,
                        help="where the source files and server data go (one disk for all; default: system temp)")
    parser.add_argument("--profile", action="store_true",
                        help="record this server in round 1 with py-spy (raw stacks beside --out), list top functions")
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 MiB, 2 rounds, no memory run")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.rounds, args.rss_size = "32MiB", 2, 0
    args.size_list = [parse_size(text.strip()) for text in args.sizes.split(",") if text.strip()]
    if not args.size_list or min(args.size_list) <= 0 or args.chunk <= 0 or args.rounds < 1:
        parser.error("--sizes, --chunk and --rounds must be positive")
    return args


@contextlib.contextmanager
def sources(work: Path, sizes: list[int]) -> Iterator[dict[int, tuple[Path, str]]]:
    found = {}
    for size in sizes:
        path = work / f"source-{size}.bin"
        err.print(f"writing {human(size)} of random bytes to {path}")
        found[size] = (path, write_random(path, size))
    try:
        yield found
    finally:
        for path, _ in found.values():
            path.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "name": "upload",
        "bench": "upload",
        "units": {"throughput": "MB/s, MB = 10^6 bytes", "memory": "bytes"},
        "host": host(),
        "sizes": args.size_list,
        "chunk_size": args.chunk,
        "rounds": args.rounds,
        "client": "tuspy, one upload at a time, Upload-Checksum (sha1) on every PATCH",
        "peer": install(),
    }
    stamp(result, "started_at")
    with tempfile.TemporaryDirectory(prefix="evidence-bench-", dir=args.tmp_dir) as tmp:
        work = Path(tmp)
        result["checksum"] = checksum_probes(work)
        with sources(work, args.size_list) as files:
            largest, (path, digest) = max(files.items())
            err.print("measuring cp and hashlib on the largest file")
            result["limits"] = {
                "cp_mb_per_s": round(measure_cp(path, largest), 1),
                "sha256_mb_per_s": round(measure_sha256(path, largest, digest), 1),
            }
            runs = rounds(args, work, files)
        if args.rss_size:
            runs.append(memory_run(args, work))
    result["rows"], result["targets"] = summarize(runs, args.size_list)
    result["runs"] = [{**asdict(run), "peak_rss_mib": round(run.peak_rss_mib, 1)} for run in runs]
    result["host"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    stamp(result, "finished_at")
    print_table(result)
    for run in runs:
        if run.profile_top:
            print_profile(f"{LABELS[run.server]}, {human(run.size)}, round {run.round}", run.profile_top)
    return result


def main(argv: list[str] | None = None) -> int:
    return run_and_save(parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
