"""Upload throughput and server memory: tus into a real ``evidence serve``, next to the
disk's and the CPU's own limits measured on the same file in the same run.

    python -m bench.upload [--size 1GiB] [--chunks 8MiB,64MiB] [--stores file,s3]
                           [--rss-size 4GiB] [--out bench/results/upload.json] [--profile]

Throughput is in MB/s with MB = 10^6 bytes; memory is in MiB. Client (tuspy, in this
process) and server share the machine, so an upload competes with itself for CPU: the
``cp`` and ``hashlib`` figures say how much of the gap is the machine. The S3 figures are
against whatever ``tests.support.s3`` gives (Ceph's RADOS Gateway on a single-node cluster
keeping objects in memory, on this machine, unless ``EVIDENCE_TEST_S3_ENDPOINT`` is set):
a real S3 implementation, but sharing the two cores with the client and the server.

Every upload is checked afterwards: the stored bytes must hash to the source's SHA-256,
or the run stops with an error (exit status 1).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import psutil
import requests
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from rich.console import Console
from rich.table import Table
from tusclient.client import TusClient

from evidence.cli.sizes import parse_size
from tests.support import s3
from tests.support.server import Server

MB = 10**6
MiB = 2**20
BLOCK = 4 * MiB
TARGET_FILE_MBPS = 200.0  # file store, MB/s
TARGET_RSS_BYTES = 150 * MB  # server (and children) during a 4 GiB upload
SAMPLE_EVERY = 0.05
CASE = "OP-BENCH"

# A log (not a terminal) gets room for the whole table rather than rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 110)
err = Console(stderr=True)


class BenchFailed(Exception):
    """The bench itself found something wrong (wrong bytes stored, a server that died)."""


@dataclass
class Upload:
    store: str
    chunk_size: int
    size: int
    seconds: float
    mb_per_s: float
    peak_rss_bytes: int
    peak_rss_main_bytes: int
    idle_rss_bytes: int
    server_cpu_seconds: float
    client_cpu_seconds: float
    rss_samples: int
    sha256: str
    verified: bool
    purpose: str = "throughput"
    profile_top: list[dict[str, Any]] = field(default_factory=list)

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss_bytes / MiB


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


def sha256_stream(stream: Any) -> tuple[str, int]:
    digest, length = hashlib.sha256(), 0
    while block := stream.read(BLOCK):
        digest.update(block)
        length += len(block)
    return digest.hexdigest(), length


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
    with open(source, "rb") as stream:
        found, length = sha256_stream(stream)
    seconds = time.perf_counter() - started
    if (found, length) != (expected, size):
        raise BenchFailed(f"the source file changed under the bench: {found} ({length} bytes), wrote {expected}")
    return size / seconds / MB


# -- the server's memory ------------------------------------------------------------------


class RssSampler:
    """Peak RSS of a process and all its children, sampled every 50 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.peak_main = self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def sample(self) -> tuple[int, int]:
        main = self.process.memory_info().rss
        total = main
        for child in self.process.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += child.memory_info().rss
        return total, main

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        seconds = times.user + times.system
        for child in self.process.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                child_times = child.cpu_times()
                seconds += child_times.user + child_times.system
        return seconds

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


# -- optional profile of the server (py-spy) ----------------------------------------------


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


# -- one upload ---------------------------------------------------------------------------


def _own_cpu_seconds() -> float:
    """CPU of this process: tuspy reading, hashing (SHA-1 per chunk) and sending."""
    times = psutil.Process().cpu_times()
    return times.user + times.system


def s3_env(found: s3.S3Bucket) -> dict[str, str]:
    """As tests/conftest.py's ``s3_env``."""
    return {
        "EVIDENCE_STORAGE_URL": f"s3://{found.bucket}?endpoint_url={found.endpoint}&region={s3.REGION}",
        "EVIDENCE_S3_ACCESS_KEY": found.access_key,
        "EVIDENCE_S3_SECRET_KEY": found.secret_key,
    }


