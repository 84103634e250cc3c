"""The database: SQLite as the embedded mode needs it (WAL, foreign keys, the write lock
taken at BEGIN, private files) and transactions that commit together or not at all, on
both databases."""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from evidence.db import Database, make_engine


def test_sqlite_is_set_up_for_several_processes_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "evidence.db"
    db = Database(f"sqlite:///{path}")
    try:
        with db.engine.connect() as connection:
            pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
            assert (pragma("journal_mode"), pragma("foreign_keys"), pragma("busy_timeout")) == ("wal", 1, 30000)
            assert pragma("synchronous") == 2  # FULL: a commit is on disk when it returns
        for suffix in ("", "-wal", "-shm"):
            assert stat.S_IMODE(Path(f"{path}{suffix}").stat().st_mode) == 0o600, suffix
    finally:
        db.dispose()


def test_a_sqlite_transaction_takes_the_write_lock_at_its_start(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: a second writer waits for the first instead of failing later with a
    stale snapshot."""
    db = Database(f"sqlite:///{tmp_path / 'lock.db'}")
    try:
        with db.transaction() as session:
            session.execute(text("CREATE TABLE t (n INTEGER)"))
        order: list[str] = []
        holding = threading.Event()

        def first() -> None:
            with db.transaction() as session:
                session.execute(text("SELECT count(*) FROM t"))  # a read only, yet the lock is held
                holding.set()
                time.sleep(0.5)
                order.append("first commits")

        thread = threading.Thread(target=first)
        thread.start()
        holding.wait(5)
        with db.transaction() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))  # waits for the first to commit
            order.append("second wrote")
        thread.join()
        assert order == ["first commits", "second wrote"]
    finally:
        db.dispose()


def test_a_transaction_commits_together_or_not_at_all(database_url: str, tmp_path: Path) -> None:
    db = Database(database_url or f"sqlite:///{tmp_path / 'tx.db'}")
    try:
        with db.transaction() as session:
            session.execute(text("CREATE TABLE kept (n INTEGER)"))
        with pytest.raises(RuntimeError), db.transaction() as session:
            session.execute(text("INSERT INTO kept VALUES (1)"))
            raise RuntimeError("the change this belongs to failed")
        with db.transaction() as session:
            session.execute(text("INSERT INTO kept VALUES (2)"))
        with db.sessions() as session:
            assert session.execute(text("SELECT n FROM kept")).scalars().all() == [2]
        assert db.is_postgres == bool(database_url)
    finally:
        db.dispose()


def test_postgresql_urls_use_psycopg_3() -> None:
    engine = make_engine("postgresql://evidence@db.example/evidence")
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()
