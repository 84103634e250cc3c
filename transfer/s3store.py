"""A tus store on S3 multipart uploads, written straight to the upload's storage key.

Every part but the last must be at least 5 MiB, while tus chunks can be any size and any
server process may take the next one. So incoming bytes are spooled to local temporary
files and cut into parts of ``part_size``, several uploading at once
(:mod:`transfer.s3parts`); what is left at the end of a chunk becomes a part of its own
when it is large enough (parts may differ in size), and only a shorter tail is parked in S3
as a pending object ``{storage_key}.part.{offset}`` (never on local disk or in memory,
because the next chunk may reach another process) and fetched back at the start of the
next chunk.

Bookkeeping lives in ``info.store_state`` (JSON-serialisable), persisted by the handler:

    {"upload_id": str, "part_size": int, "pending": int,
     "parts": [{"n": int, "etag": str, "size": int, "sha256": str | None}, ...],
     "pending_key": str | None, "completed": bool}

with the invariant ``info.offset == sum(part sizes) + pending``.

Failure semantics of :meth:`S3Store.write_chunk` (what the handler must do):

- success: returns the bytes now stored from ``source``; ``info.store_state`` is updated.
  The handler adds the count to ``info.offset`` and saves ``info``.
- :class:`~transfer.errors.StorageUnavailable`: S3 failed part-way. ``info.store_state``
  already holds the last committed state and the exception's ``written`` is the bytes of
  ``source`` that state covers (0 when nothing new was committed; never negative).
  The handler adds ``written`` to ``info.offset``, saves ``info``, then answers 503.
- any other exception (from ``source``, e.g. a checksum or disconnect error it raises, or
  :class:`~transfer.errors.TooLarge`): ``info.store_state`` is left as it was at the last
  checkpoint (on entry, when there was none) and nothing of this call after that counts.
  A handler that wants to keep the bytes of a client that went away must end the
  iterator rather than raise from it. Parts sent for nothing are replaced when the next
  chunk sends the same part numbers, and are never listed when the upload completes.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from transfer.errors import InsufficientStorage, StorageUnavailable, TooLarge, disk_full
from transfer.info import UploadInfo
from transfer.s3api import BotoS3, NoSuchUpload, S3Api, S3Unavailable, StaleUpload
from transfer.s3parts import (
    COALESCE,
    IN_FLIGHT,
    MAX_PARTS,
    MIN_PART_SIZE,
    PartState,
    PartWriter,
    choose_part_size,
    smallest_part,
)
from transfer.store import Checkpoints

__all__ = ["MAX_OBJECT_SIZE", "MAX_PARTS", "MIN_PART_SIZE", "S3Store", "choose_part_size", "pending_key"]

MiB = 1024 * 1024
MAX_OBJECT_SIZE = 5 * 1024 * MiB * 1024  # 5 TiB, S3's largest object

T = TypeVar("T")


def pending_key(storage_key: str, prefix: str = "") -> str:
    """The prefix of an upload's pending objects. Each is named after the upload offset it
    reaches, so a new one never overwrites the one the recorded state still points at (a
    crash between the PUT and the database save would otherwise corrupt the upload)."""
    return f"{prefix}{storage_key}.part"


# --- the store ---------------------------------------------------------------------------


@dataclass
class _State(PartState):
    completed: bool = False

    @classmethod
    def load(cls, raw: dict[str, Any]) -> _State:
        if "upload_id" not in raw:
            raise RuntimeError("this upload has no S3 multipart upload: was create() called?")
        return cls(
            upload_id=raw["upload_id"], part_size=raw["part_size"],
            parts=copy.deepcopy(raw.get("parts", [])), pending=raw.get("pending", 0),
            pending_key=raw.get("pending_key"), completed=raw.get("completed", False),
        )

    def dump(self) -> dict[str, Any]:
        return {
            "upload_id": self.upload_id, "part_size": self.part_size,
            "parts": copy.deepcopy(self.parts), "pending": self.pending,
            "pending_key": self.pending_key, "completed": self.completed,
        }


async def _thread(func: Callable[..., T], *args: Any) -> T:
    return await anyio.to_thread.run_sync(lambda: func(*args))


class _Progress:
    """Records a checkpoint whenever the parts S3 has confirmed, in order, cover ``every``
    more bytes of the chunk, from a task of its own: parts are confirmed while the stream
    goes on, or while it stalls. Only confirmed parts count; what the writer still holds
    or is sending does not."""

    def __init__(
        self, writer: PartWriter, state: _State, info: UploadInfo, start: int, checkpoints: Checkpoints | None
    ) -> None:
        self.writer, self.state, self.info, self.start = writer, state, info, start
        self.checkpoints = checkpoints
        self.recorded = 0
        self.task = None if checkpoints is None else asyncio.ensure_future(self._run(checkpoints))

    async def _run(self, checkpoints: Checkpoints) -> None:
        while True:
            await self.writer.committed.wait()
            self.writer.committed.clear()
            stored = self.state.total - self.start
            if stored - self.recorded >= checkpoints.every:
                self.recorded = stored
                self.info.store_state = self.state.dump()
                await checkpoints.record(stored)

    def check(self) -> None:
        """Raise what stopped the recording (the registry failing, say), as the chunk's error."""
        if self.task is not None and self.task.done() and not self.task.cancelled():
            self.task.result()

    async def stop(self) -> None:
        if self.task is None:
            return
        self.task.cancel()
        # Shielded: a checkpoint being saved finishes before the handler saves its own.
        with anyio.CancelScope(shield=True):
            await asyncio.wait([self.task])
        if not self.task.cancelled():
            self.task.exception()  # retrieved (check() raised it, or an error is on its way)