def drop_bucket(found: s3.S3Bucket) -> None:
    """Best effort: originals are under COMPLIANCE retention, which a real S3 will not
    let anyone delete early (the test gateway forgets everything when its cluster stops)."""
    client = found.client()
    try:
        with contextlib.suppress(Exception):
            for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=found.bucket):
                for upload in page.get("Uploads", []):
                    client.abort_multipart_upload(Bucket=found.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        with contextlib.suppress(Exception):
            for page in client.get_paginator("list_object_versions").paginate(Bucket=found.bucket):
                for version in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    with contextlib.suppress(Exception):
                        client.delete_object(
                            Bucket=found.bucket, Key=version["Key"], VersionId=version["VersionId"],
                            BypassGovernanceRetention=True,
                        )
        try:
            client.delete_bucket(Bucket=found.bucket)
        except Exception as error:
            if os.environ.get("EVIDENCE_TEST_S3_ENDPOINT"):
                err.print(f"[yellow]bucket {found.bucket} kept ({type(error).__name__}): retained originals[/]")
    finally:
        client.close()


def verify_file_store(server: Server, upload_id: str) -> tuple[str, int]:
    originals = server.data_dir / "vault" / "originals"
    stored = sorted(originals.iterdir())
    if [path.name for path in stored] != [upload_id]:
        raise BenchFailed(f"expected exactly originals/{upload_id} in {originals}, found {[p.name for p in stored]}")
    with open(stored[0], "rb") as stream:
        return sha256_stream(stream)


def verify_s3(found: s3.S3Bucket, upload_id: str) -> tuple[str, int]:
    client = found.client(read_timeout=300)
    try:
        body = client.get_object(Bucket=found.bucket, Key=f"originals/{upload_id}")["Body"]
        digest, length = hashlib.sha256(), 0
        for block in body.iter_chunks(BLOCK):
            digest.update(block)
            length += len(block)
        return digest.hexdigest(), length
    finally:
        client.close()


def upload_once(
    store: str, chunk_size: int, source: Path, digest: str, work: Path, *, purpose: str, profile: Path | None
) -> Upload:
    size = source.stat().st_size
    with contextlib.ExitStack() as cleanup:
        root = Path(tempfile.mkdtemp(prefix=f"{store}-{chunk_size // MiB}m-", dir=work))
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        bucket = None
        env: dict[str, str] = {}
        if store == "s3":
            bucket = s3.new_bucket()
            cleanup.callback(drop_bucket, bucket)
            env = s3_env(bucket)
        server = Server(root, env)
        cleanup.callback(server.stop)
        try:
            server.start()
            token = server.token()
            server.case(CASE)
        except (RuntimeError, AssertionError) as error:  # tests.support's ways of saying so
            raise BenchFailed(f"could not start a {store} server: {error}") from error

        sampler = RssSampler(server.pid)
        idle, _ = sampler.sample()
        cpu_before = sampler.cpu_seconds()
        client_before = _own_cpu_seconds()
        client = TusClient(server.url + "/files/", headers={"Authorization": f"Bearer {token}"})
        try:
            with open(source, "rb") as stream, sampler, profiled(server.pid, profile) as top:
                uploader = client.uploader(
                    file_stream=stream,
                    chunk_size=chunk_size,
                    metadata={"filename": source.name, "case": CASE, "sha256": digest},
                    upload_checksum=True,
                )
                started = time.perf_counter()
                uploader.upload()
                seconds = time.perf_counter() - started
        except Exception as error:
            tail = server.log.read_text(errors="replace")[-3000:] if server.log.exists() else ""
            raise BenchFailed(f"{store} upload at {human(chunk_size)} chunks failed: {error!r}\n{tail}") from error
        cpu = sampler.cpu_seconds() - cpu_before
        client_cpu = _own_cpu_seconds() - client_before

        upload_id = str(uploader.url).rstrip("/").rsplit("/", 1)[-1]
        recorded = requests.get(
            f"{server.url}/api/v1/uploads/{upload_id}", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        if recorded.status_code != 200 or not recorded.json().get("finished") or not recorded.json().get("item"):
            raise BenchFailed(f"the server did not record the finished upload {upload_id}: {recorded.text[:300]}")
        stored, length = verify_file_store(server, upload_id) if bucket is None else verify_s3(bucket, upload_id)
        if (stored, length) != (digest, size):
            raise BenchFailed(
                f"WRONG BYTES STORED by the {store} store at {human(chunk_size)} chunks: "
                f"sha256 {stored} ({length} bytes), sent {digest} ({size} bytes)"
            )
        return Upload(
            store=store,
            chunk_size=chunk_size,
            size=size,
            seconds=round(seconds, 3),
            mb_per_s=round(size / seconds / MB, 1),
            peak_rss_bytes=sampler.peak,
            peak_rss_main_bytes=sampler.peak_main,
            idle_rss_bytes=idle,
            server_cpu_seconds=round(cpu, 2),
            client_cpu_seconds=round(client_cpu, 2),
            rss_samples=sampler.samples,
            sha256=digest,
            verified=True,
            purpose=purpose,
            profile_top=top,
        )
    raise AssertionError("unreachable")  # for type checkers: ExitStack may swallow


# -- reporting ----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "✓" if ok else "✗"


def throughput_target(run: Upload) -> str:
    if run.store != "file":
        return "—"
    return f"≥ {TARGET_FILE_MBPS:.0f} MB/s {verdict(run.mb_per_s >= TARGET_FILE_MBPS)}"


def rss_target(run: Upload) -> str:
    if run.purpose != "rss":
        return "—"
    return f"< 150 MB {verdict(run.peak_rss_bytes < TARGET_RSS_BYTES)}"


def label(run: Upload) -> str:
    store = {"file": "file store", "s3": "S3 store"}.get(run.store, run.store)
    return f"tus → {store}" + (f", {human(run.size)} (memory)" if run.purpose == "rss" else "")


def target(run: Upload) -> str:
    found = [t for t in (throughput_target(run), rss_target(run)) if t != "—"]
    if run.purpose == "rss":
        found = [rss_target(run)]
    return ", ".join(found) or "—"


def print_table(result: dict[str, Any], runs: list[Upload]) -> None:
    table = Table(
        title=f"Upload bench: {human(result['size'])} random file; MB = 10^6 bytes; RSS = server + children",
        caption=f"{result['host']['cpus']} CPUs, client and server on this machine; S3: {result['s3_endpoint'] or 'not run'}",
    )
    table.add_column("what", no_wrap=True)
    table.add_column("chunk", justify="right", no_wrap=True)
    table.add_column("MB/s", justify="right", no_wrap=True)
    table.add_column("peak RSS MiB", justify="right", no_wrap=True)
    table.add_column("CPU s srv/cli", justify="right", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("bytes", no_wrap=True)
    limits = result["limits"]
    table.add_row("cp + fsync (disk)", "", f"{limits['cp_mb_per_s']:.0f}", "", "", "", "")
    table.add_row("hashlib sha256 (CPU)", "", f"{limits['sha256_mb_per_s']:.0f}", "", "", "", "")
    for run in runs:
        table.add_row(
            label(run).replace("tus → ", ""), human(run.chunk_size), f"{run.mb_per_s:.0f}",
            f"{run.peak_rss_mib:.0f}", f"{run.server_cpu_seconds:.1f}/{run.client_cpu_seconds:.1f}", target(run),
            "sha256 ✓" if run.verified else "✗",
        )
    console.print(table)


def markdown(result: dict[str, Any], runs: list[Upload]) -> str:
    limits = result["limits"]
    lines = [
        (
            f"Upload of a {human(result['size'])} random file over tus (tuspy client, `Upload-Checksum` on every"
            f" chunk) into `evidence serve` on one machine ({result['host']['cpus']} CPUs, client and server"
            " together). MB = 10^6 bytes; RSS is the server process and its children, sampled every 50 ms."
        ),
        "",
        "| measure | chunk | MB/s | peak server RSS (MiB) | target |",
        "|---|---:|---:|---:|---|",
        f"| `cp` + fsync, same disk (limit) | — | {limits['cp_mb_per_s']:.0f} | — | — |",
        f"| Python `hashlib.sha256` (limit) | — | {limits['sha256_mb_per_s']:.0f} | — | — |",
    ]
    for run in runs:
        lines.append(
            f"| {label(run)} | {human(run.chunk_size)} | {run.mb_per_s:.0f} | {run.peak_rss_mib:.0f} | {target(run)} |"
        )
    if any(run.store == "s3" for run in runs):
        lines += ["", f"S3 figures are against {result['s3_endpoint']}, not a production object store."]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.upload", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"), help="source file size (1GiB)")
    parser.add_argument("--chunks", default="8MiB,64MiB", help="tus chunk sizes, comma-separated (8MiB,64MiB)")
    parser.add_argument("--stores", default="file,s3", help="stores to upload to: file, s3 (file,s3)")
    parser.add_argument("--rss-size", type=parse_size, default=parse_size("4GiB"),
                        help="size of the memory run (file store, 64 MiB chunks); 0 skips it (4GiB)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/upload.json"), help="JSON results")
    parser.add_argument("--tmp-dir", type=Path, default=None,
                        help="where the source file and server data go (one disk for all; default: system temp)")
    parser.add_argument("--profile", action="store_true",
                        help="record each server with py-spy (raw stacks beside --out) and list the top functions")
    args = parser.parse_args(argv)
    args.chunk_sizes = [parse_size(text) for text in args.chunks.split(",") if text.strip()]
    args.store_names = [text.strip() for text in args.stores.split(",") if text.strip()]
    unknown = set(args.store_names) - {"file", "s3"}
    if unknown:
        parser.error(f"unknown store(s): {', '.join(sorted(unknown))} (choose from file, s3)")
    if args.size <= 0 or not args.chunk_sizes or min(args.chunk_sizes) <= 0:
        parser.error("--size and every chunk size must be positive")
    return args


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # run the clean-ups, as for Ctrl-C


