"""What the vault offers disposal and legal holds, on both backends: an item's working copies
are removed under its own prefix and nowhere else (not under an id that merely starts the
same), an original goes only as an original and only when the storage no longer keeps it,
and a legal hold is set where the storage has one."""

from __future__ import annotations

import io

import pytest

from evidence.vault import KeyRefused, StillRetained, Vault
from evidence.vault.s3 import S3Vault
from tests.evidence.vault.conftest import put_original

ITEM = "a" * 32
# Another item whose id begins like the first's key prefix would, were the slash left off.
NEIGHBOUR = "a" * 31 + "b"


def keys(vault: Vault, *candidates: str) -> list[str]:
    return [key for key in candidates if vault.stat(key) is not None]


def test_working_copies_go_under_the_items_own_prefix_only(vault: Vault) -> None:
    for item in (ITEM, NEIGHBOUR):
        vault.put(f"derivatives/{item}/proxy.mp4", io.BytesIO(b"proxy"))
        vault.put(f"derivatives/{item}/pages/1.jpg", io.BytesIO(b"page"))
    assert vault.remove_working_copies(ITEM) == 2
    assert keys(vault, f"derivatives/{ITEM}/proxy.mp4", f"derivatives/{ITEM}/pages/1.jpg") == []
    assert keys(vault, f"derivatives/{NEIGHBOUR}/proxy.mp4", f"derivatives/{NEIGHBOUR}/pages/1.jpg") == [
        f"derivatives/{NEIGHBOUR}/proxy.mp4", f"derivatives/{NEIGHBOUR}/pages/1.jpg"]
    assert vault.remove_working_copies(ITEM) == 0  # nothing left: nothing to do


@pytest.mark.parametrize("item_id", ["", "../x", "A" * 32, "a" * 31, f"{ITEM}/..", "*"])
def test_working_copies_of_something_that_is_no_item_id_are_refused(vault: Vault, item_id: str) -> None:
    with pytest.raises(KeyRefused):
        vault.remove_working_copies(item_id)


def test_only_an_original_is_removed_as_one(vault: Vault) -> None:
    vault.put(f"derivatives/{ITEM}/proxy.mp4", io.BytesIO(b"proxy"))
    with pytest.raises(KeyRefused):
        vault.remove_original(f"derivatives/{ITEM}/proxy.mp4")
    with pytest.raises(KeyError):
        vault.remove_original("originals/none")


def test_a_legal_hold_on_a_missing_original_is_a_key_error(vault: Vault) -> None:
    with pytest.raises(KeyError):
        vault.legal_hold("originals/none", True)


def test_a_sealed_original_goes_when_the_storage_allows_it(vault: Vault) -> None:
    put_original(vault, "originals/one", b"one")
    put_original(vault, "originals/one-more", b"same prefix, another original")
    vault.seal("originals/one")
    if isinstance(vault, S3Vault):
        # Compliance retention: nobody removes it before its date, not even for a disposal.
        with pytest.raises(StillRetained) as kept:
            vault.remove_original("originals/one")
        assert kept.value.retain_until is not None
        assert vault.stat("originals/one") is not None
        assert vault.legal_hold("originals/one", True) is True
        assert vault.legal_hold("originals/one", False) is True
    else:
        assert vault.legal_hold("originals/one", True) is False  # the local vault has none
        vault.remove_original("originals/one")  # the read-only file goes
        assert vault.stat("originals/one") is None
    assert vault.stat("originals/one-more") is not None