class S3Store:
    """Implements :class:`transfer.store.Store` plus termination, concatenation and
    deferred length."""

    def __init__(
        self,
        api: S3Api,
        *,
        tmp_dir: Path,
        part_size: int = 16 * MiB,
        max_size: int = MAX_OBJECT_SIZE,
        pending_prefix: str = "",
        in_flight: int = IN_FLIGHT,
    ) -> None:
        """``max_size`` sizes the parts of deferred-length uploads. ``pending_prefix`` puts
        pending objects under their own prefix, for a lifecycle rule that expires their old
        versions (Object Lock buckets are versioned, so every overwrite keeps one).
        ``in_flight``: parts of one chunk uploading at once (each spooled on local disk)."""
        self.api = api
        self.tmp_dir = tmp_dir
        self.part_size = max(part_size, MIN_PART_SIZE)
        self.max_size = max_size
        self.pending_prefix = pending_prefix
        self.in_flight = in_flight
        tmp_dir.mkdir(parents=True, exist_ok=True)

    def _writer(self, key: str, state: _State) -> PartWriter:
        return PartWriter(self.api, key, state, self.tmp_dir, self.in_flight)

    @classmethod
    def from_client(cls, client: Any, bucket: str, **options: Any) -> S3Store:
        return cls(BotoS3(client, bucket), **options)

    def _pending_key(self, info: UploadInfo) -> str:
        return pending_key(info.storage_key, self.pending_prefix)

    async def create(self, info: UploadInfo) -> None:
        try:
            upload_id = await _thread(self.api.create_multipart_upload, info.storage_key)
        except S3Unavailable as exc:
            raise StorageUnavailable() from exc
        part_size = choose_part_size(self.part_size, info.size, self.max_size)
        info.store_state = _State(upload_id=upload_id, part_size=part_size).dump()

    def declare_length(self, info: UploadInfo, size: int) -> None:
        # Smaller parts now that the real size is known (parts of any size may follow
        # larger ones), as long as the rest of the upload still fits in the parts left.
        state = _State.load(info.store_state)
        floor = smallest_part(size, self.max_size, state.in_parts, len(state.parts))
        state.part_size = max(choose_part_size(self.part_size, size, self.max_size), floor)
        info.store_state = state.dump()

    async def write_chunk(
        self, info: UploadInfo, source: AsyncIterator[bytes], checkpoints: Checkpoints | None = None
    ) -> int:
        entry = _State.load(info.store_state)
        start = info.offset
        if entry.total != start:
            raise RuntimeError(
                f"upload {info.id}: store_state covers {entry.total} bytes but offset is {start}"
            )
        limit = (self.max_size if info.size is None else info.size) - start
        state = copy.deepcopy(entry)
        writer = self._writer(info.storage_key, state)
        progress = _Progress(writer, state, info, start, checkpoints)
        received = 0
        try:
            try:
                async for piece in source:
                    if not piece:
                        continue
                    if received + len(piece) > limit:
                        raise TooLarge()
                    if received == 0 and state.pending:
                        await self._refill(writer, info, state.pending)
                    received += len(piece)
                    await writer.feed(piece)
                    progress.check()
                if received:
                    await self._end_chunk(writer, info, start + received)
                progress.check()
            except (S3Unavailable, OSError) as exc:
                if isinstance(exc, OSError) and not disk_full(exc):
                    raise
                # No checkpoint may be saving ``info`` while it changes here.
                await progress.stop()
                # Either state is backed by what S3 holds (the pending object is only
                # replaced as the very last step); keep the one that covers more.
                committed = state if state.total >= entry.total else entry
                info.store_state = committed.dump()
                # S3 down, or the local spool of the part being gathered out of room.
                failure = StorageUnavailable if isinstance(exc, S3Unavailable) else InsufficientStorage
                raise failure(written=committed.total - start) from exc
        finally:
            await progress.stop()  # before the last parts are waited for: nothing recorded past an error
            await writer.close()
        info.store_state = state.dump()
        return state.total - start

    async def _end_chunk(self, writer: PartWriter, info: UploadInfo, end: int) -> None:
        """What the chunk left over becomes a part of its own when it is the end of the
        upload or large enough to be one; only a shorter tail is parked in a new pending
        object, for the next chunk to take back."""
        state = writer.state
        sent = end - writer.held  # bytes in parts confirmed or on their way
        floor = smallest_part(info.size, self.max_size, sent, writer.next_number - 1)
        if end == info.size or writer.held >= floor:
            await writer.send_held()
            await writer.drain()
            state.pending, state.pending_key = 0, None
            return
        await writer.drain()
        spool, size = await writer.take_held()
        key = None
        if spool is not None:
            try:
                key = f"{self._pending_key(info)}.{end}"
                await _thread(self.api.put_object, key, spool, size)
            finally:
                spool.close()
        state.pending, state.pending_key = size, key

    async def _refill(self, writer: PartWriter, info: UploadInfo, length: int) -> None:
        """Put the pending object's first ``length`` bytes back in front of the stream."""
        key = info.store_state.get("pending_key")
        if not key:
            raise RuntimeError(f"upload {info.id}: {length} bytes pending but no pending object recorded")
        await self._copy_object(writer, key, length)

    async def _copy_object(self, writer: PartWriter, key: str, length: int | None) -> int:
        body = await _thread(self.api.get_object, key, length)
        copied = 0
        try:
            while piece := await _thread(body.read, COALESCE):
                copied += len(piece)
                await writer.feed(piece)
        finally:
            body.close()
        if length is not None and copied != length:
            raise S3Unavailable(f"{key}: expected {length} bytes, S3 gave {copied}")
        return copied

    async def finish(self, info: UploadInfo) -> None:
        if info.size is None or info.offset != info.size:
            raise RuntimeError(f"upload {info.id} is not complete: {info.offset} of {info.size}")
        state = _State.load(info.store_state)
        try:
            if not state.completed:
                if state.pending:
                    # Only when a deferred length was declared equal to the offset.
                    await self._flush_pending(info, state)
                await self._complete(info.storage_key, state, info.size)
                info.store_state = state.dump()
            await self._delete_pending(info)
        except S3Unavailable as exc:
            raise StorageUnavailable() from exc

    async def _flush_pending(self, info: UploadInfo, state: _State) -> None:
        writer = self._writer(info.storage_key, state)
        try:
            await self._refill(writer, info, state.pending)
            await writer.send_held()
            await writer.drain()
        finally:
            await writer.close()

    async def _complete(self, key: str, state: _State, size: int) -> None:
        try:
            if state.parts:
                await _thread(self.api.complete_multipart_upload, key, state.upload_id, state.parts)
            else:
                # S3 cannot complete a multipart upload without parts.
                await _thread(self.api.abort_multipart_upload, key, state.upload_id)
                await _thread(self.api.put_object, key, b"", 0)
        except NoSuchUpload:
            # Completed by an earlier call whose answer was lost?
            stored = await _thread(self.api.head_object, key)
            if stored != size:
                raise S3Unavailable(
                    f"{key}: the multipart upload is gone and the object holds {stored} of {size} bytes"
                ) from None
        state.completed = True

    async def terminate(self, info: UploadInfo) -> None:
        try:
            if "upload_id" in info.store_state and not info.store_state.get("completed"):
                try:
                    await _thread(self.api.abort_multipart_upload, info.storage_key,
                                  info.store_state["upload_id"])
                except NoSuchUpload:
                    pass
            await self._delete_pending(info)
            if info.store_state.get("completed"):
                # A finished partial upload (or a final upload that was never recorded) has
                # an object. An original under retention cannot go: S3 itself refuses.
                await _thread(self.api.delete_versions, info.storage_key)
        except S3Unavailable as exc:
            raise StorageUnavailable() from exc

    abort = terminate

    async def concatenate(self, final: UploadInfo, partials: Sequence[UploadInfo]) -> None:
        """Streams each finished partial through the part writer into ``final``'s key.

        UploadPartCopy would let S3 copy server-side instead, but only when every partial
        but the last is at least 5 MiB; this path works for any sizes."""
        total_size = sum(p.size or 0 for p in partials)
        if final.store_state.get("completed"):
            return
        if "upload_id" not in final.store_state:
            await self.create(final)
        state = _State.load(final.store_state)
        state.part_size = choose_part_size(self.part_size, total_size, self.max_size)
        state.parts, state.pending = [], 0
        writer = self._writer(final.storage_key, state)
        try:
            for partial in partials:
                await self._copy_object(writer, partial.storage_key, None)
            await writer.send_held()
            await writer.drain()
            await self._complete(final.storage_key, state, total_size)
        except S3Unavailable as exc:
            # Start from scratch next time rather than track a half-copied concatenation.
            try:
                await _thread(self.api.abort_multipart_upload, final.storage_key, state.upload_id)
            except (S3Unavailable, NoSuchUpload):
                pass
            final.store_state = {}
            raise StorageUnavailable() from exc
        finally:
            await writer.close()
        final.store_state = state.dump()
        final.offset = total_size

    async def stale_uploads(self, prefix: str = "") -> list[StaleUpload]:
        """Multipart uploads still open under ``prefix``, for a cleanup job to compare with
        the registry and abort the ones nobody knows."""
        try:
            return await _thread(self.api.list_multipart_uploads, prefix)
        except S3Unavailable as exc:
            raise StorageUnavailable() from exc

    async def abort_stale(self, upload: StaleUpload) -> None:
        try:
            await _thread(self.api.abort_multipart_upload, upload.key, upload.upload_id)
        except NoSuchUpload:
            pass
        except S3Unavailable as exc:
            raise StorageUnavailable() from exc

    async def _delete_pending(self, info: UploadInfo) -> None:
        # Every generation, including any written by an attempt that died before its state
        # was recorded. Listed first: in a versioned (Object Lock) bucket a DELETE of a
        # missing key would still leave a delete marker behind.
        for key in await _thread(self.api.list_keys, self._pending_key(info) + "."):
            await _thread(self.api.delete_object, key)
