"""A store on the local file system (the embedded default).

Unfinished uploads are files in ``uploads_dir``; finishing links the file to its final
key under ``root`` (no copy) and removes the working name. An existing final file is
never replaced.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import anyio

from transfer.errors import InsufficientStorage, disk_full
from transfer.info import UploadInfo
from transfer.lane import Lane
from transfer.store import Checkpoints

COPY_BLOCK = 8 * 1024 * 1024
# Received blocks waiting for the disk, per upload: enough to ride out a slow write without
# stopping the socket, small enough that many uploads at once stay light.
QUEUE_BYTES = 2 * 1024 * 1024


class FileStore:
    def __init__(self, root: Path, uploads_dir: Path) -> None:
        self.root = root
        self.uploads_dir = uploads_dir
        uploads_dir.mkdir(parents=True, exist_ok=True)

    def _working(self, info: UploadInfo) -> Path:
        return self.uploads_dir / f"{info.id}.bin"

    def final_path(self, info: UploadInfo) -> Path:
        path = (self.root / info.storage_key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key escapes the store root: {info.storage_key!r}")
        return path

    async def create(self, info: UploadInfo) -> None:
        def create() -> None:
            with _full_disk_refused():
                fd = os.open(self._working(info), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)

        await anyio.to_thread.run_sync(create)

    async def write_chunk(
        self, info: UploadInfo, source: AsyncIterator[bytes], checkpoints: Checkpoints | None = None
    ) -> int:
        start = info.offset
        fd = await anyio.to_thread.run_sync(self._open_at, info)
        # The writes run in a lane of their own while the next blocks arrive; what the lane
        # reports done is what reached the file. kept: of that, what is durable and counts.
        lane = Lane(QUEUE_BYTES, "filestore")
        queued = kept = 0
        try:
            try:
                async for block in source:
                    await lane.submit(_write_all, fd, block, size=len(block))
                    queued += len(block)
                    if checkpoints is not None and queued - kept >= checkpoints.every:
                        await lane.submit(os.fdatasync, fd)
                        await lane.drain()
                        # Counted as kept before the offset is recorded: should recording
                        # fail after all, the bytes past the registry's offset are dropped
                        # when the next chunk opens the file.
                        kept = lane.done
                        await checkpoints.record(kept)
                # What reached the file is made durable before the caller records the offset.
                await lane.submit(os.fdatasync, fd)
                await lane.drain()
            except OSError as error:
                if not disk_full(error):
                    raise
                if checkpoints is not None:
                    kept = await anyio.to_thread.run_sync(_durable, fd, lane.done, kept)
                raise InsufficientStorage(written=kept) from error
        except BaseException:
            # A refused chunk (failed checksum, too long, a full disk) counts for nothing
            # past its last durable point: drop those bytes, which also frees their space.
            with anyio.CancelScope(shield=True):
                await lane.settle()  # no write may land after the truncation
                await anyio.to_thread.run_sync(os.ftruncate, fd, start + kept)
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await lane.settle()
                lane.close()
                await anyio.to_thread.run_sync(os.close, fd)
        return lane.done

    def _open_at(self, info: UploadInfo) -> int:
        fd = os.open(self._working(info), os.O_WRONLY)
        # A process killed mid-chunk may have left bytes past the recorded offset; they
        # were never acknowledged, so drop them before appending.
        os.ftruncate(fd, info.offset)
        os.lseek(fd, info.offset, os.SEEK_SET)
        return fd

    async def finish(self, info: UploadInfo) -> None:
        with _full_disk_refused():  # a new folder or directory entry may not fit
            await anyio.to_thread.run_sync(self._finish, info)

    def _finish(self, info: UploadInfo) -> None:
        working, final = self._working(info), self.final_path(info)
        if final.exists():
            if working.exists() and os.path.samefile(working, final):
                working.unlink()  # crashed between link and unlink last time
            elif working.exists():
                raise FileExistsError(f"refusing to replace the stored file at {info.storage_key}")
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        os.link(working, final)  # fails rather than replace an existing file
        working.unlink()
        _fsync_dir(final.parent)

    async def terminate(self, info: UploadInfo) -> None:
        await anyio.to_thread.run_sync(self._terminate, info)

    def _terminate(self, info: UploadInfo) -> None:
        self._working(info).unlink(missing_ok=True)
        if not info.storage_key:
            return
        # A finished partial upload also has its final file. A sealed file is evidence:
        # refuse, whatever the caller thought it was removing.
        final = self.final_path(info)
        try:
            mode = final.stat().st_mode
        except FileNotFoundError:
            return
        if not mode & stat.S_IWUSR:
            raise PermissionError(f"refusing to remove the sealed file at {info.storage_key}")
        final.unlink()
        _fsync_dir(final.parent)

    async def concatenate(self, final: UploadInfo, partials: Sequence[UploadInfo]) -> None:
        def concatenate() -> None:
            # Private to the service user, like every working file, until it is sealed.
            fd = os.open(self._working(final), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "wb") as out:
                for partial in partials:
                    with open(self.final_path(partial), "rb") as src:
                        while block := src.read(COPY_BLOCK):
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())

        with _full_disk_refused():
            await anyio.to_thread.run_sync(concatenate)

    def declare_length(self, info: UploadInfo, size: int) -> None:
        """Files grow as written; nothing to prepare."""


def _write_all(fd: int, block: bytes) -> None:
    view = memoryview(block)
    while view:
        view = view[os.write(fd, view) :]


def _durable(fd: int, written: int, kept: int) -> int:
    """After a full disk: how much can still be made durable (the whole blocks written so
    far, unless even the sync fails, as it may with delayed allocation)."""
    try:
        os.fdatasync(fd)
    except OSError:
        return kept
    return written


@contextlib.contextmanager
def _full_disk_refused() -> Iterator[None]:
    try:
        yield
    except OSError as error:
        if disk_full(error):
            raise InsufficientStorage() from error
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
