"""Simultaneous uploads into one ``evidence serve`` (file store): 1, 4, 16 and 64 at once.

    python -m bench.concurrency [--levels 1,4,16,64] [--total 512MiB] [--chunk 8MiB] [--rounds 2]
                                [--out bench/results/concurrency.json] [--quick]

At each level N, N threads (one ``requests`` session each) create their uploads, wait for one
another (all created), then send their share of ``--total`` bytes as tus PATCHes of ``--chunk``
with ``Upload-Checksum`` (SHA-1, as tuspy sends it), one PATCH at a time per upload. Each
upload sends its own slice of one random file (never less than two chunks), so every stored
original is different and is checked against its slice's SHA-256 afterwards.

Figures per level: aggregate MB/s (all bytes over the wall time from the start signal to the last
answer), PATCH latency (each PATCH timed from its first byte sent to its answer; p50, p99 by
nearest rank over every PATCH of the level's rounds, and the slowest), and the server's memory:
RSS of the server and its children sampled every 50 ms; per concurrent upload = (peak - idle)
/ N, where idle is taken after a small warm-up upload, with nothing in flight.

A fresh server for each level in each round; levels go up in odd rounds and down in even
ones, so a machine that gets busier during the run favours no level. Targets: the aggregate
at 16 uploads at least the single upload's (medians over the rounds), and at most 4 MiB of RSS
per concurrent upload at 4, 16 and 64 uploads (at one upload the figure is the server's fixed
cost of serving at all, not a per-upload cost). MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
from rich.table import Table

from bench.measure import (
    MB,
    BenchFailed,
    MiB,
    RssSampler,
    check_stored,
    console,
    err,
    host,
    human,
    median,
    percentile,
    run_and_save,
    stamp,
    target,
    verdict,
    write_random,
)
from bench.peers.evidence import EvidenceTarget, evidence_server
from bench.rawtus import create, patch, sha1_header
from evidence.cli.sizes import parse_size

TARGET_RSS_PER_UPLOAD = 4 * MiB
TARGET_LEVEL = 16  # whose aggregate must reach the single upload's
RSS_LEVELS_FROM = 4  # the per-upload memory target applies from this many uploads up


@dataclass
class Level:
    uploads: int
    round: int
    upload_size: int
    chunk_size: int
    seconds: float
    aggregate_mb_per_s: float
    idle_rss_bytes: int
    peak_rss_bytes: int
    rss_per_upload_bytes: int
    server_cpu_seconds: float
    load_average_1m: float
    verified: bool
    patch_seconds: list[float] = field(default_factory=list)


@dataclass
class Slice:
    """One upload's share of the source file."""

    start: int
    size: int
    sha256: str


def slices(source: Path, uploads: int, size: int) -> list[Slice]:
    found = []
    with open(source, "rb") as stream:
        for n in range(uploads):
            digest = hashlib.sha256()
            left = size
            while left:
                block = stream.read(min(4 * MiB, left))
                digest.update(block)
                left -= len(block)
            found.append(Slice(n * size, size, digest.hexdigest()))
    return found


