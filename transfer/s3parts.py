"""Cutting a byte stream into S3 multipart parts and sending several at once.

S3 lets the parts of one upload differ in size: every part but the last must hold at least
5 MiB, and there are at most 10,000. So a part need not wait to be full: a tus chunk that
ends with 8 MiB received becomes an 8 MiB part, and only a tail too short to be a part has
to wait (in a pending object, see :mod:`transfer.s3store`) for the next chunk.

Within a long chunk, parts are spooled to local temporary files (memory stays flat) and
uploaded by a small pool while the next ones are received, as boto3's own ``upload_file``
does. Their results are committed to the upload's state strictly in part order, and only
once S3 has confirmed them, so the state never covers a byte S3 does not hold.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import tempfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio

from transfer.errors import TooLarge
from transfer.s3api import Part, S3Api, UploadedPart

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's floor for every part but the last
MAX_PARTS = 10_000  # S3's ceiling on parts per multipart upload
# Incoming pieces (~64 KiB to 1 MiB) are gathered to this size before each disk write.
COALESCE = 1 * MiB
# Parts uploading at once per upload. Each is a spool file of up to a part on local disk;
# two cores gain nothing past a few, and a server has many uploads.
IN_FLIGHT = 3


def choose_part_size(preferred: int, size: int | None, max_size: int) -> int:
    """The part size for an upload of ``size`` bytes (``None``: deferred, up to ``max_size``),
    large enough that the upload fits in S3's 10,000 parts and never below 5 MiB."""
    basis = max_size if size is None else size
    return max(preferred, MIN_PART_SIZE, -(-basis // MAX_PARTS))


def smallest_part(size: int | None, max_size: int, stored: int, used: int) -> int:
    """The fewest bytes the next part may hold, unless it is the last: with ``stored`` bytes
    already in ``used`` parts, the rest of the upload (its ``size``, or up to ``max_size``
    while deferred) must still fit in the parts left.

    If every part holds at least the rest divided by the parts left, that quotient never
    grows from one part to the next, so the upload never runs out of parts."""
    rest = (max_size if size is None else size) - stored
    left = MAX_PARTS - used
    if left <= 1:
        return max(rest, MIN_PART_SIZE)  # only the last part is left: it takes everything
    return max(MIN_PART_SIZE, -(-rest // left))


@dataclass
class PartState:
    """The parts of an upload that S3 has confirmed, and the pending bytes (kept in a
    pending object) that lead the next part."""

    upload_id: str
    part_size: int
    parts: list[Part] = field(default_factory=list)
    pending: int = 0
    pending_key: str | None = None

    @property
    def in_parts(self) -> int:
        return sum(part["size"] for part in self.parts)

    @property
    def total(self) -> int:
        return self.in_parts + self.pending


@dataclass
class _Sending:
    number: int
    size: int
    spool: IO[bytes]
    reply: concurrent.futures.Future[UploadedPart]


class PartWriter:
    """Cuts a byte stream into parts of ``state.part_size`` and uploads each as it fills,
    up to ``in_flight`` at once. ``state`` only ever changes after S3 has confirmed a part
    and every part before it, so at any moment it describes what is durably stored.

    :meth:`close` must be awaited whatever happens: it waits for every part still being
    sent, so no upload from this writer can land after the caller has let go of the
    upload's lock (a part number sent again by the next chunk must not be overwritten by a
    late copy of this one)."""

    def __init__(self, api: S3Api, key: str, state: PartState, tmp_dir: Path, in_flight: int = IN_FLIGHT) -> None:
        self.api = api
        self.key = key
        self.state = state
        self.tmp_dir = tmp_dir
        self.in_flight = max(1, in_flight)
        self.spool: IO[bytes] | None = None
        self.spooled = 0
        self.buffer = bytearray()
        self.sending: deque[_Sending] = deque()
        self.committed = asyncio.Event()  # set whenever a part is committed to the state
        self._executor: ThreadPoolExecutor | None = None

    @property
    def held(self) -> int:
        """Bytes received but not yet handed to a part upload."""
        return self.spooled + len(self.buffer)

    @property
    def next_number(self) -> int:
        return len(self.state.parts) + len(self.sending) + 1

    async def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            room = self.state.part_size - self.held
            self.buffer += view[:room]
            view = view[room:]
            if self.held == self.state.part_size:
                await self.send_held()
            elif len(self.buffer) >= COALESCE:
                await self._flush_buffer()
        self._collect()

    async def send_held(self) -> None:
        """Start uploading what is held as the next part (it must be a valid part: the
        floor, or the last), waiting first while the pool is full."""
        if not self.held:
            return
        number = self.next_number
        if number > MAX_PARTS:
            raise TooLarge("the upload needs more than 10,000 parts")
        while len(self.sending) >= self.in_flight:
            await self._commit_first()
        spool, size = await self.take_held()
        if spool is None:  # held bytes are always spooled by take_held; for the type checker
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.in_flight, thread_name_prefix="s3-part")
        reply = self._executor.submit(self.api.upload_part, self.key, self.state.upload_id, number, spool, size)
        # Committed as soon as S3 confirms it, even while the stream stalls (a client that
        # pauses must still have its progress kept).
        loop = asyncio.get_running_loop()
        reply.add_done_callback(lambda _: loop.call_soon_threadsafe(self._collect_confirmed))
        self.sending.append(_Sending(number, size, spool, reply))

    async def drain(self) -> None:
        """Wait until every part sent so far is confirmed (and committed), or raise the
        first failure."""
        while self.sending:
            await self._commit_first()

    async def take_held(self) -> tuple[IO[bytes] | None, int]:
        """What is held but not sent, as a spool file rewound to its start (the caller
        closes it), to be parked."""
        await self._flush_buffer()
        spool, size = self.spool, self.spooled
        self.spool, self.spooled = None, 0
        if spool is not None:
            await anyio.to_thread.run_sync(spool.seek, 0)
        return spool, size

    async def close(self) -> None:
        # Shielded: even a cancelled request waits for its uploads (see the class docstring).
        # A part that fails or is left here never counts; the caller has its own error.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(concurrent.futures.wait, [s.reply for s in self.sending])
        while self.sending:
            self.sending.popleft().spool.close()
        if self.spool is not None:
            self.spool.close()
            self.spool = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def _collect(self) -> None:
        """Commit the leading parts that have finished; raise the first failure met."""
        while self.sending and self.sending[0].reply.done():
            self._commit(self.sending.popleft())

    def _collect_confirmed(self) -> None:
        """Commit the leading parts S3 has confirmed; leave a failure to :meth:`_collect`."""
        while self.sending and _confirmed(self.sending[0].reply):
            self._commit(self.sending.popleft())

    async def _commit_first(self) -> None:
        # On failure the part stays queued: close() waits for the rest and closes the spools.
        await asyncio.wrap_future(self.sending[0].reply)
        self._collect()  # (a callback may have committed it meanwhile)

    def _commit(self, sent: _Sending) -> None:
        try:
            reply = sent.reply.result()
        except BaseException:
            self.sending.appendleft(sent)  # close() closes its spool with the others'
            raise
        sent.spool.close()
        self.state.parts.append(Part(n=sent.number, size=sent.size, etag=reply["etag"], sha256=reply["sha256"]))
        # The pending bytes, if any, were at the start of the first part.
        self.state.pending = 0
        self.committed.set()

    async def _flush_buffer(self) -> None:
        if self.buffer:
            data, self.buffer = bytes(self.buffer), bytearray()
            if self.spool is None:
                self.spool = await anyio.to_thread.run_sync(self._new_spool)
            await anyio.to_thread.run_sync(self.spool.write, data)
            self.spooled += len(data)

    def _new_spool(self) -> IO[bytes]:
        return tempfile.TemporaryFile(dir=self.tmp_dir)



def _confirmed(reply: concurrent.futures.Future[UploadedPart]) -> bool:
    return reply.done() and not reply.cancelled() and reply.exception() is None
