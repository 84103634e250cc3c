"""Many writers at once never fork the log: threads sharing one engine (SQLite and PostgreSQL) and
processes on PostgreSQL, some transactions rolled back, checkpoints signed meanwhile, and writer
processes killed at random moments and while holding the ledger head after appending. Afterwards
the seqs are contiguous, each committed transaction's entries are all there, next to each other and
in order, nothing of an uncommitted one is, and the full verification passes."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from evidence import custody, migrate
from evidence.custody import ledger, pending
from evidence.custody import verify as ledger_check
from evidence.custody.actions import Action
from evidence.models import CustodyEvent, LedgerNode
from evidence.runtime import Runtime
from evidence.settings import Settings
from tests.evidence.custody.ledgers import ACTOR


def transact(rt: Runtime, writer: str, n: int, entries: int, commit: bool) -> None:
    """One transaction of ``entries`` entries, each naming (writer, n, part, of)."""
    try:
        with rt.db.transaction() as session:
            for part in range(entries):
                custody.record(session, Action.UPLOAD_CREATED, {"upload": f"{writer}-{n}-{part}-{entries}"},
                               f"user:{writer}@x", {"n": n})
            if not commit:
                raise _RolledBack
    except _RolledBack:
        pass


class _RolledBack(Exception):
    pass


def check(rt: Runtime, committed: set[str] | None = None) -> dict[str, list[int]]:
    """The log is whole; returns the seqs of each transaction ("writer-n") found in it."""
    with rt.db.sessions() as session:
        rows = session.execute(select(CustodyEvent.seq, CustodyEvent.subject).order_by(CustodyEvent.seq)).all()
        nodes = session.scalar(select(func.count()).select_from(LedgerNode))
        size = ledger.size(session)
        result = ledger_check.verify(session, rt.ledger_keys.verifier, rt.ledger_keys.origin)
    assert result.ok, f"{result.problem} at {result.seq}"
    assert [seq for seq, _ in rows] == list(range(len(rows))) and size == len(rows)
    assert nodes == sum(size >> level for level in range(size.bit_length()))
    found: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for seq, subject in rows:
        if "upload" in subject:
            writer, n, part, of = subject["upload"].rsplit("-", 3)
            found[f"{writer}-{n}"].append((seq, int(part), int(of)))
    for name, parts in found.items():
        seqs = [seq for seq, _, _ in parts]
        of = parts[0][2]
        assert [part for _, part, _ in parts] == list(range(of)), f"{name}: a transaction appended in part"
        assert seqs == list(range(seqs[0], seqs[0] + of)), f"{name}: a transaction's entries are not together"
    if committed is not None:
        assert set(found) == committed
    return {name: [seq for seq, _, _ in parts] for name, parts in found.items()}


def test_threads_sharing_an_engine_never_fork_the_log(rt: Runtime) -> None:
    committed: set[str] = set()
    lock = threading.Lock()
    failures: list[BaseException] = []

    def writer(w: int) -> None:
        rng = random.Random(w)
        try:
            for n in range(25):
                keep = rng.random() > 0.2
                transact(rt, f"t{w}", n, rng.randint(1, 3), keep)
                if keep:
                    with lock:
                        committed.add(f"t{w}-{n}")
                if n % 10 == 9:
                    with rt.db.transaction() as session:
                        ledger.sign_checkpoint(session, rt.ledger_keys, ACTOR)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not failures, failures
    check(rt, committed)


# -- processes on PostgreSQL -----------------------------------------------------------------


def _writer_process(data_dir: str, url: str, writer: str, count: int, hold_at: int | None, signals: Any) -> None:
    rt = Runtime.build(Settings(data_dir=Path(data_dir), database_url=url))
    try:
        for n in range(count):
            if n == hold_at:
                _hold_the_head(rt, writer, n, signals)
            transact(rt, writer, n, 2, commit=n % 5 != 4)
            if n % 10 == 0:
                with rt.db.transaction() as session:
                    ledger.sign_checkpoint(session, rt.ledger_keys, ACTOR)
    finally:
        rt.close()
    signals.put(("done", writer, os.getpid()))


def _hold_the_head(rt: Runtime, writer: str, n: int, signals: Any) -> None:
    """Append transaction n's entries and keep the head locked, until killed. At commit the head
    is held only while the server appends and commits, so the test takes it the way a
    transaction signing a checkpoint does, which holds it until its COMMIT."""
    with rt.db.transaction() as session:
        for part in range(2):
            custody.record(session, Action.UPLOAD_CREATED, {"upload": f"{writer}-{n}-{part}-2"}, f"user:{writer}@x",
                           {"n": n})
        pending.write_pending(session)
        signals.put(("holding", writer, os.getpid()))
        time.sleep(600)


@pytest.mark.postgres
def test_killed_writer_processes_leave_a_whole_log(tmp_path: Path, postgres_url: str) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=postgres_url)
    rt = Runtime.build(settings)  # makes the keys every writer then shares
    migrate.upgrade(rt.db.engine)
    context = multiprocessing.get_context("spawn")
    signals = context.Queue()
    # p0 and p1 write enough to be still writing, usually, when the holder takes the head; the
    # victim surely is. A writer that finished first is fine: its entries are checked the same.
    plans = {"p0": (150, None), "p1": (150, None), "holder": (60, 6), "victim": (400, None)}
    processes = {
        name: context.Process(target=_writer_process, args=(str(settings.data_dir), postgres_url, name, count, hold, signals))
        for name, (count, hold) in plans.items()
    }
    try:
        for process in processes.values():
            process.start()
        kind, name, _ = signals.get(timeout=120)
        while kind == "done" and name in ("p0", "p1"):
            kind, name, _ = signals.get(timeout=120)
        assert (kind, name) == ("holding", "holder")
        assert processes["victim"].is_alive()
        with rt.db.sessions() as session:
            before = ledger.size(session)
        time.sleep(0.5)  # everyone else is queued behind the head the holder has written and locked
        with rt.db.sessions() as session:
            assert ledger.size(session) == before
        os.kill(processes["holder"].pid, signal.SIGKILL)  # type: ignore[arg-type]
        time.sleep(random.Random(7).uniform(0.2, 1.0))
        os.kill(processes["victim"].pid, signal.SIGKILL)  # type: ignore[arg-type]  # wherever it is
        for name in ("p0", "p1"):
            processes[name].join(240)
            assert processes[name].exitcode == 0, name
        for name in ("holder", "victim"):
            processes[name].join(30)
            assert processes[name].exitcode == -signal.SIGKILL, name
        found = check(rt)
        for name in ("p0", "p1"):
            assert {key for key in found if key.startswith(f"{name}-")} == {f"{name}-{n}" for n in range(plans[name][0]) if n % 5 != 4}
        # Transaction 6 held the head with its entries written, and was killed before COMMIT (4 rolled back).
        assert {key for key in found if key.startswith("holder-")} == {f"holder-{n}" for n in (0, 1, 2, 3, 5)}
        with rt.db.transaction() as session:  # the log goes on from where it is
            custody.record(session, Action.CASE_CREATED, {"case": "OP-AFTER"}, ACTOR, {})
        check(rt)
    finally:
        for process in processes.values():
            if process.is_alive():
                process.kill()
        rt.close()
