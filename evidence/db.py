"""Engine and sessions. SQLite in the embedded mode, PostgreSQL in production."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from evidence.filemodes import make_private

# SQLite's companions of a database file: its WAL, shared-memory index and rollback journal.
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_sqlite_files(url: str) -> None:
    """A SQLite database file readable by the service user only, created empty (0600) if
    missing so that SQLite, which gives its -wal and -shm files the database's mode,
    makes them private too; files an older install left readable are tightened."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.parent.is_dir():
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for suffix in SQLITE_SUFFIXES:
        make_private(Path(f"{path}{suffix}"))


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        private_sqlite_files(url)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
            # Let SQLAlchemy's "begin" below open transactions, not the driver.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # WAL lets readers carry on while one writer commits; the API, the CLI and
            # the worker all open the same file.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection: Connection) -> None:
            # Take the write lock at the start: a transaction that read first and wrote
            # later could find its snapshot stale and fail at once (SQLITE_BUSY), where
            # waiting its turn is what we want (busy_timeout).
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    # pool_pre_ping: a connection the server dropped (PostgreSQL restarted) is replaced on
    # its next checkout, so the first request after a restart already works.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_timeout=POOL_WAIT_SECONDS,
                         connect_args=postgres_connect_args(url))


# A database that does not answer is reported (503) after this long, not waited on for
# minutes: the client is told to come back instead of hanging.
CONNECT_TIMEOUT_SECONDS = 5
# The longest a request waits for a free pooled connection.
POOL_WAIT_SECONDS = 10


def postgres_connect_args(url: str) -> dict[str, Any]:
    """libpq options for every PostgreSQL connection: a bounded connect, and TCP keepalives so
    that a server that vanished (a host gone, a network cut) is noticed in seconds rather
    than after the kernel's two hours, for connections held long (the upload locks)."""
    if not make_url(url).get_backend_name() == "postgresql":
        return {}
    return {"connect_timeout": CONNECT_TIMEOUT_SECONDS, "keepalives": 1, "keepalives_idle": 10,
            "keepalives_interval": 5, "keepalives_count": 3}


class Database:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._lock_engine: Engine | None = None

    @property
    def lock_engine(self) -> Engine:
        """A separate pool for connections held for a long time (per-upload advisory locks);
        no ceiling, as each connection belongs to one request in progress."""
        if self._lock_engine is None:
            self._lock_engine = create_engine(self.engine.url, pool_pre_ping=True, pool_size=5, max_overflow=-1,
                                              connect_args=postgres_connect_args(str(self.engine.url)))
        return self._lock_engine

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits together, or not at all."""
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        if self._lock_engine is not None:
            self._lock_engine.dispose()
