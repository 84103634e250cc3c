"""The S3 store against boto3's own multipart put, to the same S3 gateway in the same run.

    python -m bench.s3put [--sizes 256MiB,1GiB] [--rounds 3] [--chunk 8MiB] [--part-size 16MiB]
                          [--out bench/results/s3put.json] [--quick]

Ours: tuspy (``--chunk`` chunks, ``Upload-Checksum`` on every chunk) into ``evidence serve``
with ``EVIDENCE_STORAGE_URL=s3://...`` and ``EVIDENCE_S3_PART_SIZE=--part-size``: the server
cuts the tus chunks into S3 multipart parts as they arrive. Theirs: boto3's
``S3Client.upload_file`` of the same file with a ``TransferConfig`` of the same part size (and
boto3's own defaults otherwise: 10 threads sending parts at once), straight to the gateway.

The gateway is whatever ``tests.support.s3`` gives: Ceph's RADOS Gateway on a single-node
cluster keeping objects in memory, started by this bench on this machine (unless
``EVIDENCE_TEST_S3_ENDPOINT`` names another), so it shares the cores with both clients and the
server. Rounds alternate which goes first. Both objects are read back from the gateway and
hashed after every upload; a wrong byte stops the run. Target: ours at least 80% of boto3's,
on the medians. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from rich.table import Table

from bench.measure import (
    MB,
    BenchFailed,
    check_stored,
    console,
    err,
    host,
    human,
    median,
    own_cpu_seconds,
    run_and_save,
    sha256_stream,
    stamp,
    target,
    verdict,
    write_random,
)
from bench.peers.evidence import evidence_server
from bench.tusput import tus_upload
from evidence.cli.sizes import parse_size
from tests.support import s3

TARGET_SHARE = 0.8  # ours / boto3's, median MB/s
CLIENTS = ("evidence", "boto3")
LABELS = {"evidence": "tus → evidence serve → S3 store", "boto3": "boto3 upload_file (multipart)"}


@dataclass
class Put:
    client: str
    size: int
    round: int
    seconds: float
    mb_per_s: float
    client_cpu_seconds: float
    load_average_1m: float
    verified: bool


# -- the gateway --------------------------------------------------------------------------


def gateway() -> tuple[s3.S3Endpoint, str]:
    """The endpoint, and how to describe it in the results."""
    try:
        found = s3.endpoint()
    except pytest.skip.Exception as error:  # tests.support's way of saying it could not start one
        raise BenchFailed(str(error)) from error
    local = not os.environ.get("EVIDENCE_TEST_S3_ENDPOINT")
    return found, ("Ceph's RADOS Gateway (single node, objects in memory, this machine)" if local else found.url)


def read_back(bucket: s3.S3Bucket, key: str) -> tuple[str, int]:
    client = bucket.client(read_timeout=300)
    try:
        return sha256_stream(client.get_object(Bucket=bucket.bucket, Key=key)["Body"])
    finally:
        client.close()


@contextlib.contextmanager
def scratch_bucket(object_lock: bool) -> Iterator[s3.S3Bucket]:
    """A new bucket. Afterwards unfinished multipart uploads are aborted and, without Object
    Lock, the objects and the bucket removed; originals under compliance retention cannot be,
    and stay until the throwaway gateway stops (its memory store holds 8 GiB)."""
    bucket = s3.new_bucket(object_lock=object_lock)
    try:
        yield bucket
    finally:
        # Short timeouts, one attempt: a slow clean-up must not hold up the next round.
        client = bucket.client(read_timeout=20, retries={"max_attempts": 1, "mode": "standard"})
        try:
            with contextlib.suppress(Exception):
                for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket.bucket):
                    for upload in page.get("Uploads", []):
                        client.abort_multipart_upload(Bucket=bucket.bucket, Key=upload["Key"],
                                                      UploadId=upload["UploadId"])
            if not object_lock:
                with contextlib.suppress(Exception):
                    for listing in client.get_paginator("list_objects_v2").paginate(Bucket=bucket.bucket):
                        for found in listing.get("Contents", []):
                            client.delete_object(Bucket=bucket.bucket, Key=found["Key"])
                    client.delete_bucket(Bucket=bucket.bucket)
        finally:
            client.close()


# -- one upload each ----------------------------------------------------------------------


def ours(work: Path, source: Path, digest: str, args: argparse.Namespace, number: int) -> Put:
    with scratch_bucket(object_lock=True) as bucket:
        env = {
            "EVIDENCE_STORAGE_URL": f"s3://{bucket.bucket}?endpoint_url={bucket.endpoint}&region={s3.REGION}",
            "EVIDENCE_S3_ACCESS_KEY": bucket.access_key,
            "EVIDENCE_S3_SECRET_KEY": bucket.secret_key,
            "EVIDENCE_S3_PART_SIZE": str(args.part_size),
        }
        with evidence_server(work, env, label="s3", read_original=lambda upload: read_back(
                bucket, f"originals/{upload}")) as server:
            run = tus_upload(server, source, digest, args.chunk)
    return Put("evidence", run.size, number, run.seconds, run.mb_per_s, run.client_cpu_seconds,
               run.load_average_1m, run.verified)


def theirs(source: Path, digest: str, args: argparse.Namespace, number: int) -> Put:
    size = source.stat().st_size
    config = TransferConfig(multipart_threshold=args.part_size, multipart_chunksize=args.part_size)
    with scratch_bucket(object_lock=False) as bucket:
        client = bucket.client(read_timeout=300)
        try:
            cpu_before = own_cpu_seconds()
            started = time.perf_counter()
            client.upload_file(str(source), bucket.bucket, source.name, Config=config)
            seconds = time.perf_counter() - started
            cpu = own_cpu_seconds() - cpu_before
        finally:
            client.close()
        check_stored("boto3's upload_file", read_back(bucket, source.name), digest, size)
    return Put("boto3", size, number, round(seconds, 3), round(size / seconds / MB, 1), round(cpu, 2),
               round(os.getloadavg()[0], 2), True)


# -- figures ------------------------------------------------------------------------------


def summarize(puts: list[Put], sizes: list[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    for size in sizes:
        by_client = {name: [p for p in puts if p.client == name and p.size == size] for name in CLIENTS}
        medians = {name: round(median(p.mb_per_s for p in found), 1) for name, found in by_client.items()}
        for name, found in by_client.items():
            rows.append({
                "client": name, "what": LABELS[name], "size": size, "rounds": len(found),
                "median_mb_per_s": medians[name], "min_mb_per_s": min(p.mb_per_s for p in found),
                "max_mb_per_s": max(p.mb_per_s for p in found), "mb_per_s": [p.mb_per_s for p in found],
            })
        share = round(medians["evidence"] / medians["boto3"], 2)
        paired = [round(a.mb_per_s / b.mb_per_s, 2)
                  for a, b in zip(by_client["evidence"], by_client["boto3"], strict=True)]
        targets.append(target(f"S3 {human(size)}: S3 store / boto3 upload_file, median MB/s",
                              f"≥ {TARGET_SHARE:.0%}", share, share >= TARGET_SHARE, ratios_by_round=paired))
    return rows, targets


def print_table(result: dict[str, Any]) -> None:
    table = Table(
        title=f"S3: tus into the S3 store against boto3's multipart put, {human(result['part_size'])} parts; "
              f"median of {result['rounds']} alternating rounds; MB = 10^6 bytes",
        caption=f"{result['s3_endpoint']}; {result['host']['cpus']} CPUs shared; load average at start "
                f"{result['host']['load_average_at_start']}",
    )
    for column in ("what", "size", "median MB/s", "min–max", "bytes"):
        table.add_column(column, justify="left" if column == "what" else "right", no_wrap=True)
    for row in result["rows"]:
        table.add_row(row["what"], human(row["size"]), f"{row['median_mb_per_s']:.0f}",
                      f"{row['min_mb_per_s']:.0f}–{row['max_mb_per_s']:.0f}", "sha256 ✓")
    console.print(table)
    for found in result["targets"]:
        console.print(f"{verdict(found['met'])} {found['what']}: {found['measured']} (goal {found['goal']}), "
                      f"by round {found['ratios_by_round']}")


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.s3put", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256MiB,1GiB", help="file sizes, comma-separated (256MiB,1GiB)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (3)")
    parser.add_argument("--chunk", type=parse_size, default=parse_size("8MiB"), help="tus chunk size (8MiB)")
    parser.add_argument("--part-size", type=parse_size, default=parse_size("16MiB"),
                        help="S3 part size, the server's and boto3's (16MiB, the server's default)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/s3put.json"), help="JSON results")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the source files and server data go")
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 MiB, 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.rounds = "32MiB", 1
    args.size_list = [parse_size(text.strip()) for text in args.sizes.split(",") if text.strip()]
    if not args.size_list or min(args.size_list) <= 0 or args.rounds < 1 or args.chunk <= 0:
        parser.error("--sizes, --rounds and --chunk must be positive")
    if args.part_size < 5 * 2**20:
        parser.error("--part-size: S3 parts are at least 5 MiB")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "name": "s3put",
        "units": {"throughput": "MB/s, MB = 10^6 bytes"},
        "host": host(),
        "sizes": args.size_list,
        "rounds": args.rounds,
        "chunk_size": args.chunk,
        "part_size": args.part_size,
        "boto3": {"version": version("boto3"), "max_concurrency": TransferConfig().max_request_concurrency},
    }
    stamp(result, "started_at")
    err.print("starting the S3 gateway (tests.support.s3)")
    _, result["s3_endpoint"] = gateway()
    puts: list[Put] = []
    with tempfile.TemporaryDirectory(prefix="evidence-bench-", dir=args.tmp_dir) as tmp:
        work = Path(tmp)
        for size in args.size_list:
            source = work / f"source-{size}.bin"
            err.print(f"writing {human(size)} of random bytes to {source}")
            digest = write_random(source, size)
            for number in range(1, args.rounds + 1):
                for name in CLIENTS if number % 2 else CLIENTS[::-1]:
                    err.print(f"round {number}/{args.rounds}: {human(size)}, {LABELS[name]}")
                    put = ours(work, source, digest, args, number) if name == "evidence" else theirs(
                        source, digest, args, number)
                    err.print(f"  {put.mb_per_s:.0f} MB/s, sha256 verified")
                    puts.append(put)
            source.unlink()
    result["rows"], result["targets"] = summarize(puts, args.size_list)
    result["runs"] = [asdict(put) for put in puts]
    result["host"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    stamp(result, "finished_at")
    print_table(result)
    return result


def main(argv: list[str] | None = None) -> int:
    return run_and_save(parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
