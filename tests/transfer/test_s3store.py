"""S3Store against a real S3 endpoint over HTTP (Ceph's gateway unless
EVIDENCE_TEST_S3_ENDPOINT is set); the endpoint is cut with a TCP proxy to test failures."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import anyio
import pytest

from tests.support.proxy import Proxy
from tests.support.s3 import S3Bucket, new_bucket
from transfer.body import verified
from transfer.errors import ChecksumMismatch, StorageUnavailable, TooLarge
from transfer.headers import Checksum
from transfer.info import UploadInfo
from transfer.s3api import BotoS3, S3Unavailable, UploadedPart
from transfer.s3parts import smallest_part
from transfer.s3store import MIN_PART_SIZE, S3Store, choose_part_size
from transfer.store import Checkpoints

pytestmark = [pytest.mark.anyio, pytest.mark.s3]

KiB, MiB = 1024, 1024 * 1024
BLOCK = 64 * KiB  # the size pieces arrive in from a web server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def bucket() -> S3Bucket:
    return new_bucket()


@pytest.fixture
def client(bucket: S3Bucket) -> Iterator[Any]:
    made = bucket.client()
    yield made
    made.close()


@pytest.fixture
def make_store(bucket: S3Bucket, tmp_path: Path) -> Iterator[Callable[..., S3Store]]:
    """A new S3Store each call, as if each chunk reached another server process (sharing
    one client per endpoint only because making a boto3 client takes a while)."""
    clients: dict[str, Any] = {}

    def make(endpoint: str | None = None, **options: Any) -> S3Store:
        config = options.pop("client_config", {})
        name = json.dumps([endpoint, config], sort_keys=True)
        if name not in clients:
            clients[name] = bucket.client(endpoint, **config)
        options.setdefault("part_size", MIN_PART_SIZE)
        return S3Store.from_client(clients[name], bucket.bucket, tmp_dir=tmp_path / "spool", **options)

    yield make
    for made in clients.values():
        made.close()


class Data:
    """Reproducible random bytes of any length, produced in blocks, never all in memory."""

    def __init__(self, size: int, seed: int = 7) -> None:
        self.size = size
        self.seed = seed

    def _block(self, index: int) -> bytes:
        return random.Random(self.seed * 1_000_003 + index).randbytes(BLOCK)

    def pieces(self, start: int, end: int) -> Iterator[bytes]:
        position = start
        while position < end:
            index, skip = divmod(position, BLOCK)
            piece = self._block(index)[skip : skip + end - position]
            position += len(piece)
            yield piece

    def sha256(self, start: int = 0, end: int | None = None) -> str:
        digest = hashlib.sha256()
        for piece in self.pieces(start, self.size if end is None else end):
            digest.update(piece)
        return digest.hexdigest()


async def stream(pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def new_info(size: int | None, key: str = "originals/case-1/item.bin") -> UploadInfo:
    return UploadInfo(id="u1", owner="officer", storage_key=key, size=size)


def reload(info: UploadInfo) -> UploadInfo:
    """What the next request sees after the registry stored ``info`` as JSON."""
    info.store_state = json.loads(json.dumps(info.store_state))
    return info


async def write(store: S3Store, info: UploadInfo, data: Data, length: int) -> int:
    written = await store.write_chunk(info, stream(data.pieces(info.offset, info.offset + length)))
    info.offset += written
    reload(info)
    return written


def stored_sha256(client: Any, bucket: str, key: str) -> tuple[int, str]:
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    digest, size = hashlib.sha256(), 0
    try:
        for piece in body.iter_chunks(MiB):
            digest.update(piece)
            size += len(piece)
    finally:
        body.close()
    return size, digest.hexdigest()


def exists(client: Any, bucket: str, key: str) -> bool:
    return bool(client.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"))


# --- part sizes -------------------------------------------------------------------------


def test_part_size_is_at_least_5_mib_and_fits_in_10000_parts() -> None:
    assert choose_part_size(16 * MiB, 10, 5 * 1024**4) == 16 * MiB
    assert choose_part_size(MiB, 10, 5 * 1024**4) == 5 * MiB
    assert choose_part_size(16 * MiB, 400 * 1024**3, 5 * 1024**4) == -(-400 * 1024**3 // 10_000)
    assert choose_part_size(16 * MiB, None, 5 * 1024**4) == -(-5 * 1024**4 // 10_000)


# --- chunked uploads --------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [5 * MiB, 7_777_777])
async def test_chunks_make_the_exact_object(
    chunk: int, make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket
) -> None:
    data = Data(40 * MiB + 12_345)
    info = new_info(data.size)
    await make_store().create(info)
    while not info.is_complete:
        assert await write(make_store(), info, data, min(chunk, data.size - info.offset)) > 0
    await make_store().finish(info)
    assert stored_sha256(client, bucket.bucket, info.storage_key) == (data.size, data.sha256())
    assert not exists(client, bucket.bucket, info.storage_key + ".part")


async def test_tiny_chunks_wait_in_a_pending_object(
    make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket
) -> None:
    data = Data(6 * MiB + 30 * KiB)
    info = new_info(data.size)
    await make_store().create(info)
    for _ in range(20):
        assert await write(make_store(), info, data, KiB) == KiB
    assert info.store_state["pending"] == 20 * KiB and info.store_state["parts"] == []
    # Crosses a part boundary: the pending bytes lead the first part.
    assert await write(make_store(), info, data, 6 * MiB) == 6 * MiB
    assert [part["size"] for part in info.store_state["parts"]] == [5 * MiB]
    assert info.store_state["pending"] == info.offset - 5 * MiB
    while not info.is_complete:
        await write(make_store(), info, data, min(KiB, data.size - info.offset))
    await make_store().finish(info)
    assert stored_sha256(client, bucket.bucket, info.storage_key) == (data.size, data.sha256())


async def test_one_big_write_streams_in_flat_memory(
    make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket
) -> None:
    data = Data(40 * MiB + 1)
    info = new_info(data.size)
    store = make_store(part_size=16 * MiB)
    await store.create(info)
    tracemalloc.start()
    try:
        written = await store.write_chunk(info, stream(data.pieces(0, data.size)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == data.size
    # Parts are spooled on disk: the peak is a few pieces, far from a 16 MiB part.
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB"
    info.offset += written
    assert [p["size"] for p in info.store_state["parts"]] == [16 * MiB, 16 * MiB, 8 * MiB + 1]
    await store.finish(info)
    assert stored_sha256(client, bucket.bucket, info.storage_key) == (data.size, data.sha256())


async def test_a_source_that_ends_early_keeps_what_it_reported(
    make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket
) -> None:
    data = Data(20 * MiB)
    info = new_info(data.size)
    await make_store().create(info)
    # The client meant to send everything but went away after 7 MiB and a bit.
    assert await write(make_store(), info, data, 7 * MiB + 123) == 7 * MiB + 123
    assert info.store_state["pending"] == 2 * MiB + 123
    await write(make_store(), info, data, data.size - info.offset)
    await make_store().finish(info)
    assert stored_sha256(client, bucket.bucket, info.storage_key) == (data.size, data.sha256())


async def test_a_chunk_past_the_length_is_refused_and_nothing_counts(
    make_store: Callable[..., S3Store],
) -> None:
    data = Data(6 * MiB)
    info = new_info(data.size - 1)
    store = make_store()
    await store.create(info)
    before = dict(info.store_state)
    with pytest.raises(TooLarge):
        await store.write_chunk(info, stream(data.pieces(0, data.size)))
    assert info.store_state == before


async def test_a_long_chunk_records_each_checkpoint_once_its_parts_are_in_s3(
    make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket
) -> None:
    """A PATCH without a checksum keeps its progress as it goes: after a crash the next
    chunk starts from the last recorded state, re-sending the parts uploaded after it."""
    data = Data(33 * MiB + 5)
    info = new_info(data.size)
    await make_store().create(info)
    await write(make_store(), info, data, 3 * MiB)  # pending: 3 MiB, parked in S3
    recorded: list[dict[str, Any]] = []

    async def record(stored: int) -> None:
        recorded.append({"offset": 3 * MiB + stored, "state": json.loads(json.dumps(info.store_state))})

    class Crash(Exception):
        pass

    async def crashing() -> AsyncIterator[bytes]:
        for piece in data.pieces(3 * MiB, 28 * MiB):
            await anyio.sleep(0.002)  # a network's pace (~30 MB/s), so parts finish meanwhile
            yield piece
        raise Crash()

    with pytest.raises(Crash):
        await make_store().write_chunk(info, crashing(), Checkpoints(8 * MiB, record))
    # Parts of 5 MiB end at 5, 10, 15... MiB. Several are sent at once, so a checkpoint
    # comes once at least 8 MiB more of the chunk are in parts S3 has confirmed, in order.
    offsets = [point["offset"] for point in recorded]
    assert offsets, "no checkpoint in 25 MiB"
    assert all(b - a >= 8 * MiB for a, b in zip([3 * MiB, *offsets], offsets, strict=False))
    in_s3 = s3_parts(client, bucket.bucket, info)
    for point in recorded:
        # Each recorded state covers its offset with parts S3 holds, and nothing pending.
        parts = point["state"]["parts"]
        assert point["state"]["pending"] == 0 and sum(p["size"] for p in parts) == point["offset"]
        assert all(in_s3.get(p["n"]) == p["size"] for p in parts)
    # The process dies; the next one starts from what was recorded last.
    last = recorded[-1]
    info.offset, info.store_state = last["offset"], last["state"]
    await write(make_store(), info, data, data.size - info.offset)
    await make_store().finish(info)
    assert stored_sha256(client, bucket.bucket, info.storage_key) == (data.size, data.sha256())


async def test_an_empty_upload_is_an_empty_object(
    make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket
) -> None:
    info = new_info(0)
    await make_store().create(info)
    stale = reload(UploadInfo(**{**info.__dict__, "store_state": dict(info.store_state)}))
    await make_store().finish(info)
    assert client.head_object(Bucket=bucket.bucket, Key=info.storage_key)["ContentLength"] == 0
    # The first answer was lost: the multipart upload is gone, the object is there.
    await make_store().finish(stale)
    await make_store().finish(info)


async def test_finish_is_idempotent(make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket) -> None:
    data = Data(5 * MiB + 10)
    info = new_info(data.size)
    await make_store().create(info)
    await write(make_store(), info, data, data.size)
    stale = reload(UploadInfo(**{**info.__dict__, "store_state": dict(info.store_state)}))
    await make_store().finish(info)
    await make_store().finish(info)
    await make_store().finish(stale)
    assert stored_sha256(client, bucket.bucket, info.storage_key) == (data.size, data.sha256())


# --- deferred length -------------------------------------------------------------------


async def test_deferred_length_sizes_parts_from_the_maximum_then_the_declared_length(
    make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket
) -> None:
    data = Data(12 * MiB + 5)
    info = new_info(None)
    await make_store(max_size=200 * 1024**3).create(info)
    assert info.store_state["part_size"] == -(-200 * 1024**3 // 10_000)
    await write(make_store(max_size=200 * 1024**3), info, data, MiB)
    make_store().declare_length(info, data.size)
    info.size = data.size
    assert info.store_state["part_size"] == 5 * MiB
    await write(make_store(), info, data, data.size - info.offset)
    await make_store().finish(info)
    assert stored_sha256(client, bucket.bucket, info.storage_key) == (data.size, data.sha256())


async def test_a_length_declared_at_the_offset_turns_the_pending_bytes_into_the_last_part(
    make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket
) -> None:
    data = Data(7 * MiB)
    info = new_info(None)
    await make_store().create(info)
    await write(make_store(), info, data, data.size)
    # Parts sized for the maximum length: everything waits in the pending object...
    assert info.store_state["pending"] == data.size
    # ...and is cut into 5 MiB parts once the length is known.
    make_store().declare_length(info, data.size)
    info.size = data.size
    await make_store().finish(info)
    assert stored_sha256(client, bucket.bucket, info.storage_key) == (data.size, data.sha256())
    assert not exists(client, bucket.bucket, info.storage_key + ".part")


# --- the endpoint going down ----------------------------------------------------------


async def cut_after(proxy: Proxy, cut_at: int, pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    sent = 0
    for piece in pieces:
        if sent >= cut_at and proxy.running:
            proxy.stop()
        yield piece
        sent += len(piece)
    if sent >= cut_at and proxy.running:
        proxy.stop()


@pytest.mark.parametrize(
    ("before", "chunk", "cut_at", "committed"),
    [
        # Two parts are sent while the chunk streams on, the third never gets through. The
        # first two count if S3 confirmed them before the cut (in order), and only then.
        (0, 14 * MiB, 12 * MiB, (0, 5 * MiB, 10 * MiB)),
        # The pending object cannot be fetched back: nothing new, the old state stays.
        (3 * KiB, 7 * MiB, 0, (3 * KiB,)),
        # A part is sent, then parking the rest fails: at most the part counts.
        (2 * MiB, 4 * MiB, 5 * MiB + 512 * KiB, (2 * MiB, 5 * MiB)),
        # Nothing reaches a part and parking fails: the old pending object still counts.
        (2 * MiB, MiB, MiB, (2 * MiB,)),
    ],
)
async def test_when_s3_goes_down_the_offset_covers_only_what_is_stored(
    before: int, chunk: int, cut_at: int, committed: tuple[int, ...],
    make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket,
) -> None:
    data = Data(30 * MiB)
    info = new_info(data.size)
    target = urlsplit(bucket.endpoint)
    with Proxy(target.hostname or "127.0.0.1", target.port or 80) as proxy:
        quick = {"retries": {"max_attempts": 2, "mode": "standard"}, "connect_timeout": 1, "read_timeout": 10}
        store = make_store(proxy.url, client_config=quick)
        await store.create(info)
        if before:
            await write(store, info, data, before)
        source = cut_after(proxy, cut_at - before, data.pieces(info.offset, info.offset + chunk))
        with pytest.raises(StorageUnavailable) as raised:
            await store.write_chunk(info, source)
        written = raised.value.written
        info.offset += written
        reload(info)
        assert info.offset in committed
        proxy.start()
        # The client resumes from the offset the server reports.
        store = make_store(proxy.url, client_config=quick)
        while not info.is_complete:
            await write(store, info, data, min(8 * MiB, data.size - info.offset))
        await store.finish(info)
    assert stored_sha256(client, bucket.bucket, info.storage_key) == (data.size, data.sha256())


# --- termination and concatenation -------------------------------------------------------


async def test_terminate_leaves_nothing_behind(
    make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket
) -> None:
    data = Data(20 * MiB)
    info = new_info(data.size)
    await make_store().create(info)
    await write(make_store(), info, data, 6 * MiB)
    assert exists(client, bucket.bucket, info.storage_key + ".part")
    store = make_store()
    await store.terminate(info)
    assert not exists(client, bucket.bucket, info.storage_key)
    assert client.list_multipart_uploads(Bucket=bucket.bucket).get("Uploads", []) == []
    await store.terminate(info)  # again: nothing to do, no error


def versions(client: Any, bucket: str, key: str) -> list[str]:
    listed = client.list_object_versions(Bucket=bucket, Prefix=key)
    return [v["VersionId"] for v in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])] if v["Key"] == key]


async def test_terminate_removes_a_finished_partial_upload_with_every_version(
    make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket
) -> None:
    """The cleanup's way to drop a partial upload a final upload used up (or nobody used):
    in an Object Lock bucket (versioned), a plain DELETE would only hide its bytes."""
    data = Data(6 * MiB + 11)
    info = new_info(data.size, key="uploads/partials/p1")
    neighbour = new_info(3, key="uploads/partials/p10")  # shares the prefix, must stay
    for upload, content in ((info, data), (neighbour, Data(3, seed=2))):
        await make_store().create(upload)
        await write(make_store(), upload, content, content.size)
        await make_store().finish(reload(upload))
    assert exists(client, bucket.bucket, info.storage_key)
    await make_store().terminate(reload(info))
    assert versions(client, bucket.bucket, info.storage_key) == []
    assert stored_sha256(client, bucket.bucket, neighbour.storage_key)[0] == 3
    await make_store().terminate(info)  # again: nothing to do, no error
    assert client.list_multipart_uploads(Bucket=bucket.bucket).get("Uploads", []) == []


async def test_concatenate_streams_the_partials_in_order(
    make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket
) -> None:
    datas = [Data(6 * MiB + 7, seed=1), Data(KiB, seed=2), Data(5 * MiB + 3, seed=3)]
    partials = []
    for number, data in enumerate(datas):
        info = new_info(data.size, key=f"partials/p{number}.bin")
        await make_store().create(info)
        await write(make_store(), info, data, data.size)
        await make_store().finish(info)
        partials.append(info)
    final = new_info(sum(d.size for d in datas), key="originals/case-1/joined.bin")
    await make_store().concatenate(final, partials)
    final.offset = final.size or 0
    await make_store().finish(reload(final))
    expected = hashlib.sha256()
    for data in datas:
        for piece in data.pieces(0, data.size):
            expected.update(piece)
    assert stored_sha256(client, bucket.bucket, final.storage_key) == (final.size, expected.hexdigest())


async def test_stale_multipart_uploads_can_be_listed_and_aborted(make_store: Callable[..., S3Store]) -> None:
    store = make_store()
    info = new_info(10 * MiB)
    await store.create(info)
    stale = await store.stale_uploads("originals/")
    assert [(s.key, s.upload_id) for s in stale] == [(info.storage_key, info.store_state["upload_id"])]
    await store.abort_stale(stale[0])
    assert await store.stale_uploads("originals/") == []


@pytest.mark.parametrize("delay", [0.05, 0.3])
async def test_a_cut_at_any_moment_loses_nothing_reported(
    delay: float, make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket
) -> None:
    """The endpoint goes away on a timer, most likely in the middle of a request."""
    data = Data(40 * MiB)
    info = new_info(data.size)
    target = urlsplit(bucket.endpoint)
    with Proxy(target.hostname or "127.0.0.1", target.port or 80) as proxy:
        quick = {"retries": {"max_attempts": 1, "mode": "standard"}, "connect_timeout": 1, "read_timeout": 5}
        store = make_store(proxy.url, client_config=quick)
        await store.create(info)
        timer = threading.Timer(delay, proxy.stop)
        timer.start()
        try:
            info.offset += await store.write_chunk(info, stream(data.pieces(0, data.size)))
        except StorageUnavailable as error:
            info.offset += error.written
        finally:
            timer.join()
        reload(info)
        proxy.start()
        while not info.is_complete:
            await write(store, info, data, min(16 * MiB, data.size - info.offset))
        await store.finish(info)
    assert stored_sha256(client, bucket.bucket, info.storage_key) == (data.size, data.sha256())


# --- parts of any size, several at once -------------------------------------------------


def test_smallest_part_keeps_the_rest_within_the_parts_left() -> None:
    assert smallest_part(100 * MiB, 5 * 1024**4, 0, 0) == 5 * MiB
    assert smallest_part(None, 5 * 1024**4, 0, 0) == -(-5 * 1024**4 // 10_000)
    assert smallest_part(200 * 1024**3, 5 * 1024**4, 0, 9_998) == -(-200 * 1024**3 // 2)
    assert smallest_part(200 * 1024**3, 5 * 1024**4, 10, 9_999) == 200 * 1024**3 - 10
    # A naive walk: parts always cut at the floor never need more than 10,000.
    size, stored, used = 123_456 * MiB + 7, 0, 0
    while size - stored > (floor := smallest_part(size, size, stored, used)):
        stored, used = stored + floor, used + 1
    assert used + 1 <= 10_000


def s3_parts(client: Any, bucket: str, info: UploadInfo) -> dict[int, int]:
    """The parts S3 holds for the upload: size by part number."""
    listed = client.list_parts(Bucket=bucket, Key=info.storage_key, UploadId=info.store_state["upload_id"])
    return {part["PartNumber"]: part["Size"] for part in listed.get("Parts", [])}


async def test_chunks_end_in_parts_of_their_own_size_and_only_a_short_tail_waits(
    make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket
) -> None:
    data = Data(40 * MiB + 99)
    info = new_info(data.size)
    await make_store(part_size=16 * MiB).create(info)
    for chunk, parts, pending in [
        (8 * MiB, [8 * MiB], 0),  # a whole chunk, shorter than part_size, is a part
        (6 * MiB + 5, [8 * MiB, 6 * MiB + 5], 0),
        (2 * MiB, [8 * MiB, 6 * MiB + 5], 2 * MiB),  # under 5 MiB: parked
        (20 * MiB, [8 * MiB, 6 * MiB + 5, 16 * MiB, 6 * MiB], 0),  # cut at part_size, then the rest
    ]:
        await write(make_store(part_size=16 * MiB), info, data, chunk)
        assert [part["size"] for part in info.store_state["parts"]] == parts
        assert info.store_state["pending"] == pending
        assert list(s3_parts(client, bucket.bucket, info).values()) == parts
    await write(make_store(part_size=16 * MiB), info, data, data.size - info.offset)
    await make_store().finish(info)
    assert stored_sha256(client, bucket.bucket, info.storage_key) == (data.size, data.sha256())
    assert not exists(client, bucket.bucket, info.storage_key + ".part")


class Watched(BotoS3):
    """The real S3 calls, watched: how many parts are in flight at once, and a part that is
    held back and then fails, to test what a later part confirmed before it counts for."""

    def __init__(self, client: Any, bucket: str, fail_part: int | None = None) -> None:
        super().__init__(client, bucket)
        self.fail_part = fail_part
        self.running = self.most = 0
        self.lock = threading.Lock()

    def upload_part(self, key: str, upload_id: str, number: int, body: IO[bytes], length: int) -> UploadedPart:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if number == self.fail_part:
                time.sleep(1)  # the parts after it are confirmed first
                raise S3Unavailable("part held back, then refused")
            return super().upload_part(key, upload_id, number, body, length)
        finally:
            with self.lock:
                self.running -= 1


async def test_a_long_chunk_sends_several_parts_at_once(client: Any, bucket: S3Bucket, tmp_path: Path) -> None:
    data = Data(30 * MiB + 3)
    info = new_info(data.size)
    api = Watched(client, bucket.bucket)
    store = S3Store(api, tmp_dir=tmp_path / "spool", part_size=MIN_PART_SIZE, in_flight=3)
    await store.create(info)
    assert await write(store, info, data, data.size) == data.size
    assert 2 <= api.most <= 3
    assert [part["n"] for part in info.store_state["parts"]] == list(range(1, 8))
    await store.finish(info)
    assert stored_sha256(client, bucket.bucket, info.storage_key) == (data.size, data.sha256())
    assert list((tmp_path / "spool").iterdir()) == []  # every spool file closed


async def test_a_part_that_fails_counts_nothing_after_it_even_when_later_parts_are_in_s3(
    client: Any, bucket: S3Bucket, tmp_path: Path
) -> None:
    data = Data(24 * MiB)
    info = new_info(data.size)
    failing = S3Store(Watched(client, bucket.bucket, fail_part=2), tmp_dir=tmp_path / "a",
                      part_size=MIN_PART_SIZE, in_flight=3)
    await failing.create(info)
    with pytest.raises(StorageUnavailable) as raised:
        await failing.write_chunk(info, stream(data.pieces(0, data.size)))
    # Parts 3 and 4 reached S3, but part 2 did not: the offset stops after part 1.
    assert raised.value.written == 5 * MiB
    assert [part["n"] for part in info.store_state["parts"]] == [1]
    in_s3 = s3_parts(client, bucket.bucket, info)
    assert {1, 3, 4} <= set(in_s3) and 2 not in in_s3
    info.offset += raised.value.written
    reload(info)
    # The client resumes from there, in chunks that cut the parts differently.
    store = S3Store(BotoS3(client, bucket.bucket), tmp_dir=tmp_path / "b", part_size=MIN_PART_SIZE)
    while not info.is_complete:
        await write(store, info, data, min(7 * MiB, data.size - info.offset))
    await store.finish(info)
    assert stored_sha256(client, bucket.bucket, info.storage_key) == (data.size, data.sha256())


async def test_chunks_taken_in_turn_by_two_nodes_keep_nothing_on_either(
    client: Any, bucket: S3Bucket, tmp_path: Path
) -> None:
    """Two API nodes on one database: the state goes through JSON between chunks, and no
    chunk leaves anything on its node's disk for the next (which may reach the other)."""
    data = Data(23 * MiB + 17)
    info = new_info(data.size)
    nodes = [S3Store(BotoS3(client, bucket.bucket), tmp_dir=tmp_path / name, part_size=16 * MiB)
             for name in ("a", "b")]
    await nodes[0].create(reload(info))
    for turn, chunk in enumerate([3 * MiB, 8 * MiB, MiB, 2 * MiB, 6 * MiB, 64 * KiB, MiB, 2 * MiB + 17]):
        node = nodes[turn % 2]
        assert await write(node, info, data, min(chunk, data.size - info.offset)) > 0
        assert list(node.tmp_dir.iterdir()) == []
    assert info.is_complete
    await nodes[1].finish(reload(info))
    assert stored_sha256(client, bucket.bucket, info.storage_key) == (data.size, data.sha256())
    assert not exists(client, bucket.bucket, info.storage_key + ".part")


