"""A lane: one worker thread that runs blocking calls in the order given, while the event
loop goes on receiving.

Without it a chunk is received, then hashed, then written, one block at a time, and while
a block is hashed or written the server stops reading the socket (uvicorn pauses reading
past 64 KiB): receiving, hashing and writing never overlap. With a lane per stage they do
(hashlib and os.write release the GIL). The backlog is bounded in bytes, so memory per
upload stays small however fast the client sends and however slow the disk is.

After a call fails, the lane runs nothing more (a write after a failed write would land at
the wrong place) and every later :meth:`submit` or :meth:`drain` raises that error.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class Lane:
    def __init__(self, limit: int, name: str = "lane") -> None:
        self.limit = limit  # bytes submitted but not yet done, before submit waits
        self.done = 0  # bytes of the calls that succeeded, in order
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: deque[tuple[asyncio.Future[None], int]] = deque()
        self._backlog = 0
        self._error: BaseException | None = None

    async def submit(self, call: Callable[..., Any], *args: Any, size: int = 0) -> None:
        """Queue ``call(*args)``, which stands for ``size`` bytes; wait only while the
        backlog is over the limit."""
        self._raise_if_failed()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._run, call, args, size)
        self._pending.append((future, size))
        self._backlog += size
        while self._backlog > self.limit:
            await self._settle_oldest()
        self._raise_if_failed()

    async def drain(self) -> None:
        """Wait for every queued call; raise the first error."""
        while self._pending:
            await self._settle_oldest()
        self._raise_if_failed()

    async def settle(self) -> None:
        """Wait for every queued call, whatever happened (before the file they write to is
        truncated or closed): the error, if any, stays for :meth:`drain`."""
        while self._pending:
            await self._settle_oldest()

    def close(self) -> None:
        self._executor.shutdown(wait=False)

    def _run(self, call: Callable[..., Any], args: tuple[Any, ...], size: int) -> None:
        if self._error is not None:
            return  # an earlier call failed: nothing after it may run
        try:
            call(*args)
        except BaseException as error:
            self._error = error
            return
        self.done += size

    async def _settle_oldest(self) -> None:
        future, size = self._pending[0]
        # Shielded: a cancelled request still waits for the call its thread is running.
        await asyncio.shield(future)
        self._pending.popleft()
        self._backlog -= size

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error