def run(args: argparse.Namespace) -> dict[str, Any]:
    runs: list[Upload] = []
    result: dict[str, Any] = {
        "bench": "upload",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "units": {"throughput": "MB/s, MB = 10^6 bytes", "memory": "bytes (MiB in tables)"},
        "host": {
            "cpus": os.cpu_count(),
            "memory_bytes": psutil.virtual_memory().total,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "size": args.size,
        "chunk_sizes": args.chunk_sizes,
        "stores": args.store_names,
        "s3_endpoint": None,
        "targets": {"file_store_mb_per_s": TARGET_FILE_MBPS, "server_rss_bytes_during_4gib": TARGET_RSS_BYTES},
    }
    profile_dir = args.out.parent / "profiles" if args.profile else None

    with tempfile.TemporaryDirectory(prefix="evidence-bench-", dir=args.tmp_dir) as tmp:
        work = Path(tmp)
        source = work / "source.bin"
        err.print(f"writing {human(args.size)} of random bytes to {source}")
        digest = write_random(source, args.size)
        err.print("measuring cp and hashlib on the same file")
        result["limits"] = {
            "cp_mb_per_s": round(measure_cp(source, args.size), 1),
            "sha256_mb_per_s": round(measure_sha256(source, args.size, digest), 1),
        }
        if "s3" in args.store_names:
            endpoint = s3.endpoint()
            local = not os.environ.get("EVIDENCE_TEST_S3_ENDPOINT")
            result["s3_endpoint"] = (
                "Ceph's RADOS Gateway (single node, objects in memory, this machine)" if local else endpoint.url
            )
        for store in args.store_names:
            for chunk in args.chunk_sizes:
                err.print(f"uploading to the {store} store in {human(chunk)} chunks")
                profile = profile_dir / f"{store}-{chunk // MiB}MiB.txt" if profile_dir else None
                runs.append(upload_once(store, chunk, source, digest, work, purpose="throughput", profile=profile))
        source.unlink()

        if args.rss_size:
            source = work / "rss-source.bin"
            err.print(f"memory run: writing {human(args.rss_size)} to {source}")
            digest = write_random(source, args.rss_size)
            err.print("memory run: uploading to the file store in 64 MiB chunks")
            profile = profile_dir / "file-rss.txt" if profile_dir else None
            runs.append(upload_once("file", 64 * MiB, source, digest, work, purpose="rss", profile=profile))
            source.unlink()

    result["runs"] = [{**asdict(run), "peak_rss_mib": round(run.peak_rss_mib, 1)} for run in runs]
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["markdown"] = markdown(result, runs)
    print_table(result, runs)
    for run in runs:
        if run.profile_top:
            print_profile(run)
    console.print("\nMarkdown for the README:\n")
    console.print(result["markdown"], markup=False, highlight=False, soft_wrap=True)
    return result


def print_profile(run: Upload) -> None:
    table = Table(title=f"server profile: {label(run)}, {human(run.chunk_size)} chunks (py-spy, active threads)")
    table.add_column("function (file); · = project code by inclusive time")
    table.add_column("own %", justify="right")
    table.add_column("incl. %", justify="right")
    for row in run.profile_top:
        total = "" if row["total_pct"] is None else f"{row['total_pct']:.1f}"
        table.add_row(("· " if row.get("project") else "") + row["function"], f"{row['own_pct']:.1f}", total)
    console.print(table)


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


def main(argv: list[str] | None = None) -> int:
    return run_and_save(parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
