"""Per-upload locks across API processes: PostgreSQL session advisory locks.

Each lock holds one connection for as long as the chunk takes; any API node can then take
any chunk of any upload, one at a time. Those connections come from a pool of their own:
drawn from the application's pool, enough chunks at once would hold every connection as
locks and then wait (until the pool times out) for one more to record their progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator

import anyio
from sqlalchemy import Connection, Engine, text

from transfer.errors import Locked


def lock_key(upload_id: str) -> int:
    """A signed 64-bit key for ``pg_advisory_lock``, stable across processes."""
    return int.from_bytes(hashlib.sha256(b"upload:" + upload_id.encode()).digest()[:8], "big", signed=True)


class PostgresLocker:
    def __init__(self, engine: Engine, timeout: float = 20.0) -> None:
        # Give it an engine of its own (Database.lock_engine): a lock holds its connection
        # for a whole chunk, and must not starve the registry of the app's pool.
        self.engine = engine
        self.timeout = timeout

    @contextlib.asynccontextmanager
    async def lock(self, upload_id: str) -> AsyncIterator[None]:
        key = lock_key(upload_id)
        connection = await anyio.to_thread.run_sync(self.engine.connect)
        try:
            deadline = time.monotonic() + self.timeout
            while not await anyio.to_thread.run_sync(_try_lock, connection, key):
                if time.monotonic() > deadline:
                    raise Locked()
                await asyncio.sleep(0.05)
            try:
                yield
            finally:
                await anyio.to_thread.run_sync(_unlock, connection, key)
        finally:
            await anyio.to_thread.run_sync(connection.close)


def _try_lock(connection: Connection, key: int) -> bool:
    got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar_one()
    connection.commit()
    return bool(got)


def _unlock(connection: Connection, key: int) -> None:
    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    connection.commit()
