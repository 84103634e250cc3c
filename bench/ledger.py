"""Custody ledger on PostgreSQL: append rate, proof time and full verification at scale.

    python -m bench.ledger [--entries 1000000] [--appends 3000] [--proofs 300]
                           [--out bench/results/ledger.json] [--profile]

1. Appends: 1 and 4 writer processes (multiprocessing, spawn), each calling the app's own
   ``custody.record(...)`` in its own transactions (one entry per transaction, as the app does,
   and a 10-per-transaction variant), on a fresh database migrated with ``evidence.migrate``,
   with a checkpointer signing every few seconds as the server does. After each run the log must
   not have forked (seqs 0..n-1, one node per complete subtree) and ``ledger_check.verify`` must
   pass. Each transaction is timed whole, and so is its commit message (the one round trip that
   takes the ``ledger_head`` row lock, appends, commits, freeing the lock before the WAL flush,
   and waits for the flush); a one-row ``UPDATE`` + ``COMMIT`` loop on the same server gives the ceiling for
   anything that holds a row lock across a synchronous commit, and four connections committing
   their own rows the ceiling when only the WAL flush is shared.
2. A ledger of ``--entries`` entries built without the append path: bodies generated with
   ``audit.Entry`` (realistic actions, subjects and details, ~300-400 bytes), the tree with
   ``audit.TreeBuilder``, loaded with PostgreSQL ``COPY`` in one pass, then a checkpoint signed
   with ``ledger.sign_checkpoint`` (whose own entry makes the count exactly ``--entries``).
3. Inclusion and consistency proofs through ``evidence.ledger`` in a fresh session each (as the
   API does, so pool checkout and the head read are included), each verified with
   ``audit.verify_inclusion``/``verify_consistency``; the roots they are checked against are
   the ones the build computed from the entries, not read back from the stored nodes.
4. ``ledger_check.verify`` over the whole ledger (must pass); profiled with py-spy when it misses
   its target (or with ``--profile``).

Times are wall-clock on a shared machine: the load average is recorded before and after.
The bench databases are dropped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import queue
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import psycopg
from rich.console import Console
from rich.table import Table

TARGET_APPENDS_PER_S = 1000.0  # with 4 writers
TARGET_PROOF_MS = 10.0  # at 1M entries
TARGET_VERIFY_S = 30.0  # at 1M entries
ORIGIN = "bench.evidence-transfer.example/custody-ledger"
HOST = "bench-host"
CHECKPOINT_EVERY_S = 5.0  # the server's default checkpoint_interval_seconds
SEED = 20261122

console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)


class BenchFailed(Exception):
    """The bench found something wrong (a forked log, a failed verification, a bad proof)."""


# -- realistic custody entries ------------------------------------------------------------


FFMPEG_VERSION = "6.1.1-3ubuntu5"
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
)
EXTENSIONS = (".mp4", ".mov", ".avi", ".jpg", ".png", ".pdf", ".zip", ".wav", ".mkv", ".dav")


class Workload:
    """A stream of custody actions shaped like the app's: cases, then per item an upload, its
    storage, hashing, integrity check, working copies (ffmpeg argv), shares and views, with a
    few items in progress at once so their entries interleave."""

    def __init__(self, seed: int, start: datetime | None = None) -> None:
        self.rng = random.Random(seed)
        self.now = start or datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
        self.cases: list[str] = []
        self.officers = [f"user:officer{n:03d}@met.police.example" for n in range(60)]
        self.reviewers = [f"user:reviewer{n:02d}@cps.example" for n in range(12)]
        self.active: list[Iterator[tuple[str, dict[str, str], str, dict[str, Any]]]] = []
        self.case_no = 0

    def _hex(self, nbytes: int) -> str:
        return self.rng.randbytes(nbytes).hex()

    def _tick(self) -> datetime:
        self.now += timedelta(microseconds=self.rng.randrange(1, 30_000_000))
        return self.now

    def next(self) -> tuple[datetime, str, dict[str, str], str, dict[str, Any]]:
        while len(self.active) < 6:
            self.active.append(self._story())
        story = self.active[self.rng.randrange(len(self.active))]
        try:
            action, subject, actor, details = next(story)
        except StopIteration:
            self.active.remove(story)
            return self.next()
        return self._tick(), action, subject, actor, details

    def _story(self) -> Iterator[tuple[str, dict[str, str], str, dict[str, Any]]]:
        rng = self.rng
        if not self.cases or rng.random() < 0.03:
            self.case_no += 1
            ref = f"OP-{2026 - rng.randrange(3)}-{self.case_no:05d}"
            self.cases.append(ref)
            return self._case_story(ref)
        return self._item_story(rng.choice(self.cases[-200:]))

    def _case_story(self, ref: str) -> Iterator[tuple[str, dict[str, str], str, dict[str, Any]]]:
        title = f"Operation {self.rng.choice(('Kestrel', 'Harrier', 'Bittern', 'Osprey', 'Merlin'))} {self.case_no}"
        yield "case.created", {"case": ref}, self.rng.choice(self.officers), {"title": title}

    def _item_story(self, case: str) -> Iterator[tuple[str, dict[str, str], str, dict[str, Any]]]:
        rng = self.rng
        officer = rng.choice(self.officers)
        upload, item = self._hex(16), self._hex(16)
        ext = rng.choice(EXTENSIONS)
        filename = f"CCTV_{rng.randrange(1, 40):02d}_{rng.randrange(20250101, 20251231)}_{rng.randrange(10**6):06d}{ext}"
        size = rng.randrange(10**5, 6 * 10**9)
        sha256 = self._hex(32)
        client = sha256 if rng.random() < 0.8 else None
        subject = {"case": case, "upload": upload}
        transfer, worker = f"system:transfer@{HOST}", f"system:worker@{HOST}-{rng.randrange(4)}"
        yield "upload.created", subject, officer, {
            "filename": filename, "size": size, "client_sha256": client, "concat": None, "partials": [],
        }
        yield "upload.completed", subject, officer, {"size": size}
        subject = {**subject, "item": item}
        key = f"originals/{upload}"
        yield "original.stored", subject, transfer, {
            "storage_key": key, "storage": {"backend": "s3", "bucket": "evidence-originals", "endpoint": "aws"},
            "size": size, "filename": filename, "client_sha256": client,
            "write_once": "S3 Object Lock, compliance mode, retained 2555 days",
        }
        yield "original.hashed", subject, worker, {
            "hashes": {"md5": self._hex(16), "sha1": self._hex(20), "sha256": sha256}, "size": size, "storage_key": key,
        }
        if client:
            yield "integrity.verified", subject, worker, {"sha256": sha256}
        if ext in (".mp4", ".mov", ".avi", ".mkv", ".dav"):
            for kind, argv in (
                ("proxy", ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-c:a", "aac",
                           "-b:a", "128k", "-movflags", "+faststart", "-map_metadata", "-1", "proxy.mp4"]),
                ("poster", ["-ss", str(rng.randrange(1, 600)), "-frames:v", "1", "-vf", "scale=1280:-2", "poster.jpg"]),
                ("contact_sheet", ["-vf", "fps=1/30,scale=320:-2,tile=4x4", "-frames:v", "1", "contact.jpg"]),
            ):
                yield "derivative.created", subject, worker, self._derivative(item, kind, argv)
        elif rng.random() < 0.5:
            yield "derivative.created", subject, worker, self._derivative(
                item, "thumbnail", ["-vf", "scale=320:-2", "-frames:v", "1", "thumb.jpg"])
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            link = self._hex(16)
            reviewer = rng.choice(self.reviewers)
            yield "link.created", {**subject, "link": link}, officer, {
                "recipient": reviewer.removeprefix("user:"), "expires_at": (self.now + timedelta(days=14)).isoformat(),
                "scope": "view", "derivatives": ["proxy", "poster"],
            }
            for _ in range(rng.randrange(0, 4)):
                yield "link.accessed", {**subject, "link": link}, reviewer, {
                    "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                    "user_agent": rng.choice(USER_AGENTS), "object": "proxy",
                }
        if rng.random() < 0.1:
            yield "report.exported", {"case": case, "item": item}, rng.choice(self.reviewers), {
                "format": rng.choice(("html", "json", "case")), "sha256": self._hex(32), "tree_size": rng.randrange(10**6),
            }

    def _derivative(self, item: str, kind: str, argv: list[str]) -> dict[str, Any]:
        sha = self._hex(32)
        ext = argv[-1].rsplit(".", 1)[1]
        return {
            "kind": kind, "key": f"derivatives/{item}/{kind}-{sha[:16]}.{ext}", "sha256": sha,
            "size": self.rng.randrange(10**4, 10**9), "content_type": "video/mp4" if ext == "mp4" else "image/jpeg",
            "method": {"tool": "ffmpeg", "version": FFMPEG_VERSION,
                       "argv": ["ffmpeg", "-nostdin", "-hide_banner", "-i", "original", *argv]},
        }


# -- databases --------------------------------------------------------------------------


def new_database() -> str:
    from evidence.db import Database
    from evidence.migrate import upgrade
    from tests.support.postgres import create_database

    url = create_database()
    db = Database(url)
    try:
        upgrade(db.engine)
    finally:
        db.dispose()
    return url


def keys() -> Any:
    from audit import generate_signer
    from evidence.custody.ledger import Keys

    return Keys(ORIGIN, generate_signer(ORIGIN))


# -- 1. appends --------------------------------------------------------------------------


def _writer(url: str, worker: int, count: int, per_txn: int, ready: Any, go: Any, results: Any) -> None:
    """One writer process: ``count`` entries through ``custody.record``, ``per_txn`` a transaction."""
    from sqlalchemy import event, text

    from evidence import custody
    from evidence.custody.actions import Action
    from evidence.db import Database

    db = Database(url)
    marks: dict[str, float] = {}

    # The head is taken and freed inside the server, in the one message that appends, commits and
    # waits for the WAL flush (evidence.custody.append.commit_appending): the client sees that
    # message's round trip, not the lock itself.
    @event.listens_for(db.engine, "before_cursor_execute")
    def _before(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if "custody_append(" in statement:
            marks["sent"] = time.perf_counter()

    @event.listens_for(db.engine, "after_cursor_execute")
    def _after(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if "custody_append(" in statement:
            marks["answered"] = time.perf_counter()

    workload = Workload(SEED + worker)
    with db.engine.connect() as connection:  # open the pool's connection before the clock starts
        connection.execute(text("SELECT 1"))
    ready.put(worker)
    go.wait()
    messages, totals = [], []
    start = time.perf_counter()
    done = 0
    while done < count:
        batch = min(per_txn, count - done)
        marks.clear()
        t0 = time.perf_counter()
        with db.transaction() as session:
            for _ in range(batch):
                _, action, subject, actor, details = workload.next()
                custody.record(session, Action(action), subject, actor, details)
        t1 = time.perf_counter()
        messages.append(marks["answered"] - marks["sent"])
        totals.append(t1 - t0)
        done += batch
    end = time.perf_counter()
    db.dispose()
    results.put({"worker": worker, "count": done, "start": start, "end": end,
                 "messages": messages, "totals": totals})


def _checkpointer(url: str, stop: threading.Event, signed: list[int], failures: list[BaseException]) -> None:
    """Signs a checkpoint every few seconds while writers append, as the server's upkeep does."""
    from evidence import custody
    from evidence.custody import ledger
    from evidence.db import Database

    db = Database(url)
    try:
        while not stop.wait(CHECKPOINT_EVERY_S):
            with db.transaction() as session:
                checkpoint = ledger.sign_checkpoint(session, BENCH_KEYS, custody.system_actor("ledger"))
                if checkpoint is not None:
                    signed.append(checkpoint.size)
    except BaseException as error:
        failures.append(error)
    finally:
        db.dispose()


