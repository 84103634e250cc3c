"""FileStore on a real folder: chunks that count only when whole, what finishing and
termination do, and what they never do (replace or remove a stored original)."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from transfer.filestore import FileStore
from transfer.info import UploadInfo
from transfer.store import Checkpoints

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "vault", tmp_path / "vault" / ".uploads")


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def finished(store: FileStore, upload_id: str, key: str, data: bytes) -> UploadInfo:
    info = UploadInfo(id=upload_id, owner="officer", storage_key=key, size=len(data))
    await store.create(info)
    info.offset = await store.write_chunk(info, body(data))
    await store.finish(info)
    return info


async def test_terminate_removes_a_finished_partial_upload(store: FileStore) -> None:
    info = await finished(store, "p1", "uploads/partials/p1", b"piece")
    assert store.final_path(info).read_bytes() == b"piece"
    await store.terminate(info)
    assert not store.final_path(info).exists()
    assert not (store.uploads_dir / "p1.bin").exists()
    await store.terminate(info)  # again: nothing to do, no error


async def test_terminate_never_removes_a_sealed_file(store: FileStore) -> None:
    info = await finished(store, "o1", "originals/o1", b"evidence")
    os.chmod(store.final_path(info), 0o400)  # sealed, as the vault does
    with pytest.raises(PermissionError, match="sealed"):
        await store.terminate(info)
    assert store.final_path(info).read_bytes() == b"evidence"


async def test_terminate_of_an_unfinished_upload_removes_its_working_file(store: FileStore) -> None:
    info = UploadInfo(id="u1", owner="officer", storage_key="originals/u1", size=10)
    await store.create(info)
    info.offset = await store.write_chunk(info, body(b"abc"))
    await store.terminate(info)
    assert not (store.uploads_dir / "u1.bin").exists()
    assert not store.final_path(info).exists()


async def test_concatenation_is_private_until_sealed(store: FileStore) -> None:
    umask = os.umask(0o022)  # a permissive umask: the file is 0600 all the same
    try:
        parts = [await finished(store, f"p{n}", f"uploads/partials/p{n}", bytes([65 + n]) * 3) for n in range(3)]
        final = UploadInfo(id="f1", owner="officer", storage_key="originals/f1", size=9)
        await store.concatenate(final, parts)
        working = store.uploads_dir / "f1.bin"
        assert working.read_bytes() == b"AAABBBCCC"
        assert stat.S_IMODE(working.stat().st_mode) == 0o600
    finally:
        os.umask(umask)


async def failing(data: bytes, error: BaseException) -> AsyncIterator[bytes]:
    yield data
    raise error


async def test_a_refused_chunk_leaves_nothing_of_itself(store: FileStore) -> None:
    info = UploadInfo(id="u2", owner="officer", storage_key="originals/u2", size=10)
    await store.create(info)
    info.offset = await store.write_chunk(info, body(b"abc"))
    with pytest.raises(ValueError, match="checksum"):
        await store.write_chunk(info, failing(b"defg", ValueError("checksum mismatch")))
    assert (store.uploads_dir / "u2.bin").read_bytes() == b"abc"


async def test_bytes_past_the_recorded_offset_are_dropped_before_the_next_chunk(store: FileStore) -> None:
    """A process killed mid-chunk may have written bytes it never acknowledged."""
    info = UploadInfo(id="u3", owner="officer", storage_key="originals/u3", size=6)
    await store.create(info)
    (store.uploads_dir / "u3.bin").write_bytes(b"abXXXXXXXX")
    info.offset = 2
    assert await store.write_chunk(info, body(b"cdef")) == 4
    assert (store.uploads_dir / "u3.bin").read_bytes() == b"abcdef"


async def test_finish_is_idempotent_and_never_replaces_a_stored_file(store: FileStore) -> None:
    info = await finished(store, "u4", "originals/u4", b"first")
    await store.finish(info)  # again (a lost answer): nothing to do
    assert store.final_path(info).read_bytes() == b"first"
    other = UploadInfo(id="u5", owner="officer", storage_key="originals/u4", size=5)
    await store.create(other)
    other.offset = await store.write_chunk(other, body(b"other"))
    with pytest.raises(FileExistsError, match="refusing to replace"):
        await store.finish(other)
    assert store.final_path(info).read_bytes() == b"first"


def test_a_storage_key_cannot_leave_the_store(store: FileStore) -> None:
    with pytest.raises(ValueError, match="escapes the store root"):
        store.final_path(UploadInfo(id="u6", owner="officer", storage_key="../outside", size=1))


class Recorder:
    """The handler's side of checkpoints: what was recorded, and the file as it was then."""

    def __init__(self, store: FileStore, upload_id: str, every: int) -> None:
        self.path = store.uploads_dir / f"{upload_id}.bin"
        self.recorded: list[tuple[int, int]] = []  # (bytes recorded, file size at that moment)
        self.checkpoints = Checkpoints(every, self.record)

    async def record(self, stored: int) -> None:
        self.recorded.append((stored, self.path.stat().st_size))


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_long_chunk_records_its_progress_at_each_checkpoint(store: FileStore) -> None:
    info = UploadInfo(id="c1", owner="officer", storage_key="originals/c1", size=100)
    await store.create(info)
    info.offset = 10
    (store.uploads_dir / "c1.bin").write_bytes(b"k" * 10)
    recorder = Recorder(store, "c1", every=30)
    assert await store.write_chunk(info, pieces(bytes(90), 20), recorder.checkpoints) == 90
    # Counted from the start of the chunk, each after the bytes were in the file.
    assert recorder.recorded == [(40, 50), (80, 90)]


async def test_a_chunk_refused_after_a_checkpoint_keeps_the_checkpoint_and_no_more(store: FileStore) -> None:
    info = UploadInfo(id="c2", owner="officer", storage_key="originals/c2", size=100)
    await store.create(info)
    recorder = Recorder(store, "c2", every=25)

    async def refused() -> AsyncIterator[bytes]:
        async for piece in pieces(b"0123456789" * 4, 10):
            yield piece
        raise ValueError("too long")

    with pytest.raises(ValueError, match="too long"):
        await store.write_chunk(info, refused(), recorder.checkpoints)
    assert [stored for stored, _ in recorder.recorded] == [30]
    assert (store.uploads_dir / "c2.bin").read_bytes() == b"0123456789" * 3
