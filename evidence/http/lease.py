"""Who does the background upkeep: one process among all the API processes on a database.

``evidence serve --workers N`` runs N processes, and production runs several API nodes on
one PostgreSQL. The upkeep (signing checkpoints, removing expired uploads, queueing stalled
items again) must not run in each of them at once: a stalled item would be queued N times,
and every start counts against its processing attempts. Each process asks for the lease on
every round; the one holding it does the work. The lease ends with its holder, however it
dies (the kernel drops a dead process's file lock; PostgreSQL drops the advisory lock of a
closed connection), and another process takes it on its next round.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

# The advisory lock's key: any constant, the same in every process (64-bit, signed).
UPKEEP_KEY = 0x65766964656E6365  # "evidence"


class Lease(Protocol):
    def hold(self) -> bool:
        """Whether this process holds the lease now, taking it if it is free."""

    def release(self) -> None: ...


class FileLease:
    """A lease on one host: an exclusive ``flock`` on a file (SQLite, the embedded mode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def hold(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


class AdvisoryLease:
    """A lease for every node on one PostgreSQL: a session-level advisory lock, held on a
    connection of its own for as long as this process does the upkeep."""

    def __init__(self, engine: Engine, key: int = UPKEEP_KEY) -> None:
        self.engine = engine
        self.key = key
        self._connection: Connection | None = None

    def hold(self) -> bool:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
                return True
            except DBAPIError:
                # The server closed the connection (restarted, say): the lock went with it.
                log.info("the upkeep lease was lost with its database connection; asking again")
                self._drop()
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            held = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}))
        except BaseException:
            connection.close()
            raise
        if not held:
            connection.close()
            return False
        self._connection = connection
        return True

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            except DBAPIError:
                pass  # gone with the connection anyway
            self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.invalidate()  # never back into the pool: it may still hold the lock
            finally:
                connection.close()