BENCH_KEYS: Any = None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def append_run(url: str, writers: int, per_txn: int, total: int) -> dict[str, Any]:
    from evidence.custody.ledger import size as ledger_size
    from evidence.db import Database

    db = Database(url)
    try:
        with db.sessions() as session:
            before = ledger_size(session)
    finally:
        db.dispose()
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    shares = [total // writers + (1 if n < total % writers else 0) for n in range(writers)]
    procs = [
        context.Process(target=_writer, args=(url, n, shares[n], per_txn, ready, go, results), daemon=True)
        for n in range(writers)
    ]
    stop, signed, failures = threading.Event(), [], []
    checkpointer = threading.Thread(target=_checkpointer, args=(url, stop, signed, failures), daemon=True)
    outcome: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]
    try:
        for proc in procs:
            proc.start()
        for _ in procs:
            ready.get(timeout=120)
        checkpointer.start()
        go.set()
        while len(outcome) < writers:
            try:
                outcome.append(results.get(timeout=5))
            except queue.Empty:  # is everyone still alive?
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise BenchFailed(f"writer process exited with status {dead[0].exitcode}") from None
        for proc in procs:
            proc.join(timeout=30)
    finally:
        stop.set()
        if checkpointer.is_alive():
            checkpointer.join(timeout=60)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=10)
    if failures:
        raise BenchFailed(f"the checkpointer failed: {failures[0]!r}")
    elapsed = max(r["end"] for r in outcome) - min(r["start"] for r in outcome)
    appended = sum(r["count"] for r in outcome)
    messages = [m for r in outcome for m in r["messages"]]
    totals = [t for r in outcome for t in r["totals"]]
    check = check_log(url, expect_at_least=before + appended)
    return {
        "writers": writers, "entries_per_transaction": per_txn, "appends": appended, "transactions": len(totals),
        "seconds": round(elapsed, 3), "appends_per_s": round(appended / elapsed, 1),
        "transactions_per_s": round(len(totals) / elapsed, 1),
        "commit_message_ms": {"median": round(1000 * statistics.median(messages), 3),
                              "p99": round(1000 * pct(messages, 99), 3)},
        "transaction_ms": {"median": round(1000 * statistics.median(totals), 3), "p99": round(1000 * pct(totals, 99), 3)},
        "checkpoints_signed_during_run": len(signed),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "log_after": check,
    }


