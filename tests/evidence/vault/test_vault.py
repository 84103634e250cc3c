"""The vault as the application sees it: one storage URL chooses the backend, and both
backends keep the same contract (derivatives put once, originals never put, streams of
whole objects and ranges, nothing about the server in the custody description)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import requests

from evidence.vault import KeyRefused, ObjectExists, Vault, VaultError, open_vault
from evidence.vault.local import LocalVault
from evidence.vault.s3 import S3Vault
from tests.evidence.vault.conftest import put_original

# --- choosing a backend ---------------------------------------------------------------------


def test_a_file_url_opens_a_local_vault(tmp_path: Path) -> None:
    vault = open_vault((tmp_path / "v").as_uri(), retention_days=1, access_key=None, secret_key=None, tmp_dir=tmp_path)
    assert isinstance(vault, LocalVault) and vault.root == tmp_path / "v"
    with_host = open_vault(f"file://localhost{tmp_path}/v", retention_days=1, access_key=None, secret_key=None,
                           tmp_dir=tmp_path)
    assert isinstance(with_host, LocalVault) and with_host.root == tmp_path / "v"


def test_a_file_url_with_escapes_names_the_folder_it_spells(tmp_path: Path) -> None:
    vault = open_vault(f"file://{tmp_path}/with%20space", retention_days=1, access_key=None, secret_key=None,
                       tmp_dir=tmp_path)
    assert isinstance(vault, LocalVault) and vault.root == tmp_path / "with space"


def test_an_s3_url_opens_an_s3_vault_on_its_bucket_and_endpoint(tmp_path: Path) -> None:
    vault = open_vault(
        "s3://evidence-originals?endpoint_url=http://127.0.0.1:9&region=eu-west-2", retention_days=7,
        access_key="AK", secret_key="SK", tmp_dir=tmp_path,
    )
    assert isinstance(vault, S3Vault)
    assert (vault.bucket, vault.retention_days, vault.endpoint_url) == ("evidence-originals", 7, "http://127.0.0.1:9")
    assert vault.client.meta.region_name == "eu-west-2" and vault.client.meta.endpoint_url == "http://127.0.0.1:9"
    vault.client.close()


@pytest.mark.parametrize(
    "url",
    ["http://example.com/x", "s3://", "s3://bucket/path", "s3://bucket?colour=blue", "file://host/x", "relative/path",
     "file:relative"],
)
def test_bad_storage_urls_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(VaultError):
        open_vault(url, retention_days=1, access_key=None, secret_key=None, tmp_dir=tmp_path)


# --- the contract, on both backends ---------------------------------------------------------


def test_put_stores_a_derivative_once(vault: Vault) -> None:
    info = vault.put("derivatives/item-1/proxy.mp4", io.BytesIO(b"proxy bytes"))
    assert info.size == 11 and not info.sealed
    with pytest.raises(ObjectExists):
        vault.put("derivatives/item-1/proxy.mp4", io.BytesIO(b"other"))
    with vault.open("derivatives/item-1/proxy.mp4") as stream:
        assert stream.read() == b"proxy bytes"


def test_put_refuses_originals(vault: Vault) -> None:
    with pytest.raises(KeyRefused):
        vault.put("originals/item-1/video.mp4", io.BytesIO(b"x"))
    assert vault.stat("originals/item-1/video.mp4") is None


def test_put_refuses_keys_that_are_not_the_servers(vault: Vault) -> None:
    for key in ("derivatives/../originals/x", "/derivatives/x", ".uploads/x"):
        with pytest.raises(KeyRefused):
            vault.put(key, io.BytesIO(b"x"))


def test_open_streams_whole_objects_and_ranges(vault: Vault) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    put_original(vault, "originals/item-2/big.bin", data)
    found = vault.stat("originals/item-2/big.bin")
    assert found is not None and found.size == len(data)
    with vault.open("originals/item-2/big.bin") as stream:
        pieces = iter(lambda: stream.read(256 * 1024), b"")
        assert b"".join(pieces) == data
    with vault.open("originals/item-2/big.bin", 1000, 2000) as stream:
        assert stream.read() == data[1000:2000]
    with vault.open("originals/item-2/big.bin", len(data) - 5) as stream:
        assert stream.read() == data[-5:]
    with vault.open("originals/item-2/big.bin", 10, 10) as stream:
        assert stream.read() == b""
    with pytest.raises(KeyError):
        vault.open("originals/item-2/missing.bin")


def test_stat_of_a_missing_object_is_none(vault: Vault) -> None:
    assert vault.stat("derivatives/none.bin") is None


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


def test_seal_of_an_original_shows_in_stat(vault: Vault) -> None:
    put_original(vault, "originals/item-3/clip.mov", b"footage")
    before = vault.stat("originals/item-3/clip.mov")
    assert before is not None and not before.sealed
    vault.seal("originals/item-3/clip.mov")
    vault.seal("originals/item-3/clip.mov")  # idempotent
    after = vault.stat("originals/item-3/clip.mov")
    assert after is not None and after.sealed and after.size == 7


def test_the_custody_description_names_no_server_internals(vault: Vault) -> None:
    described = repr(vault.describe()) + vault.write_once_description()
    assert vault.describe()["backend"] in ("local", "s3")
    if isinstance(vault, LocalVault):
        assert str(vault.root) not in described and "/" not in repr(vault.describe())
    else:
        assert isinstance(vault, S3Vault)
        assert vault.bucket not in described and "127.0.0.1" not in described and "http" not in described


def test_tool_input_reads_the_object(vault: Vault) -> None:
    """What ffmpeg gets: a path it opens, or a presigned URL it reads with Range requests."""
    put_original(vault, "originals/item-5/cctv.avi", b"0123456789")
    where = vault.tool_input("originals/item-5/cctv.avi")
    if isinstance(vault, LocalVault):
        assert Path(where).read_bytes() == b"0123456789"
    else:
        assert requests.get(where, timeout=10).content == b"0123456789"
        ranged = requests.get(where, headers={"Range": "bytes=2-4"}, timeout=10)
        assert ranged.status_code == 206 and ranged.content == b"234"
