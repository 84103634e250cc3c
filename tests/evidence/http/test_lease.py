"""The upkeep lease (evidence.http.lease): one holder at a time among processes on one
host (a file lock) and among nodes on one PostgreSQL (an advisory lock), given up when its
holder dies or loses its connection, and taken by another on its next round."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

from sqlalchemy import create_engine, text

from evidence.db import Database
from evidence.http.lease import AdvisoryLease, FileLease


def _hold_for_ever(path: str, ready: multiprocessing.synchronize.Event) -> None:
    lease = FileLease(Path(path))
    assert lease.hold()
    ready.set()
    signal.pause()


def test_a_file_lease_has_one_holder_and_ends_with_its_process(tmp_path: Path) -> None:
    path = tmp_path / "upkeep.lock"
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold_for_ever, args=(str(path), ready))
    holder.start()
    try:
        assert ready.wait(60)
        mine = FileLease(path)
        assert not mine.hold() and not mine.hold()
        os.kill(holder.pid or 0, signal.SIGKILL)  # no tidy release: the kernel drops the lock
        holder.join(30)
        assert mine.hold() and mine.hold()
        other = FileLease(path)
        assert not other.hold()
        mine.release()
        assert other.hold()
        other.release()
    finally:
        if holder.is_alive():
            holder.kill()


def test_an_advisory_lease_has_one_holder_and_is_lost_with_its_connection(postgres_url: str) -> None:
    first, second = Database(postgres_url), Database(postgres_url)
    try:
        one, two = AdvisoryLease(first.lock_engine), AdvisoryLease(second.lock_engine)
        assert one.hold() and one.hold()
        assert not two.hold()
        # The holder's connection dies (a PostgreSQL restart does this to all of them); the
        # call waits until it has.
        admin = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(pid, 10000) FROM pg_locks "
                                    "WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"))
        admin.dispose()
        assert two.hold()  # taken over at once
        assert not one.hold()  # the old holder notices it lost it, and does not hold it
        two.release()
        assert one.hold()
        one.release()
    finally:
        first.dispose()
        second.dispose()