def check_log(url: str, expect_at_least: int) -> dict[str, Any]:
    """The log did not fork: seqs 0..n-1, the head agrees, one stored node per complete
    subtree, and the full verification passes."""
    from sqlalchemy import func, select

    from evidence.custody import verify as ledger_check
    from evidence.db import Database
    from evidence.models import CustodyEvent, LedgerHead, LedgerNode

    db = Database(url)
    try:
        with db.sessions() as session:
            count, low, high = session.execute(
                select(func.count(), func.min(CustodyEvent.seq), func.max(CustodyEvent.seq))
            ).one()
            head = session.get_one(LedgerHead, 1).size
            nodes = session.scalar(select(func.count()).select_from(LedgerNode))
            expected_nodes = sum(count >> level for level in range(count.bit_length()))
            if count < expect_at_least or (count and (low, high) != (0, count - 1)) or head != count:
                raise BenchFailed(f"the log forked or lost entries: {count} rows, seqs {low}..{high}, head says {head}")
            if nodes != expected_nodes:
                raise BenchFailed(f"{nodes} tree nodes stored; a log of {count} has {expected_nodes} complete subtrees")
            started = time.perf_counter()
            result = ledger_check.verify(session, BENCH_KEYS.verifier, ORIGIN)
            seconds = time.perf_counter() - started
            if not result.ok:
                raise BenchFailed(f"ledger_check.verify failed at seq {result.seq}: {result.problem}")
    finally:
        db.dispose()
    return {"entries": count, "contiguous": True, "nodes": nodes, "verify_ok": True,
            "checkpoints": result.checkpoints, "verify_seconds": round(seconds, 3)}


