"""transfer.handler.TusApp with stores and hooks that no real deployment has: a store with
none of the optional capabilities (the server must then advertise and accept only what it
can do), a store whose storage fails part-way through a chunk, and hooks that fail.

The store and the registry here are in memory, because the point is what the handler
does with a store's abilities and failures; the real stores run the whole protocol in
tests/transfer/protocol/. HTTP is real: uvicorn on a socket."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
from fastapi import FastAPI

from tests.support.inprocess import serving
from tests.transfer.site import OCTET, TUS, b64, metadata
from transfer import errors
from transfer.handler import TusApp, TusConfig
from transfer.info import UploadInfo
from transfer.lock import LocalLocker

AUTH = {**TUS, "Authorization": "Bearer ok"}


class Bare:
    """The store contract and nothing else, in memory."""

    def __init__(self) -> None:
        self.working: dict[str, bytearray] = {}
        self.objects: dict[str, bytes] = {}

    async def create(self, info: UploadInfo) -> None:
        self.working[info.id] = bytearray()

    async def write_chunk(self, info: UploadInfo, source: AsyncIterator[bytes], checkpoints: object = None) -> int:
        kept = self.working[info.id]
        del kept[info.offset:]
        try:
            async for block in source:
                kept += block
        except BaseException:
            del kept[info.offset:]
            raise
        return len(kept) - info.offset

    async def finish(self, info: UploadInfo) -> None:
        self.objects[info.storage_key] = bytes(self.working.pop(info.id, b"")) or self.objects.get(info.storage_key, b"")


class Failing(Bare):
    """Storage that goes away after keeping ``keep`` bytes of a chunk (and says so)."""

    def __init__(self, keep: int) -> None:
        super().__init__()
        self.keep = keep

    async def write_chunk(self, info: UploadInfo, source: AsyncIterator[bytes], checkpoints: object = None) -> int:
        kept = self.working[info.id]
        del kept[info.offset:]
        async for block in source:
            kept += block[: self.keep - (len(kept) - info.offset)]
            if len(kept) - info.offset >= self.keep:
                raise errors.StorageUnavailable("the disk went away", written=self.keep)
        return len(kept) - info.offset


class Memory:
    """A registry in memory: each load is a copy, as a database row would be."""

    def __init__(self) -> None:
        self.rows: dict[str, UploadInfo] = {}

    def load(self, upload_id: str) -> UploadInfo | None:
        return copy.deepcopy(self.rows.get(upload_id))

    def load_many(self, upload_ids: Sequence[str]) -> dict[str, UploadInfo]:
        return {i: copy.deepcopy(self.rows[i]) for i in upload_ids if i in self.rows}

    def add(self, info: UploadInfo) -> None:
        self.rows[info.id] = copy.deepcopy(info)

    def save(self, info: UploadInfo) -> None:
        self.rows[info.id] = copy.deepcopy(info)

    def complete(self, info: UploadInfo) -> None:
        self.rows[info.id] = copy.deepcopy(info)

    def remove(self, info: UploadInfo) -> None:
        self.rows[info.id].terminated = True

    def expired(self, now: datetime) -> list[UploadInfo]:
        return []


@dataclass
class Hooks:
    storage_key: bool = True
    fail_on_completion: bool = False
    completed_ids: list[str] = field(default_factory=list)

    def authenticate(self, headers: Mapping[str, str]) -> str:
        if headers.get("authorization") != "Bearer ok":
            raise errors.Unauthorized()
        return "me"

    def prepare(self, info: UploadInfo, partials: Sequence[UploadInfo]) -> None:
        if self.storage_key:
            info.storage_key = f"originals/{info.id}"

    def completed(self, info: UploadInfo) -> None:
        if self.fail_on_completion:
            raise RuntimeError("the queue is down")
        self.completed_ids.append(info.id)


@dataclass
class Tus:
    url: str
    store: Bare
    registry: Memory
    hooks: Hooks

    def create(self, length: int, body: bytes | None = None) -> requests.Response:
        headers = {**AUTH, "Upload-Length": str(length), "Upload-Metadata": metadata(filename="a.bin")}
        return requests.post(self.url, headers={**headers, **(OCTET if body is not None else {})}, data=body,
                             timeout=10)

    def patch(self, url: str, body: bytes, offset: int, **more: str) -> requests.Response:
        return requests.patch(url, headers={**AUTH, **OCTET, "Upload-Offset": str(offset), **more}, data=body,
                              timeout=10)


@contextmanager
def serve(store: Bare, hooks: Hooks, tmp_path: Path, expiry: timedelta | None = timedelta(days=1)) -> Iterator[Tus]:
    registry = Memory()
    tus = TusApp(store, registry, LocalLocker(tmp_path / "locks"), hooks, TusConfig(max_size=1000, expiry=expiry))
    app = FastAPI()
    app.mount("/files", tus)
    with serving(app) as url:
        yield Tus(url + "/files/", store, registry, hooks)


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Tus]:
    with serve(Bare(), Hooks(), tmp_path) as tus:
        yield tus


def test_a_store_without_extras_is_advertised_as_such(bare: Tus) -> None:
    response = requests.options(bare.url, timeout=10)
    assert response.status_code == 204
    assert response.headers["Tus-Extension"] == "creation,creation-with-upload,checksum,expiration"


def test_without_expiry_no_expiration_is_advertised(tmp_path: Path) -> None:
    with serve(Bare(), Hooks(), tmp_path, expiry=None) as tus:
        assert requests.options(tus.url, timeout=10).headers["Tus-Extension"] == (
            "creation,creation-with-upload,checksum")
        url = tus.create(10).headers["Location"]
        assert "Upload-Expires" not in requests.head(url, headers=AUTH, timeout=10).headers


def test_what_the_store_cannot_do_is_refused(bare: Tus) -> None:
    deferred = requests.post(bare.url, headers={**AUTH, "Upload-Defer-Length": "1"}, timeout=10)
    assert deferred.status_code == 400 and "cannot defer" in deferred.text
    partial = requests.post(bare.url, headers={**AUTH, "Upload-Length": "3", "Upload-Concat": "partial"}, timeout=10)
    assert partial.status_code == 400 and "does not support concatenation" in partial.text
    url = bare.create(10).headers["Location"]
    deleted = requests.delete(url, headers=AUTH, timeout=10)
    assert deleted.status_code == 405 and "does not support termination" in deleted.text
    assert requests.head(url, headers=AUTH, timeout=10).status_code == 200  # still there


def test_the_contract_alone_carries_an_upload_to_its_end(bare: Tus) -> None:
    created = bare.create(6, body=b"abc")
    assert created.status_code == 201, created.text
    url = created.headers["Location"]
    checksum = "sha1 " + b64(hashlib.sha1(b"def").digest())  # noqa: S324  # the tus checksum algorithm
    assert bare.patch(url, b"def", 3, **{"Upload-Checksum": checksum}).status_code == 204
    upload_id = url.rsplit("/", 1)[1]
    assert bare.store.objects[f"originals/{upload_id}"] == b"abcdef"
    assert bare.registry.rows[upload_id].finished
    assert bare.hooks.completed_ids == [upload_id]


def test_storage_failing_mid_chunk_records_what_it_kept_and_says_where_to_resume(tmp_path: Path) -> None:
    with serve(Failing(keep=4), Hooks(), tmp_path) as tus:
        url = tus.create(10).headers["Location"]
        response = tus.patch(url, b"abcdefgh", 0)
        assert response.status_code == 503, response.text
        assert response.headers["Upload-Offset"] == "4"
        assert "the disk went away" in response.text
        head = requests.head(url, headers=AUTH, timeout=10)
        assert head.headers["Upload-Offset"] == "4"
        # With a checksum, a part of the chunk is unverified bytes: none of it counts.
        checksum = "sha256 " + b64(hashlib.sha256(b"efghij").digest())
        response = tus.patch(url, b"efghij", 4, **{"Upload-Checksum": checksum})
        assert response.status_code == 503
        assert response.headers["Upload-Offset"] == "4"
        assert requests.head(url, headers=AUTH, timeout=10).headers["Upload-Offset"] == "4"


def test_an_application_that_gives_no_storage_key_is_a_server_error(tmp_path: Path) -> None:
    with serve(Bare(), Hooks(storage_key=False), tmp_path) as tus:
        response = tus.create(3)
        assert response.status_code == 500
        assert "no storage key" in response.text
        assert tus.registry.rows == {}


def test_a_failing_completion_hook_does_not_undo_the_upload(tmp_path: Path) -> None:
    with serve(Bare(), Hooks(fail_on_completion=True), tmp_path) as tus:
        response = tus.create(3, body=b"abc")
        assert response.status_code == 201
        upload_id = response.headers["Location"].rsplit("/", 1)[1]
        assert tus.registry.rows[upload_id].finished
        assert tus.store.objects[f"originals/{upload_id}"] == b"abc"
