"""The S3 vault against a real S3 endpoint (Ceph's gateway unless EVIDENCE_TEST_S3_ENDPOINT
names another): sealing with compliance retention, read back before it is trusted; a bucket
that could not keep originals write-once is not ready; originals uploaded in parts are
sealed after completion (the gateway ignores Object Lock headers given at creation)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evidence.vault import SealNotConfirmed, VaultNotReady, VaultUnavailable
from evidence.vault.s3 import S3Vault
from tests.evidence.vault.conftest import RETENTION_DAYS, open_s3, put_original
from tests.support.s3 import S3Bucket, free_port, new_bucket
from transfer.info import UploadInfo
from transfer.s3store import MIN_PART_SIZE, S3Store

pytestmark = pytest.mark.s3


def retention(vault: S3Vault, key: str) -> tuple[str | None, datetime | None]:
    head = vault.client.head_object(Bucket=vault.bucket, Key=key)
    return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")


# --- sealing -----------------------------------------------------------------------------------


def test_seal_sets_compliance_retention_and_confirms_it(s3_vault: S3Vault) -> None:
    put_original(s3_vault, "originals/item-3/clip.mov", b"footage")
    before = datetime.now(UTC) + timedelta(days=RETENTION_DAYS) - timedelta(seconds=5)
    s3_vault.seal("originals/item-3/clip.mov")
    mode, until = retention(s3_vault, "originals/item-3/clip.mov")
    assert mode == "COMPLIANCE" and until is not None and until >= before
    info = s3_vault.stat("originals/item-3/clip.mov")
    assert info is not None and info.sealed and info.retain_until == until
    s3_vault.seal("originals/item-3/clip.mov")  # again: still sealed, for no less time
    again, later = retention(s3_vault, "originals/item-3/clip.mov")
    assert again == "COMPLIANCE" and later is not None and later >= until


def test_seal_of_a_missing_object_fails(s3_vault: S3Vault) -> None:
    with pytest.raises(KeyError):
        s3_vault.seal("originals/item-3/none.mov")


def test_seal_extends_a_shorter_retention_and_keeps_a_longer_one(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    short, long = open_s3(s3_bucket, tmp_path), open_s3(s3_bucket, tmp_path)
    short.retention_days, long.retention_days = 1, RETENTION_DAYS
    put_original(short, "originals/a", b"a")
    short.seal("originals/a")
    long.seal("originals/a")  # a longer retention wanted: extended
    _, extended = retention(long, "originals/a")
    assert extended is not None and extended > datetime.now(UTC) + timedelta(days=RETENTION_DAYS - 1)
    short.seal("originals/a")  # a shorter one wanted: nothing to do, and nothing refused
    assert retention(short, "originals/a") == ("COMPLIANCE", extended)
    short.client.close()
    long.client.close()


class RetentionIgnored:
    """The vault's client, except that retention calls are answered but not applied: a store
    that would claim to seal without sealing. (A stand-in: no real S3 does this on purpose,
    which is why the vault reads the seal back.)"""

    def __init__(self, client: Any) -> None:
        self._client = client

    def put_object_retention(self, **_: Any) -> dict[str, Any]:
        return {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_seal_the_storage_does_not_confirm_is_an_error(s3_vault: S3Vault) -> None:
    put_original(s3_vault, "originals/item-7/x.bin", b"x")
    s3_vault.client = RetentionIgnored(s3_vault.client)
    with pytest.raises(SealNotConfirmed, match="did not confirm"):
        s3_vault.seal("originals/item-7/x.bin")
    info = s3_vault.stat("originals/item-7/x.bin")
    assert info is not None and not info.sealed


@pytest.mark.parametrize("days", [1, 2 * RETENTION_DAYS])
def test_governance_retention_is_not_a_seal(s3_vault: S3Vault, days: int) -> None:
    put_original(s3_vault, "originals/item-8/x.bin", b"x")
    governed = (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)
    s3_vault.client.put_object_retention(
        Bucket=s3_vault.bucket, Key="originals/item-8/x.bin",
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": governed},
    )
    info = s3_vault.stat("originals/item-8/x.bin")
    assert info is not None and not info.sealed  # an administrator could lift it
    # As under a bucket whose default retention is in governance mode: the seal turns it
    # into compliance (S3 asks for the governance bypass to change the mode at all).
    s3_vault.seal("originals/item-8/x.bin")
    info = s3_vault.stat("originals/item-8/x.bin")
    assert info is not None and info.sealed and info.retain_until is not None
    assert info.retain_until >= governed  # and never for less time than it had


async def _upload(store: S3Store, key: str, data: bytes, chunk: int) -> None:
    info = UploadInfo(id="u1", owner="officer", storage_key=key, size=len(data))
    await store.create(info)
    for start in range(0, len(data), chunk):
        async def piece(start: int = start) -> AsyncIterator[bytes]:
            yield data[start : start + chunk]

        info.offset += await store.write_chunk(info, piece())
    await store.finish(info)


def test_an_original_uploaded_in_parts_is_sealed_after_completion(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    vault = open_s3(s3_bucket, tmp_path)
    vault.part_size = MIN_PART_SIZE
    data = os.urandom(2 * MIN_PART_SIZE + 123)
    store = vault.tus_store()
    assert isinstance(store, S3Store)
    asyncio.run(_upload(store, "originals/item-9/extract.zip", data, MIN_PART_SIZE + 1))
    head = vault.client.head_object(Bucket=vault.bucket, Key="originals/item-9/extract.zip")
    assert head["ETag"].endswith('-3"')  # really a multipart object, of three parts
    vault.seal("originals/item-9/extract.zip")
    info = vault.stat("originals/item-9/extract.zip")
    assert info is not None and info.sealed and info.size == len(data)
    with vault.open("originals/item-9/extract.zip") as stream:
        assert hashlib.sha256(stream.read()).digest() == hashlib.sha256(data).digest()
    vault.client.close()


def test_tags_can_be_added_to_a_sealed_original(s3_vault: S3Vault) -> None:
    put_original(s3_vault, "originals/item-10/x.bin", b"x")
    s3_vault.seal("originals/item-10/x.bin")
    s3_vault.tag("originals/item-10/x.bin", {"sha256": "ab" * 32, "md5": "cd" * 16})
    tags = s3_vault.client.get_object_tagging(Bucket=s3_vault.bucket, Key="originals/item-10/x.bin")["TagSet"]
    assert {tag["Key"]: tag["Value"] for tag in tags} == {"sha256": "ab" * 32, "md5": "cd" * 16}


# --- readiness and reachability ------------------------------------------------------------------


def test_a_bucket_without_object_lock_is_not_ready(tmp_path: Path) -> None:
    vault = open_s3(new_bucket(object_lock=False), tmp_path)
    with pytest.raises(VaultNotReady, match="Object Lock"):
        vault.ensure_ready()
    vault.client.close()


def test_a_missing_bucket_is_not_ready(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    missing = S3Bucket(s3_bucket.endpoint, "no-such-bucket-here", s3_bucket.access_key, s3_bucket.secret_key)
    vault = open_s3(missing, tmp_path)
    with pytest.raises(VaultNotReady, match="does not exist"):
        vault.ensure_ready()
    vault.client.close()


def test_wrong_credentials_are_not_ready(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    wrong = S3Bucket(s3_bucket.endpoint, s3_bucket.bucket, s3_bucket.access_key, s3_bucket.secret_key[::-1])
    vault = open_s3(wrong, tmp_path)
    with pytest.raises(VaultNotReady, match="not usable"):
        vault.ensure_ready()
    vault.client.close()


def test_an_unreachable_endpoint_is_not_ready_and_reads_are_unavailable(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    gone = S3Bucket(f"http://127.0.0.1:{free_port()}", s3_bucket.bucket, s3_bucket.access_key, s3_bucket.secret_key)
    vault = open_s3(gone, tmp_path)
    vault.client = gone.client(retries={"max_attempts": 1}, connect_timeout=1)
    with pytest.raises(VaultNotReady, match="cannot reach"):
        vault.ensure_ready()
    with pytest.raises(VaultUnavailable):
        vault.stat("originals/x")
    with pytest.raises(VaultUnavailable):
        vault.open("originals/x")
    vault.client.close()


def test_the_vault_gives_an_s3_tus_store(s3_vault: S3Vault) -> None:
    assert isinstance(s3_vault.tus_store(), S3Store)
