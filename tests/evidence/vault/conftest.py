"""Vaults for the tests: a local folder, and S3 on a fresh Object Lock bucket of the test
endpoint (Ceph's gateway unless EVIDENCE_TEST_S3_ENDPOINT names another), reached through
open_vault with a storage URL as the application reaches it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evidence.vault import Vault, open_vault
from evidence.vault.local import LocalVault
from evidence.vault.s3 import S3Vault
from tests.support.s3 import REGION, S3Bucket, new_bucket

RETENTION_DAYS = 30


def s3_url(bucket: S3Bucket) -> str:
    return f"s3://{bucket.bucket}?endpoint_url={bucket.endpoint}&region={REGION}"


def open_s3(bucket: S3Bucket, tmp_path: Path) -> S3Vault:
    vault = open_vault(
        s3_url(bucket), retention_days=RETENTION_DAYS, access_key=bucket.access_key,
        secret_key=bucket.secret_key, tmp_dir=tmp_path,
    )
    assert isinstance(vault, S3Vault)
    return vault


def put_original(vault: Vault, key: str, data: bytes) -> None:
    """Originals arrive through uploads, not put(): write one the way an upload would."""
    if isinstance(vault, S3Vault):
        vault.client.put_object(Bucket=vault.bucket, Key=key, Body=data)
    else:
        assert isinstance(vault, LocalVault)
        path = vault.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture
def s3_bucket() -> S3Bucket:
    return new_bucket()


@pytest.fixture
def s3_vault(s3_bucket: S3Bucket, tmp_path: Path) -> Iterator[S3Vault]:
    vault = open_s3(s3_bucket, tmp_path)
    vault.ensure_ready()
    yield vault
    vault.client.close()


@pytest.fixture
def local_vault(tmp_path: Path) -> LocalVault:
    vault = open_vault(
        (tmp_path / "vault").as_uri(), retention_days=RETENTION_DAYS, access_key=None,
        secret_key=None, tmp_dir=tmp_path / "tmp",
    )
    assert isinstance(vault, LocalVault)
    vault.ensure_ready()
    return vault


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def vault(request: pytest.FixtureRequest) -> Vault:
    """Each contract test runs on both backends."""
    name = "local_vault" if request.param == "local" else "s3_vault"
    found: Vault = request.getfixturevalue(name)
    return found
