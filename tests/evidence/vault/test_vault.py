"""The vault's two backends: a local folder, and S3 (moto's server unless
EVIDENCE_TEST_S3_ENDPOINT is set) reached through open_vault with a storage URL."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evidence.errors import Conflict, InvalidInput
from evidence.vault import (
    KeyRefused,
    ObjectExists,
    Vault,
    VaultError,
    VaultNotReady,
    check_key,
    open_vault,
)
from evidence.vault.local import LocalVault
from evidence.vault.s3 import S3Vault
from tests.support.s3 import S3Bucket, new_bucket
from transfer.s3store import S3Store

RETENTION_DAYS = 30


def s3_url(bucket: S3Bucket) -> str:
    return f"s3://{bucket.bucket}?endpoint_url={bucket.endpoint}&region=eu-west-2"


def open_s3(bucket: S3Bucket, tmp_path: Path) -> S3Vault:
    vault = open_vault(
        s3_url(bucket), retention_days=RETENTION_DAYS, access_key=bucket.access_key,
        secret_key=bucket.secret_key, tmp_dir=tmp_path,
    )
    assert isinstance(vault, S3Vault)
    return vault


@pytest.fixture
def s3_vault(tmp_path: Path) -> Iterator[S3Vault]:
    vault = open_s3(new_bucket(), tmp_path)
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
    name = "local_vault" if request.param == "local" else "s3_vault"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def put_original(vault: Vault, key: str, data: bytes) -> None:
    """Originals arrive through uploads, not put(): write one the way an upload would."""
    if isinstance(vault, S3Vault):
        vault.client.put_object(Bucket=vault.bucket, Key=key, Body=data)
    else:
        assert isinstance(vault, LocalVault)
        path = vault.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


# --- keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "originals/../../x", "/abs", "a//b", "a/./b", "sp ace", "a\\b", "", ".uploads/x", "é"]
)
def test_keys_that_are_not_server_generated_are_refused(key: str) -> None:
    with pytest.raises(KeyRefused):
        check_key(key)


def test_key_errors_are_user_errors() -> None:
    assert issubclass(KeyRefused, InvalidInput) and issubclass(ObjectExists, Conflict)


def test_local_refuses_keys_that_escape_the_root(local_vault: LocalVault, tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"x")
    for key in ("../secret", "derivatives/../../secret"):
        with pytest.raises(KeyRefused):
            local_vault.stat(key)
        with pytest.raises(KeyRefused):
            local_vault.put(key, io.BytesIO(b"y"))
    # A symlink planted inside the root does not lead out either.
    os.symlink(tmp_path, local_vault.root / "derivatives" / "link")
    with pytest.raises(KeyRefused):
        local_vault.open("derivatives/link/secret")
    assert (tmp_path / "secret").read_bytes() == b"x"


# --- both backends ------------------------------------------------------------------------


def test_put_stores_a_derivative_once(vault: Vault) -> None:
    info = vault.put("derivatives/item-1/proxy.mp4", io.BytesIO(b"proxy bytes"))
    assert info.size == 11
    with pytest.raises(ObjectExists):
        vault.put("derivatives/item-1/proxy.mp4", io.BytesIO(b"other"))
    with vault.open("derivatives/item-1/proxy.mp4") as stream:
        assert stream.read() == b"proxy bytes"


def test_put_refuses_originals(vault: Vault) -> None:
    with pytest.raises(KeyRefused):
        vault.put("originals/item-1/video.mp4", io.BytesIO(b"x"))
    assert vault.stat("originals/item-1/video.mp4") is None


def test_open_streams_whole_objects_and_ranges(vault: Vault) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    put_original(vault, "originals/item-2/big.bin", data)
    stat_ = vault.stat("originals/item-2/big.bin")
    assert stat_ is not None and stat_.size == len(data)
    with vault.open("originals/item-2/big.bin") as stream:
        pieces = iter(lambda: stream.read(256 * 1024), b"")
        assert b"".join(pieces) == data
    with vault.open("originals/item-2/big.bin", 1000, 2000) as stream:
        assert stream.read() == data[1000:2000]
    with vault.open("originals/item-2/big.bin", len(data) - 5) as stream:
        assert stream.read() == data[-5:]
    with pytest.raises(KeyError):
        vault.open("originals/item-2/missing.bin")


def test_stat_of_a_missing_object_is_none(vault: Vault) -> None:
    assert vault.stat("derivatives/none.bin") is None


# --- sealing -----------------------------------------------------------------------------


@pytest.mark.s3
def test_s3_seal_sets_compliance_retention_and_confirms_it(s3_vault: S3Vault) -> None:
    put_original(s3_vault, "originals/item-3/clip.mov", b"footage")
    before = datetime.now(UTC) + timedelta(days=RETENTION_DAYS) - timedelta(seconds=5)
    s3_vault.seal("originals/item-3/clip.mov")
    head = s3_vault.client.head_object(Bucket=s3_vault.bucket, Key="originals/item-3/clip.mov")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] >= before
    info = s3_vault.stat("originals/item-3/clip.mov")
    assert info is not None and info.sealed
    s3_vault.seal("originals/item-3/clip.mov")  # idempotent


@pytest.mark.s3
def test_s3_seal_of_a_missing_object_fails(s3_vault: S3Vault) -> None:
    with pytest.raises(KeyError):
        s3_vault.seal("originals/item-3/none.mov")


def test_local_seal_makes_the_file_read_only(local_vault: LocalVault) -> None:
    put_original(local_vault, "originals/item-4/phone.zip", b"extract")
    local_vault.seal("originals/item-4/phone.zip")
    mode = (local_vault.root / "originals/item-4/phone.zip").stat().st_mode
    assert stat.S_IMODE(mode) == 0o400  # read-only, and for the service account alone
    info = local_vault.stat("originals/item-4/phone.zip")
    assert info is not None and info.sealed
    local_vault.seal("originals/item-4/phone.zip")  # again: nothing changes
    assert stat.S_IMODE((local_vault.root / "originals/item-4/phone.zip").stat().st_mode) == 0o400


def test_the_custody_description_names_no_server_internals(vault: Vault) -> None:
    described = repr(vault.describe()) + vault.write_once_description()
    assert vault.describe()["backend"] in ("local", "s3")
    if isinstance(vault, LocalVault):
        assert str(vault.root) not in described and "/" not in repr(vault.describe())
    else:
        assert isinstance(vault, S3Vault)
        assert vault.bucket not in described and "127.0.0.1" not in described and "http" not in described


# --- readiness and wiring ---------------------------------------------------------------------


@pytest.mark.s3
def test_s3_bucket_without_object_lock_is_not_ready(tmp_path: Path) -> None:
    vault = open_s3(new_bucket(object_lock=False), tmp_path)
    with pytest.raises(VaultNotReady, match="Object Lock"):
        vault.ensure_ready()
    vault.client.close()


@pytest.mark.s3
def test_missing_bucket_is_not_ready(tmp_path: Path) -> None:
    bucket = new_bucket()
    vault = open_s3(S3Bucket(bucket.endpoint, "no-such-bucket-here", bucket.access_key, bucket.secret_key), tmp_path)
    with pytest.raises(VaultNotReady, match="does not exist"):
        vault.ensure_ready()
    vault.client.close()


def test_local_ensure_ready_creates_the_folders(local_vault: LocalVault) -> None:
    assert (local_vault.root / "originals").is_dir() and (local_vault.root / "derivatives").is_dir()


@pytest.mark.s3
def test_s3_vault_gives_an_s3_tus_store(s3_vault: S3Vault) -> None:
    assert isinstance(s3_vault.tus_store(), S3Store)


@pytest.mark.parametrize(
    "url", ["http://example.com/x", "s3://", "s3://bucket/path", "s3://bucket?colour=blue", "file://host/x"]
)
def test_bad_storage_urls_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(VaultError):
        open_vault(url, retention_days=1, access_key=None, secret_key=None, tmp_dir=tmp_path)


def test_local_vault_gives_a_file_tus_store(local_vault: LocalVault) -> None:
    from transfer.filestore import FileStore

    store = local_vault.tus_store()
    assert isinstance(store, FileStore) and store.root == local_vault.root


def test_put_file_stores_a_finished_file_once(vault: Vault, tmp_path: Path) -> None:
    made = tmp_path / "proxy.mp4"
    made.write_bytes(b"working copy" * 1000)
    info = vault.put_file("derivatives/item/proxy-abc.mp4", made)
    assert info.size == 12000
    with vault.open("derivatives/item/proxy-abc.mp4") as stream:
        assert stream.read() == made.read_bytes()
    with pytest.raises(ObjectExists):
        vault.put_file("derivatives/item/proxy-abc.mp4", made)
    with pytest.raises(KeyRefused):
        vault.put_file("originals/abc", made)


def test_local_put_file_links_instead_of_copying(local_vault: LocalVault, tmp_path: Path) -> None:
    local_vault.ensure_ready()
    made = local_vault.root.parent / "proxy.mp4"  # same file system as the vault
    made.write_bytes(b"x" * 4096)
    local_vault.put_file("derivatives/item/proxy.mp4", made)
    assert (local_vault.root / "derivatives/item/proxy.mp4").stat().st_ino == made.stat().st_ino
