"""Per-upload locks: one request at a time may touch an upload.

The handler only needs ``lock(upload_id)`` as an async context manager that raises
:class:`transfer.errors.Locked` when the upload stays busy past the timeout. This module
holds the local implementation (one process, or several sharing a folder); the
application supplies a distributed one (PostgreSQL advisory locks) for production.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

import anyio

from transfer.errors import Locked


class Locker(Protocol):
    def lock(self, upload_id: str) -> AbstractAsyncContextManager[None]: ...


class LocalLocker:
    """An asyncio lock per upload, backed by an ``flock`` on a file in ``directory``
    so that two server processes on one data folder also take turns."""

    def __init__(self, directory: Path, timeout: float = 10.0) -> None:
        self.directory = directory
        self.timeout = timeout
        self._locks: dict[str, asyncio.Lock] = {}
        directory.mkdir(parents=True, exist_ok=True)

    @contextlib.asynccontextmanager
    async def lock(self, upload_id: str) -> AsyncIterator[None]:
        local = self._locks.setdefault(upload_id, asyncio.Lock())
        try:
            await asyncio.wait_for(local.acquire(), self.timeout)
        except TimeoutError:
            raise Locked() from None
        try:
            fd = await anyio.to_thread.run_sync(self._flock, upload_id)
            try:
                yield
            finally:
                os.close(fd)  # closing the descriptor releases the flock
        finally:
            local.release()
            if not local.locked():
                self._locks.pop(upload_id, None)

    def _flock(self, upload_id: str) -> int:
        # upload ids are server-generated hex, never client text
        fd = os.open(self.directory / f"{upload_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise Locked() from None
                time.sleep(0.02)
