"""The local vault: a folder whose sealed originals are read-only files, derivatives linked
into place so that no key is ever overwritten, and no key leading out of the root."""

from __future__ import annotations

import io
import os
import stat
import threading
from pathlib import Path

import pytest

from evidence.vault import KeyRefused, ObjectExists
from evidence.vault.local import SEALED_MODE, UPLOADS_DIR, LocalVault
from tests.evidence.vault.conftest import put_original


def test_the_root_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="absolute"):
        LocalVault(Path("relative/vault"))


def test_ensure_ready_creates_the_folders(local_vault: LocalVault) -> None:
    for folder in ("originals", "derivatives", UPLOADS_DIR):
        assert (local_vault.root / folder).is_dir()
    local_vault.ensure_ready()  # again: nothing to do


def test_refuses_keys_that_escape_the_root(local_vault: LocalVault, tmp_path: Path) -> None:
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
    with pytest.raises(KeyRefused):
        local_vault.tool_input("derivatives/link/secret")
    assert (tmp_path / "secret").read_bytes() == b"x"


def test_seal_makes_the_file_read_only_for_the_service_alone(local_vault: LocalVault) -> None:
    put_original(local_vault, "originals/item-4/phone.zip", b"extract")
    local_vault.seal("originals/item-4/phone.zip")
    path = local_vault.root / "originals/item-4/phone.zip"
    assert stat.S_IMODE(path.stat().st_mode) == SEALED_MODE == 0o400
    info = local_vault.stat("originals/item-4/phone.zip")
    assert info is not None and info.sealed and info.retain_until is None
    local_vault.seal("originals/item-4/phone.zip")  # again: nothing changes
    assert stat.S_IMODE(path.stat().st_mode) == 0o400


def test_a_writable_file_is_not_sealed(local_vault: LocalVault) -> None:
    put_original(local_vault, "originals/item-4/a.bin", b"x")
    os.chmod(local_vault.root / "originals/item-4/a.bin", 0o420)  # group-writable
    info = local_vault.stat("originals/item-4/a.bin")
    assert info is not None and not info.sealed


def test_seal_of_a_missing_file_fails(local_vault: LocalVault) -> None:
    with pytest.raises(FileNotFoundError):
        local_vault.seal("originals/item-4/none.bin")


def test_put_leaves_no_working_file_behind(local_vault: LocalVault) -> None:
    local_vault.put("derivatives/item/a.json", io.BytesIO(b"{}"))
    with pytest.raises(ObjectExists):
        local_vault.put("derivatives/item/a.json", io.BytesIO(b"[]"))
    assert sorted(p.name for p in (local_vault.root / "derivatives/item").iterdir()) == ["a.json"]


def test_racing_puts_store_exactly_one(local_vault: LocalVault) -> None:
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def put(n: int) -> None:
        start.wait()
        try:
            local_vault.put("derivatives/item/race.bin", io.BytesIO(str(n).encode() * 100_000))
            outcomes.append("stored")
        except ObjectExists:
            outcomes.append("exists")

    threads = [threading.Thread(target=put, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["exists"] * 7 + ["stored"]
    with local_vault.open("derivatives/item/race.bin") as stream:
        data = stream.read()
    assert len(data) == 100_000 and len(set(data)) == 1  # one writer's bytes, whole


def test_put_file_links_instead_of_copying(local_vault: LocalVault) -> None:
    made = local_vault.root.parent / "proxy.mp4"  # same file system as the vault
    made.write_bytes(b"x" * 4096)
    local_vault.put_file("derivatives/item/proxy.mp4", made)
    assert (local_vault.root / "derivatives/item/proxy.mp4").stat().st_ino == made.stat().st_ino


def test_tags_travel_as_extended_attributes(local_vault: LocalVault) -> None:
    put_original(local_vault, "originals/item-6/x.bin", b"x")
    local_vault.tag("originals/item-6/x.bin", {"sha256": "ab" * 32})
    path = local_vault.root / "originals/item-6/x.bin"
    try:
        assert os.getxattr(path, "user.evidence.sha256") == b"ab" * 32
    except OSError:
        pytest.skip("this file system keeps no user extended attributes (tag() is best effort)")


def test_the_tus_store_writes_inside_the_root(local_vault: LocalVault) -> None:
    from transfer.filestore import FileStore

    store = local_vault.tus_store()
    assert isinstance(store, FileStore) and store.root == local_vault.root


def test_the_description_says_what_read_only_does_not_stop(local_vault: LocalVault) -> None:
    assert local_vault.describe() == {"backend": "local"}
    assert "administrator" in local_vault.write_once_description()