async def test_a_chunk_whose_checksum_fails_counts_nothing_though_its_parts_went_up(
    make_store: Callable[..., S3Store], client: Any, bucket: S3Bucket
) -> None:
    """Upload-Checksum is checked at the chunk's end, after parts were already sent: none
    of them may count, and the next chunk sends the same part numbers again."""
    data = Data(26 * MiB + 1)
    info = new_info(data.size)
    await make_store().create(info)
    await write(make_store(), info, data, 2 * MiB)  # parked
    before = json.loads(json.dumps(info.store_state))
    wrong = Checksum("sha256", hashlib.sha256(b"not these bytes").digest())
    with pytest.raises(ChecksumMismatch):
        await make_store().write_chunk(info, verified(stream(data.pieces(2 * MiB, 20 * MiB)), wrong))
    assert info.store_state == before and info.offset == 2 * MiB
    assert len(s3_parts(client, bucket.bucket, info)) >= 3  # they did reach S3
    right = Checksum("sha256", bytes.fromhex(data.sha256(2 * MiB, 20 * MiB)))
    written = await make_store().write_chunk(info, verified(stream(data.pieces(2 * MiB, 20 * MiB)), right))
    assert written == 18 * MiB
    info.offset += written
    await write(make_store(), reload(info), data, data.size - info.offset)
    await make_store().finish(info)
    assert stored_sha256(client, bucket.bucket, info.storage_key) == (data.size, data.sha256())
