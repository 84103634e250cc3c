"""The contract between the tus handler and a storage backend.

A store can create an upload, write a chunk at an offset and finish it. Everything else
is an optional capability, found once when the server is made
(:class:`transfer.capabilities.Capabilities`) and advertised in ``Tus-Extension`` only
when the configured store has it.

Upload state is not kept by the store but by a :class:`Registry` supplied by the
application (a database in this project), so any server process can take any chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from transfer.info import UploadInfo


@dataclass(frozen=True)
class Checkpoints:
    """How a long chunk keeps its progress while it streams, so that a crash in the middle
    of a PATCH of gigabytes loses at most ``every`` bytes (tus-js-client sends a whole file
    in one PATCH by default).

    After about every ``every`` bytes the store makes what it has durable (an fdatasync, a
    completed S3 part), updates ``info.store_state`` to match, then awaits ``record(n)``:
    the first ``n`` bytes of the source are durably stored. The handler saves the offset
    then; from that moment those bytes count whatever happens next in the chunk."""

    every: int
    record: Callable[[int], Awaitable[None]]


class Store(Protocol):
    async def create(self, info: UploadInfo) -> None:
        """Prepare the backend for a new upload; may fill ``info.store_state``."""

    async def write_chunk(
        self, info: UploadInfo, source: AsyncIterator[bytes], checkpoints: Checkpoints | None = None
    ) -> int:
        """Append ``source`` at ``info.offset`` and return how many bytes are now stored.

        The store must keep every byte it reports, even when ``source`` ends early (the
        client went away), and must report nothing it has not stored durably. It may
        update ``info.store_state``; the handler persists it with the new offset.

        Without ``checkpoints`` (a chunk that must verify whole first) nothing of the chunk
        counts when ``source`` raises. With them, what was recorded at the last checkpoint
        is kept, and nothing after it. Counts are always from the start of ``source``:
        ``info.offset`` as it was when the call began.
        """

    async def finish(self, info: UploadInfo) -> None:
        """Make the complete upload available at ``info.storage_key``. Idempotent."""


@runtime_checkable
class Terminater(Protocol):
    async def terminate(self, info: UploadInfo) -> None:
        """Discard everything stored for an upload the application no longer keeps: an
        unfinished upload, or a finished partial upload (used up by a final upload, or
        never used). Idempotent. It must never remove a sealed (write-once) object, and the
        handler never asks it to remove a finished upload that is not a partial one."""


@runtime_checkable
class Concater(Protocol):
    async def concatenate(self, final: UploadInfo, partials: Sequence[UploadInfo]) -> None:
        """Write the finished partial uploads, in order, as ``final``'s content."""


@runtime_checkable
class LengthDeferrer(Protocol):
    def declare_length(self, info: UploadInfo, size: int) -> None:
        """The client has declared the length of an upload created with a deferred length."""


class Registry(Protocol):
    """Persists upload state. Methods are blocking; the handler calls them in a thread."""

    def load(self, upload_id: str) -> UploadInfo | None: ...

    def load_many(self, upload_ids: Sequence[str]) -> dict[str, UploadInfo]:
        """The uploads among ``upload_ids`` that exist, by id, in one round trip (a final
        upload may name a thousand partial uploads)."""

    def add(self, info: UploadInfo) -> None:
        """Record a new upload. For a final upload, in the same transaction, mark its
        partial uploads consumed, and raise :class:`~transfer.errors.BadRequest` (recording
        nothing) if one was consumed, terminated or expired meanwhile: each partial upload
        ends up in at most one final upload."""

    def save(self, info: UploadInfo) -> None: ...

    def complete(self, info: UploadInfo) -> None:
        """Record that ``info`` is finished (with whatever the application does with it)."""

    def remove(self, info: UploadInfo) -> None:
        """Forget a terminated or expired upload, or a finished partial upload that was
        consumed or expired (the row may be kept, marked terminated)."""

    def expired(self, now: datetime) -> list[UploadInfo]:
        """Candidates for the cleanup: unfinished uploads whose expiry has passed, and
        finished partial uploads that were consumed or whose expiry has passed."""
