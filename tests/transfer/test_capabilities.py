"""transfer.capabilities: what a store can do beyond the contract, found once, and the
Tus-Extension list that follows from it (no more, no less)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from transfer.capabilities import Capabilities
from transfer.filestore import FileStore
from transfer.info import UploadInfo
from transfer.s3store import S3Store


class Bare:
    """The contract and nothing more (no real store is this bare)."""

    async def create(self, info: UploadInfo) -> None: ...

    async def write_chunk(self, info: UploadInfo, source: AsyncIterator[bytes], checkpoints: object = None) -> int:
        return 0

    async def finish(self, info: UploadInfo) -> None: ...


class Terminating(Bare):
    async def terminate(self, info: UploadInfo) -> None: ...


def test_a_bare_store_has_no_capabilities_and_only_the_handlers_own_extensions() -> None:
    found = Capabilities.of(Bare())
    assert found == Capabilities(terminate=None, concatenate=None, declare_length=None)
    assert found.extensions(expires=False) == ["creation", "creation-with-upload", "checksum"]
    assert found.extensions(expires=True) == ["creation", "creation-with-upload", "checksum", "expiration"]


def test_one_capability_is_one_extension() -> None:
    store = Terminating()
    found = Capabilities.of(store)
    assert found.terminate is not None and found.concatenate is None and found.declare_length is None
    assert found.terminate == store.terminate  # the store's own method, bound once
    assert found.extensions(expires=False) == ["creation", "creation-with-upload", "checksum", "termination"]


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_both_stores_can_do_everything(kind: str, tmp_path: Path) -> None:
    store: FileStore | S3Store
    if kind == "file":
        store = FileStore(tmp_path / "vault", tmp_path / "vault" / ".uploads")
    else:
        store = S3Store.from_client(None, "bucket", tmp_dir=tmp_path / "spool")  # no S3 call is made
    found = Capabilities.of(store)
    assert None not in (found.terminate, found.concatenate, found.declare_length)
    assert found.extensions(expires=True) == [
        "creation", "creation-with-upload", "checksum", "expiration",
        "creation-defer-length", "termination", "concatenation",
    ]