def upload_size(total: int, uploads: int, chunk: int) -> int:
    """Each upload's share of ``total``, whole chunks, never under two (so each has PATCHes after
    its first, when the server is already busy with the others)."""
    return max(2, total // uploads // chunk) * chunk


# -- one level ------------------------------------------------------------------------------


class Sender(threading.Thread):
    """One upload: create it, say so, wait for the start signal, send its slice chunk by chunk."""

    def __init__(self, server: EvidenceTarget, fd: int, part: Slice, chunk: int, start: Start) -> None:
        super().__init__(name=f"upload-{part.start}", daemon=True)
        self.server, self.fd, self.part, self.chunk, self.start_signal = server, fd, part, chunk, start
        self.patch_seconds: list[float] = []
        self.url = ""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            # A session for the POST and another for the PATCHes: a connection left idle while the
            # others are created would be closed by the server's keep-alive timeout under our feet.
            with requests.Session() as session:
                self.url = create(session, self.server.files_url, self.server.headers, self.part.size,
                                  self.server.metadata(f"slice-{self.part.start}.bin", self.part.sha256))
            self.start_signal.ready()
            self.start_signal.go.wait()
            with requests.Session() as session:
                self._send(session)
        except BaseException as error:  # reported by the level, which stops the run
            self.error = error
            self.start_signal.ready()  # counted, so the level does not wait for it

    def _send(self, session: requests.Session) -> None:
        sent = 0
        while sent < self.part.size:
            data = os.pread(self.fd, min(self.chunk, self.part.size - sent), self.part.start + sent)
            answer, seconds = patch(session, self.url, self.server.headers, sent, data, sha1_header(data))
            if answer.status_code != 204:
                raise BenchFailed(f"PATCH at {sent}: {answer.status_code} {answer.text[:300]}")
            sent = int(answer.headers["Upload-Offset"])
            self.patch_seconds.append(seconds)


class Start:
    """Every sender creates its upload first; the bytes start together, once all have."""

    def __init__(self, parties: int) -> None:
        self.parties, self.arrived = parties, 0
        self.go = threading.Event()
        self._arrivals = threading.Condition()

    def ready(self) -> None:
        with self._arrivals:
            self.arrived += 1
            self._arrivals.notify_all()

    def wait_for_all(self) -> None:
        with self._arrivals:
            self._arrivals.wait_for(lambda: self.arrived >= self.parties)


def warm_up(server: EvidenceTarget) -> None:
    """One small upload, so that idle memory is the memory of a server that has served."""
    data = os.urandom(64 * 1024)
    with requests.Session() as session:
        url = create(session, server.files_url, server.headers, len(data),
                     server.metadata("warm-up.bin", hashlib.sha256(data).hexdigest()))
        answer, _ = patch(session, url, server.headers, 0, data, sha1_header(data))
        if answer.status_code != 204:
            raise BenchFailed(f"warm-up PATCH: {answer.status_code} {answer.text[:300]}")


def one_level(work: Path, source: Path, parts: list[Slice], chunk: int, number: int) -> Level:
    uploads = len(parts)
    with evidence_server(work, label=f"concurrency-{uploads}") as server:
        warm_up(server)
        time.sleep(0.5)  # let the warm-up's answer and hook settle before idle is read
        sampler = RssSampler(server.pid)
        idle, _ = sampler.sample()
        cpu_before = sampler.cpu_seconds()
        fd = os.open(source, os.O_RDONLY)
        start = Start(uploads)
        senders = [Sender(server, fd, part, chunk, start) for part in parts]
        try:
            with sampler:
                for sender in senders:
                    sender.start()
                start.wait_for_all()
                started = time.perf_counter()
                start.go.set()
                for sender in senders:
                    sender.join()
                seconds = time.perf_counter() - started
        finally:
            os.close(fd)
        failed = Counter(repr(sender.error) for sender in senders if sender.error is not None)
        if failed:
            raise BenchFailed(f"{failed.total()} of {uploads} uploads failed: "
                              + "; ".join(f"{n} × {why}" for why, n in failed.most_common())
                              + f"\n{server.log_tail()}")
        cpu = sampler.cpu_seconds() - cpu_before
        for sender in senders:
            check_stored(f"evidence serve (upload {sender.part.start})", server.stored(sender.url),
                         sender.part.sha256, sender.part.size)
    total = sum(part.size for part in parts)
    return Level(
        uploads=uploads,
        round=number,
        upload_size=parts[0].size,
        chunk_size=chunk,
        seconds=round(seconds, 3),
        aggregate_mb_per_s=round(total / seconds / MB, 1),
        idle_rss_bytes=idle,
        peak_rss_bytes=sampler.peak,
        rss_per_upload_bytes=max(0, sampler.peak - idle) // uploads,
        server_cpu_seconds=round(cpu, 2),
        load_average_1m=round(os.getloadavg()[0], 2),
        verified=True,
        patch_seconds=[round(s, 4) for sender in senders for s in sender.patch_seconds],
    )


# -- figures ------------------------------------------------------------------------------


def summarize(levels: list[Level], counts: list[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    for count in counts:
        found = [level for level in levels if level.uploads == count]
        latencies = [s for level in found for s in level.patch_seconds]
        rows.append({
            "uploads": count,
            "rounds": len(found),
            "upload_size": found[0].upload_size,
            "total_bytes": found[0].upload_size * count,
            "aggregate_mb_per_s": round(median(level.aggregate_mb_per_s for level in found), 1),
            "aggregate_mb_per_s_by_round": [level.aggregate_mb_per_s for level in found],
            "patches": len(latencies),
            "patch_p50_seconds": percentile(latencies, 50),
            "patch_p99_seconds": percentile(latencies, 99),
            "patch_max_seconds": max(latencies),
            "idle_rss_bytes": min(level.idle_rss_bytes for level in found),
            "peak_rss_bytes": max(level.peak_rss_bytes for level in found),
            "rss_per_upload_bytes": max(level.rss_per_upload_bytes for level in found),
            "server_cpu_seconds_per_gb": round(median(
                level.server_cpu_seconds / (level.upload_size * count / 1e9) for level in found), 2),
        })
    by_count = {row["uploads"]: row for row in rows}
    targets: list[dict[str, Any]] = []
    if 1 in by_count and TARGET_LEVEL in by_count:
        single, crowd = by_count[1]["aggregate_mb_per_s"], by_count[TARGET_LEVEL]["aggregate_mb_per_s"]
        targets.append(target(
            f"aggregate MB/s at {TARGET_LEVEL} uploads / at 1 upload", "≥ 1.0×", round(crowd / single, 2),
            crowd >= single, aggregate_mb_per_s={"1": single, str(TARGET_LEVEL): crowd},
        ))
    counted = [row for row in rows if row["uploads"] >= RSS_LEVELS_FROM]
    if counted:
        worst = max(counted, key=lambda row: row["rss_per_upload_bytes"])
        targets.append(target(
            f"server RSS per concurrent upload, worst of {', '.join(str(r['uploads']) for r in counted)} uploads",
            "≤ 4 MiB", worst["rss_per_upload_bytes"], worst["rss_per_upload_bytes"] <= TARGET_RSS_PER_UPLOAD,
            unit="bytes", at_uploads=worst["uploads"],
            by_uploads={str(r["uploads"]): r["rss_per_upload_bytes"] for r in counted},
        ))
    return rows, targets


def print_table(result: dict[str, Any]) -> None:
    table = Table(
        title=f"Concurrent uploads into evidence serve (file store), {human(result['chunk_size'])} PATCHes with "
              f"Upload-Checksum; median of {result['rounds']} rounds; MB = 10^6 bytes",
        caption=f"{result['host']['cpus']} CPUs shared by the client threads, the server (and anything else "
                f"running); load average at start {result['host']['load_average_at_start']}",
    )
    for column in ("uploads", "each", "MB/s", "PATCHes", "p50 s", "p99 s", "max s", "idle MiB", "peak MiB",
                   "MiB/upload", "bytes"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in result["rows"]:
        table.add_row(
            str(row["uploads"]), human(row["upload_size"]), f"{row['aggregate_mb_per_s']:.0f}", str(row["patches"]),
            f"{row['patch_p50_seconds']:.2f}", f"{row['patch_p99_seconds']:.2f}", f"{row['patch_max_seconds']:.2f}",
            f"{row['idle_rss_bytes'] / MiB:.0f}", f"{row['peak_rss_bytes'] / MiB:.0f}",
            f"{row['rss_per_upload_bytes'] / MiB:.2f}", "sha256 ✓",
        )
    console.print(table)
    for found in result["targets"]:
        shown = (f"{found['measured'] / MiB:.2f} MiB at {found['at_uploads']}" if found.get("unit") == "bytes"
                 else f"{found['measured']}")
        console.print(f"{verdict(found['met'])} {found['what']}: {shown} (goal {found['goal']})")


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.concurrency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,4,16,64", help="simultaneous uploads, comma-separated (1,4,16,64)")
    parser.add_argument("--total", type=parse_size, default=parse_size("512MiB"),
                        help="bytes sent at each level, shared by its uploads (512MiB)")
    parser.add_argument("--chunk", type=parse_size, default=parse_size("8MiB"), help="PATCH size (8MiB)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over the levels (2)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/concurrency.json"), help="JSON results")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the source and server data go")
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 MiB a level in 1 MiB PATCHes, 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.total, args.chunk, args.rounds = 64 * MiB, MiB, 1
    args.level_list = sorted({int(text) for text in args.levels.split(",") if text.strip()})
    if not args.level_list or min(args.level_list) < 1 or args.total <= 0 or args.chunk <= 0 or args.rounds < 1:
        parser.error("--levels, --total, --chunk and --rounds must be positive")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "name": "concurrency",
        "units": {"throughput": "MB/s, MB = 10^6 bytes", "memory": "bytes", "latency": "seconds"},
        "host": host(),
        "levels": args.level_list,
        "total": args.total,
        "chunk_size": args.chunk,
        "rounds": args.rounds,
        "server": "evidence serve (file store, SQLite, no embedded worker), one process",
        "client": "a thread per upload in one Python process, requests, Upload-Checksum (sha1) on every PATCH",
    }
    stamp(result, "started_at")
    sizes = {count: upload_size(args.total, count, args.chunk) for count in args.level_list}
    levels: list[Level] = []
    with tempfile.TemporaryDirectory(prefix="evidence-bench-", dir=args.tmp_dir) as tmp:
        work = Path(tmp)
        source = work / "source.bin"
        length = max(count * size for count, size in sizes.items())
        err.print(f"writing {human(length)} of random bytes to {source}")
        write_random(source, length)
        parts = {count: slices(source, count, size) for count, size in sizes.items()}
        for number in range(1, args.rounds + 1):
            for count in args.level_list if number % 2 else args.level_list[::-1]:
                err.print(f"round {number}/{args.rounds}: {count} simultaneous uploads of {human(sizes[count])}")
                level = one_level(work, source, parts[count], args.chunk, number)
                err.print(f"  {level.aggregate_mb_per_s:.0f} MB/s aggregate, "
                          f"{level.rss_per_upload_bytes / MiB:.2f} MiB RSS per upload, every sha256 verified")
                levels.append(level)
    result["rows"], result["targets"] = summarize(levels, args.level_list)
    result["runs"] = [{**asdict(level), "patch_seconds": None, "patches": len(level.patch_seconds)}
                      for level in levels]
    result["patch_seconds"] = {str(count): sorted(s for level in levels if level.uploads == count
                                                  for s in level.patch_seconds) for count in args.level_list}
    result["host"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    stamp(result, "finished_at")
    print_table(result)
    return result


def main(argv: list[str] | None = None) -> int:
    return run_and_save(parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