def commit_ceiling(url: str, seconds: float = 3.0) -> dict[str, Any]:
    """One connection, ``UPDATE`` one row + ``COMMIT`` in a loop: the most transactions per
    second anything holding a row lock across a synchronous commit can reach on this server."""
    with psycopg.connect(url) as connection:
        connection.execute("CREATE TABLE bench_commit_probe (id int PRIMARY KEY, n bigint)")
        connection.execute("INSERT INTO bench_commit_probe VALUES (1, 0)")
        connection.commit()
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            connection.execute("UPDATE bench_commit_probe SET n = n + 1 WHERE id = 1")
            connection.commit()
            done += 1
        elapsed = time.perf_counter() - started
        settings = {
            name: connection.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("synchronous_commit", "fsync", "wal_sync_method", "commit_delay", "shared_buffers")
        }
        connection.execute("DROP TABLE bench_commit_probe")
        connection.commit()
    return {"commits_per_s": round(done / elapsed, 1), "commit_ms": round(1000 * elapsed / done, 3), "server": settings,
            "concurrent": concurrent_commits(url, CONCURRENT_COMMITTERS, seconds)}


CONCURRENT_COMMITTERS = 4


def concurrent_commits(url: str, connections: int, seconds: float) -> dict[str, Any]:
    """``connections`` threads, each updating its own row and committing in a loop: what the
    server's WAL group flush allows when every transaction commits synchronously but none holds
    a lock another waits for (the ceiling with early lock release)."""
    with psycopg.connect(url, autocommit=True) as setup:
        setup.execute("CREATE TABLE bench_commit_group (id int PRIMARY KEY, n bigint)")
        setup.execute("INSERT INTO bench_commit_group SELECT g, 0 FROM generate_series(1, %s) g", (connections,))
    counts = [0] * connections
    start, stop = threading.Barrier(connections + 1), threading.Event()

    def commit_loop(slot: int) -> None:
        with psycopg.connect(url) as connection:
            start.wait()
            while not stop.is_set():
                connection.execute("UPDATE bench_commit_group SET n = n + 1 WHERE id = %s", (slot + 1,))
                connection.commit()
                counts[slot] += 1

    threads = [threading.Thread(target=commit_loop, args=(slot,)) for slot in range(connections)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    with psycopg.connect(url, autocommit=True) as setup:
        setup.execute("DROP TABLE bench_commit_group")
    return {"connections": connections, "commits_per_s": round(sum(counts) / elapsed, 1)}


# -- 2. the big ledger --------------------------------------------------------------------


NULL = "\\N"  # COPY text format
_EVENT_COLUMNS = "seq, at, action, actor, subject, details, item_id, case_ref, body, leaf_hash"


def _copy_text(value: str) -> str:
    """A value in COPY's text format (no tabs, newlines or carriage returns survive unescaped)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def build_ledger(url: str, entries: int, sizes_wanted: set[int]) -> dict[str, Any]:
    """``entries - 1`` generated entries and their tree, COPYed in one pass; then a signed
    checkpoint, whose own entry is the last. Returns timings and the roots at ``sizes_wanted``
    as the builder computed them from the entries."""
    from audit import Entry, TreeBuilder, format_time, merkle
    from audit.canonical import fast_encode
    from evidence import custody
    from evidence.custody import ledger
    from evidence.db import Database

    generated = entries - 1
    workload = Workload(SEED)
    tree = TreeBuilder()
    roots: dict[int, bytes] = {}
    node_chunks: list[bytes] = []
    body_bytes = 0
    actions: Counter[str] = Counter()
    leaf_hash = merkle.leaf_hash
    chunk = 20_000
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with psycopg.connect(url) as connection:
        backend = psutil.Process(connection.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        server_cpu = sum(backend.cpu_times()[:2])
        client_cpu = time.process_time()
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY custody_events ({_EVENT_COLUMNS}) FROM STDIN") as copy:
                for first in range(0, generated, chunk):
                    lines, nodes = [], []
                    for seq in range(first, min(first + chunk, generated)):
                        at, action, subject, actor, details = workload.next()
                        time_text = format_time(at)
                        body = Entry(seq=seq, time=time_text, actor=actor, action=action, subject=subject,
                                     details=details).encode()
                        leaf = leaf_hash(body)
                        for level, index, digest in tree.append(leaf):
                            nodes.append(f"{level}\t{index}\t\\\\x{digest.hex()}\n")
                        if tree.size in sizes_wanted:
                            roots[tree.size] = tree.root()
                        body_bytes += len(body)
                        actions[action] += 1
                        item = subject.get("item", NULL)
                        case = _copy_text(subject["case"]) if "case" in subject else NULL
                        lines.append(
                            f"{seq}\t{time_text}\t{action}\t{_copy_text(actor)}\t"
                            f"{_copy_text(fast_encode(subject).decode())}\t{_copy_text(fast_encode(details).decode())}\t"
                            f"{item}\t{case}\t\\\\x{body.hex()}\t\\\\x{leaf.hex()}\n"
                        )
                    copy.write("".join(lines).encode())
                    node_chunks.append("".join(nodes).encode())
            timings["generate_and_copy_entries_s"] = time.perf_counter() - started
            mark = time.perf_counter()
            with cursor.copy("COPY ledger_nodes (level, idx, hash) FROM STDIN") as copy:
                for data in node_chunks:
                    copy.write(data)
            node_chunks.clear()
            timings["copy_nodes_s"] = time.perf_counter() - mark
            frontier = [[level, index, digest.hex()] for (level, index), digest in
                        zip(merkle.root_nodes(tree.size), tree.border(), strict=True)]  # the builder's right edge
            cursor.execute("UPDATE ledger_head SET size = %s, frontier = %s WHERE id = 1",
                           (tree.size, json.dumps(frontier)))
        mark = time.perf_counter()
        connection.commit()
        timings["commit_s"] = time.perf_counter() - mark
        client_cpu = time.process_time() - client_cpu
        server_cpu = sum(backend.cpu_times()[:2]) - server_cpu
        mark = time.perf_counter()
        connection.autocommit = True
        connection.execute("VACUUM (ANALYZE) custody_events")
        connection.execute("VACUUM (ANALYZE) ledger_nodes")
        timings["vacuum_analyze_s"] = time.perf_counter() - mark
        table_bytes = {
            name: connection.execute("SELECT pg_total_relation_size(%s)", (name,)).fetchone()[0]  # type: ignore[index]
            for name in ("custody_events", "ledger_nodes")
        }

    mark = time.perf_counter()
    db = Database(url)
    try:
        with db.transaction() as session:
            checkpoint = ledger.sign_checkpoint(session, BENCH_KEYS, custody.system_actor("ledger"))
            assert checkpoint is not None
            signed_size, signed_root = checkpoint.size, checkpoint.root
    finally:
        db.dispose()
    timings["sign_checkpoint_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    if signed_size != entries:
        raise BenchFailed(f"the checkpoint covers {signed_size} entries, not {entries}")
    return {
        "entries": signed_size,
        "generated": generated,
        "mean_body_bytes": round(body_bytes / max(generated, 1), 1),
        "actions": dict(actions.most_common()),
        "nodes": sum(signed_size >> level for level in range(signed_size.bit_length())),
        "table_bytes": table_bytes,
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "cpu_seconds": {"python": round(client_cpu, 2), "postgres_backend": round(server_cpu, 2)},
        "checkpoint_root": signed_root.hex(),
        "_roots": roots,
        "_final_root": signed_root,
    }


# -- 3. proofs -----------------------------------------------------------------------------


def measure_proofs(url: str, size: int, cases: list[tuple[int, int]], roots: dict[int, bytes]) -> dict[str, Any]:
    """Inclusion proofs of random entries in the whole tree and consistency proofs from random
    earlier sizes to it, each in a fresh session; every proof verified against the roots the
    builder computed."""
    from sqlalchemy import select

    from audit import merkle, verify_consistency, verify_inclusion
    from evidence.custody import ledger
    from evidence.db import Database
    from evidence.models import CustodyEvent

    db = Database(url)
    root = roots[size]
    try:
        with db.sessions() as session:
            if ledger.root(session, size) != root:
                raise BenchFailed("the stored tree's root differs from the root of the generated entries")
            wanted = [index for index, _ in cases]
            leaves = {seq: (leaf, bytes(body)) for seq, leaf, body in session.execute(
                select(CustodyEvent.seq, CustodyEvent.leaf_hash, CustodyEvent.body).where(CustodyEvent.seq.in_(wanted))
            )}
        for _ in range(20):  # warm the pool and the caches the way a running server's are
            with db.sessions() as session:
                ledger.inclusion_proof(session, random.randrange(size), size)
        times: dict[str, list[float]] = {"inclusion": [], "consistency": [], "root": []}
        lengths: dict[str, list[int]] = {"inclusion": [], "consistency": []}
        for index, size1 in cases:
            with db.sessions() as session:
                t0 = time.perf_counter()
                proof = ledger.inclusion_proof(session, index, size)
                times["inclusion"].append(time.perf_counter() - t0)
            leaf, body = leaves[index]
            if merkle.leaf_hash(body) != leaf:
                raise BenchFailed(f"entry {index}'s stored leaf hash is not the hash of its body")
            verify_inclusion(index, size, leaf, proof, root)
            lengths["inclusion"].append(len(proof))
            with db.sessions() as session:
                t0 = time.perf_counter()
                proof = ledger.consistency_proof(session, size1, size)
                times["consistency"].append(time.perf_counter() - t0)
            verify_consistency(size1, size, proof, roots[size1], root)
            lengths["consistency"].append(len(proof))
            with db.sessions() as session:
                t0 = time.perf_counter()
                got = ledger.root(session, size1)
                times["root"].append(time.perf_counter() - t0)
            if got != roots[size1]:
                raise BenchFailed(f"the stored root at size {size1} differs from the generated entries' root")
    finally:
        db.dispose()
    out: dict[str, Any] = {"cases": len(cases), "tree_size": size, "all_verified": True}
    for name, values in times.items():
        out[name] = {
            "median_ms": round(1000 * statistics.median(values), 3),
            "p99_ms": round(1000 * pct(values, 99), 3),
            "max_ms": round(1000 * max(values), 3),
            "stored_nodes_read_median": statistics.median(
                len(merkle.inclusion_nodes(i, size)) if name == "inclusion"
                else len(merkle.consistency_nodes(s1, size)) if name == "consistency"
                else len(merkle.root_nodes(s1))
                for i, s1 in cases
            ),
        }
        if name in lengths:
            out[name]["proof_hashes_median"] = statistics.median(lengths[name])
    return out


# -- 4. full verification --------------------------------------------------------------------


def measure_verify(url: str, entries: int, profile_out: Path | None, profile_after: float) -> dict[str, Any]:
    """One timed ``ledger_check.verify``. If it is still running after ``profile_after`` seconds
    (its target: it has missed), py-spy samples it (non-blocking, so the timing barely moves)
    for up to a minute, and the top functions go in the result."""
    from sqlalchemy import text

    from evidence.custody import verify as ledger_check
    from evidence.db import Database

    db = Database(url)
    done = threading.Event()
    spy: dict[str, Any] = {}
    watcher = threading.Thread(target=_profile_if_slow, args=(done, profile_after, profile_out, spy), daemon=True)
    try:
        with db.sessions() as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            backend = psutil.Process(pid)
            server_cpu = sum(backend.cpu_times()[:2])
            client_cpu = time.process_time()
            if profile_out is not None:
                watcher.start()
            started = time.perf_counter()
            try:
                result = ledger_check.verify(session, BENCH_KEYS.verifier, ORIGIN)
            finally:
                seconds = time.perf_counter() - started
                done.set()
            client_cpu = time.process_time() - client_cpu
            server_cpu = sum(backend.cpu_times()[:2]) - server_cpu
    finally:
        db.dispose()
        if watcher.is_alive():
            watcher.join(timeout=90)
    if not result.ok:
        raise BenchFailed(f"ledger_check.verify failed at seq {result.seq}: {result.problem}")
    if result.entries != entries or result.checkpoints < 1:
        raise BenchFailed(f"verify saw {result.entries} entries and {result.checkpoints} checkpoints")
    out: dict[str, Any] = {
        "seconds": round(seconds, 2), "entries": result.entries, "checkpoints": result.checkpoints, "ok": True,
        "entries_per_s": round(result.entries / seconds),
        "cpu_seconds": {"python": round(client_cpu, 2), "postgres_backend": round(server_cpu, 2)},
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    if spy:
        out["profile"] = spy
    return out


def py_spy() -> str | None:
    return shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))


def _profile_if_slow(done: threading.Event, after: float, out: Path, spy: dict[str, Any]) -> None:
    if done.wait(after):
        return
    tool = py_spy()
    if tool is None:
        err.print("[yellow]py-spy not found; not profiling[/]")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    err.print(f"  verify still running after {after:.0f} s: sampling it with py-spy for up to 60 s")
    process = subprocess.Popen(
        [tool, "record", "--pid", str(os.getpid()), "--nonblocking", "--rate", "100", "--duration", "60",
         "--format", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    started = time.perf_counter()
    done.wait(65)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    if out.exists():
        spy.update({"raw": str(out), "window_s": round(time.perf_counter() - started, 1), "top": summarize_profile(out)})
    else:
        err.print(f"[yellow]py-spy wrote no profile: {stderr.decode(errors='replace')[-500:]}[/]")


def _function(frame: str) -> str:
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def summarize_profile(path: Path, limit: int = 15) -> list[dict[str, Any]]:
    """Top functions by own samples of the main thread, with inclusive shares, then the
    project's functions (``audit/``, ``evidence/``) by inclusive time."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_function(f) for f in stack.split(";")[1:] if f]
        if not frames or not any("evidence/custody/verify.py" in f for f in frames):
            continue  # the sampler thread, the startup sleep
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not total:
        return []
    rows = [{"function": name, "own_pct": round(100 * n / total, 1), "total_pct": round(100 * inclusive[name] / total, 1)}
            for name, n in own.most_common(limit)]
    seen = {row["function"] for row in rows}
    ours = [name for name, _ in inclusive.most_common() if ("(audit/" in name or "(evidence/" in name) and name not in seen]
    rows += [{"function": name, "own_pct": round(100 * own[name] / total, 1),
              "total_pct": round(100 * inclusive[name] / total, 1), "project": True} for name in ours[:limit]]
    return rows


# -- output ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "✓" if ok else "✗"


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measure, figure, detail, target) for both tables."""
    out: list[tuple[str, str, str, str]] = []
    ceiling = result.get("commit_ceiling")
    if ceiling:
        out.append(("1-row UPDATE + COMMIT loop, 1 connection (server limit)", f"{ceiling['commits_per_s']:.0f} /s",
                     f"{ceiling['commit_ms']:.2f} ms per commit", "—"))
        group = ceiling.get("concurrent")
        if group:
            out.append((f"own-row UPDATE + COMMIT loops, {group['connections']} connections (WAL group flush)",
                        f"{group['commits_per_s']:.0f} /s", "no lock shared: each commit synchronous", "—"))
    for run in result.get("appends", []):
        per = run["entries_per_transaction"]
        target = "—"
        if run["writers"] == 4 and per == 1:
            target = f"≥ {TARGET_APPENDS_PER_S:.0f}/s {verdict(run['appends_per_s'] >= TARGET_APPENDS_PER_S)}"
        out.append((
            f"appends, {run['writers']} writer process{'es' if run['writers'] > 1 else ''}, {per}/transaction",
            f"{run['appends_per_s']:.0f} /s",
            (f"commit message {run['commit_message_ms']['median']:.2f} ms (p99 {run['commit_message_ms']['p99']:.1f}), "
             f"transaction {run['transaction_ms']['median']:.2f} ms; log verified"),
            target,
        ))
    build = result.get("build")
    if build:
        s = build["seconds"]
        out.append((f"build {build['entries']:,} entries (generate + COPY + sign)", f"{s['total_s']:.0f} s",
                    (f"entries {s['generate_and_copy_entries_s']:.0f} s, nodes {s['copy_nodes_s']:.0f} s, "
                     f"vacuum {s['vacuum_analyze_s']:.0f} s; body {build['mean_body_bytes']:.0f} B avg"), "—"))
    proofs = result.get("proofs")
    if proofs:
        for name in ("inclusion", "consistency", "root"):
            p = proofs[name]
            target = (f"< {TARGET_PROOF_MS:.0f} ms {verdict(p['p99_ms'] < TARGET_PROOF_MS)}"
                      if name != "root" else "—")
            label = {"inclusion": "inclusion proof", "consistency": "consistency proof", "root": "root at a past size"}[name]
            out.append((f"{label} at {proofs['tree_size']:,} (DB included)",
                        f"{p['median_ms']:.2f} ms", f"p99 {p['p99_ms']:.2f} ms over {proofs['cases']}, "
                        f"{p['stored_nodes_read_median']:.0f} nodes read" + ("; all verified" if name != "root" else ""),
                        target))
    verify = result.get("verify")
    if verify:
        out.append((f"`ledger_check.verify` at {verify['entries']:,}", f"{verify['seconds']:.1f} s",
                    (f"{verify['entries_per_s']:,} entries/s; CPU: Python {verify['cpu_seconds']['python']:.0f} s, "
                     f"postgres {verify['cpu_seconds']['postgres_backend']:.0f} s; passed"),
                    f"< {TARGET_VERIFY_S:.0f} s {verdict(verify['seconds'] < TARGET_VERIFY_S)}"))
    return out


def print_table(result: dict[str, Any]) -> None:
    host = result["host"]
    table = Table(
        title="Custody ledger bench (PostgreSQL)",
        caption=f"{host['cpus']} CPUs, PostgreSQL {result.get('postgres_version', '?')} on this machine; "
                f"load average {host['load_average_at_start']} at start, {host.get('load_average_at_end')} at end",
    )
    for name, justify in (("measure", "left"), ("figure", "right"), ("detail", "left"), ("target", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows(result):
        table.add_row(*row)
    console.print(table)


def markdown(result: dict[str, Any]) -> str:
    host = result["host"]
    lines = [
        (
            f"Custody ledger on PostgreSQL {result.get('postgres_version', '?')} (`synchronous_commit` "
            f"{result.get('commit_ceiling', {}).get('server', {}).get('synchronous_commit', '?')}), "
            f"bench and server on one {host['cpus']}-CPU machine (load average {host['load_average_at_start'][0]} "
            f"at start, {host.get('load_average_at_end', ['?'])[0]} at end). Writers are separate processes "
            "calling `custody.record` in their own transactions; proofs are timed from a fresh session to the "
            "proof, database reads included, and each is verified."
        ),
        "",
        "| measure | figure | detail | target |",
        "|---|---:|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(result)]
    return "\n".join(lines)


def print_profile(top: list[dict[str, Any]]) -> None:
    table = Table(title="ledger_check.verify profile (py-spy, non-blocking, samples inside verify)")
    table.add_column("function (file); · = project code by inclusive time")
    table.add_column("own %", justify="right")
    table.add_column("incl. %", justify="right")
    for row in top:
        table.add_row(("· " if row.get("project") else "") + row["function"], f"{row['own_pct']:.1f}",
                      f"{row['total_pct']:.1f}")
    console.print(table)


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="size of the read-side ledger (1000000)")
    parser.add_argument("--appends", type=int, default=3000, help="appends per writer configuration (3000)")
    parser.add_argument("--proofs", type=int, default=300, help="random proof cases (300)")
    parser.add_argument("--writers", default="1,4", help="writer process counts (1,4)")
    parser.add_argument("--per-transaction", default="1,10", help="entries per transaction (1,10)")
    parser.add_argument("--skip-appends", action="store_true", help="only the read side")
    parser.add_argument("--skip-read", action="store_true", help="only the appends")
    parser.add_argument("--profile", action="store_true", help="sample verify with py-spy from its start, not only once it has missed its target")
    parser.add_argument("--out", type=Path, default=Path("bench/results/ledger.json"), help="JSON results")
    args = parser.parse_args(argv)
    args.writer_counts = [int(x) for x in args.writers.split(",") if x.strip()]
    args.per_txn = [int(x) for x in args.per_transaction.split(",") if x.strip()]
    if args.entries < 2 or args.appends < 1 or args.proofs < 1:
        parser.error("--entries must be at least 2, --appends and --proofs at least 1")
    return args


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # run the clean-ups, as for Ctrl-C


def run(args: argparse.Namespace, databases: list[str]) -> dict[str, Any]:
    global BENCH_KEYS
    BENCH_KEYS = keys()
    result: dict[str, Any] = {
        "bench": "ledger",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {
            "cpus": os.cpu_count(), "memory_bytes": psutil.virtual_memory().total,
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "targets": {"appends_per_s_4_writers": TARGET_APPENDS_PER_S, "proof_ms_at_1m": TARGET_PROOF_MS,
                    "verify_s_at_1m": TARGET_VERIFY_S},
        "notes": [
            ("commit_message_ms is client-observed: the round trip of the one message that takes the ledger head,"
             " appends, commits (freeing the head before the WAL flush) and waits for the flush; transaction_ms"
             " is the whole transaction, from the session's start to its commit returning"),
            "proof times include a pool checkout (pool_pre_ping), the head read and the node read, as in the API",
            "build times are for COPY into the migrated schema with its indexes in place",
        ],
    }
    from tests.support.postgres import ADMIN_URL

    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        result["postgres_version"] = admin.execute("SHOW server_version").fetchone()[0].split()[0]  # type: ignore[index]

    if not args.skip_appends:
        err.print("appends: creating and migrating a fresh database")
        url = new_database()
        databases.append(url)
        result["commit_ceiling"] = commit_ceiling(url)
        result["appends"] = []
        for writers in args.writer_counts:
            for per in args.per_txn:
                err.print(f"appends: {writers} writer(s), {per} per transaction, {args.appends} entries")
                run_result = append_run(url, writers, per, args.appends)
                err.print(f"  {run_result['appends_per_s']:.0f} appends/s, "
                          f"commit message {run_result['commit_message_ms']['median']:.2f} ms median; log checked")
                result["appends"].append(run_result)

    if not args.skip_read:
        err.print(f"build: creating a fresh database and loading {args.entries:,} entries")
        url = new_database()
        databases.append(url)
        rng = random.Random(SEED + 1)
        cases = [(rng.randrange(args.entries), rng.randrange(1, args.entries)) for _ in range(args.proofs)]
        build = build_ledger(url, args.entries, {size1 for _, size1 in cases})
        roots = build.pop("_roots")
        roots[args.entries] = build.pop("_final_root")
        result["build"] = build
        err.print(f"  built in {build['seconds']['total_s']:.1f} s")
        err.print(f"proofs: {args.proofs} inclusion and consistency proofs at {args.entries:,}")
        result["proofs"] = measure_proofs(url, args.entries, cases, roots)
        err.print(f"verify: ledger_check.verify over {args.entries:,} entries")
        profile = args.out.parent / "profiles" / "ledger-verify.txt"
        result["verify"] = measure_verify(url, args.entries, profile, 0.0 if args.profile else TARGET_VERIFY_S)
        err.print(f"  {result['verify']['seconds']:.1f} s")

    result["host"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["markdown"] = markdown(result)
    print_table(result)
    if result.get("verify", {}).get("profile", {}).get("top"):
        print_profile(result["verify"]["profile"]["top"])
    console.print("\nMarkdown for the README:\n")
    console.print(result["markdown"], markup=False, highlight=False, soft_wrap=True)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)
    databases: list[str] = []
    try:
        result = run(args, databases)
    except BenchFailed as error:
        err.print(f"[bold red]bench failed:[/] {error}")
        return 1
    finally:
        from tests.support.postgres import drop_database

        for url in databases:
            try:
                drop_database(url)
            except Exception as error:
                err.print(f"[yellow]could not drop {url}: {error}[/]")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    err.print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
