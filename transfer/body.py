"""Request bodies as the stores see them: coalesced blocks, cut at a limit, and, when the
client sent ``Upload-Checksum``, verified before a single byte reaches the store."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from starlette.requests import ClientDisconnect

from transfer.errors import ChecksumMismatch, TooLarge
from transfer.headers import Checksum
from transfer.lane import Lane

# Bytes handed to a store at a time: large enough that thread hops and system calls are
# few (one per MiB), small enough that a block in each stage of the pipeline (receiving,
# hashing, writing) keeps an upload within a few MiB of memory.
BLOCK = 1024 * 1024
# Blocks waiting to be hashed, per upload (see transfer.lane).
HASH_QUEUE_BYTES = 2 * 1024 * 1024


async def received(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """Yield the body in blocks of about ``BLOCK`` bytes.

    A client that goes away simply ends the body: what arrived is kept (tus resumes from
    there). More than ``limit`` bytes is an error, and then nothing of the body counts.
    """
    pieces: list[bytes] = []
    buffered = total = 0
    try:
        async for piece in stream:
            total += len(piece)
            if total > limit:
                raise TooLarge("the body is longer than the upload's remaining length")
            pieces.append(piece)
            buffered += len(piece)
            if buffered >= BLOCK:
                yield b"".join(pieces)
                pieces.clear()
                buffered = 0
    except ClientDisconnect:
        pass
    if pieces:
        yield b"".join(pieces)


async def verified(blocks: AsyncIterator[bytes], checksum: Checksum) -> AsyncIterator[bytes]:
    """Pass ``blocks`` through, then raise :class:`ChecksumMismatch` at the end if their
    digest differs from ``checksum``.

    Stores count nothing of a chunk whose source raises, so the bytes a store has already
    written past the upload's offset are dropped and the offset stays where it was. This
    avoids spooling every chunk to disk and reading it back.
    """
    digest = hashlib.new(checksum.algorithm)
    # Hashed in a thread of its own while the store writes and the next blocks arrive.
    lane = Lane(HASH_QUEUE_BYTES, "checksum")
    length = 0
    try:
        async for block in blocks:
            await lane.submit(digest.update, block, size=len(block))
            length += len(block)
            yield block
        await lane.drain()
    finally:
        lane.close()
    if digest.digest() != checksum.digest:
        raise ChecksumMismatch(
            f"{checksum.algorithm} of the {length} bytes received does not match Upload-Checksum;"
            " the chunk was not stored"
        )


class VerifiedBody:
    """Spools a body to a temporary file while checking it, for creation-with-upload: there
    the chunk must be verified before the upload even exists (a refused POST gives the
    client no Location, so an upload created first could never be resumed). PATCH bodies
    stream through :func:`verified` instead."""

    def __init__(self, tmp_dir: Path | None) -> None:
        self._file = tempfile.TemporaryFile(dir=tmp_dir)

    async def spool(self, body: AsyncIterator[bytes], checksum: Checksum) -> None:
        async for block in verified(body, checksum):
            await anyio.to_thread.run_sync(self._file.write, block)

    async def blocks(self) -> AsyncIterator[bytes]:
        await anyio.to_thread.run_sync(self._file.seek, 0)
        while block := await anyio.to_thread.run_sync(self._file.read, BLOCK):
            yield block

    def close(self) -> None:
        self._file.close()
