"""One object checked against a real local vault: its bytes, its protection, its parts; and
nothing a stored value says becomes a path outside the vault."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

from evidence import workingcopies
from evidence.fixity.check import (
    DIFFERS,
    MISSING,
    NOT_WRITE_ONCE,
    UNREADABLE,
    Policy,
    Target,
    check,
)
from evidence.fixity.pace import Pace
from evidence.vault.local import LocalVault
from evidence.vault.readback import LocalReadback
from tests.evidence.vault.conftest import local_vault

__all__ = ["local_vault"]  # the vault tests' fixture: a real local vault in a temporary folder

ITEM = "0" * 31 + "1"
NOW = datetime(2026, 11, 30, tzinfo=UTC)


def _store(vault: LocalVault, key: str, data: bytes, sealed: bool = False) -> Target:
    path = vault.root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if sealed:
        vault.seal(key)
    return Target("item" if sealed else "derivative", "x" * 32, ITEM, "OP-1", key, hashlib.sha256(data).hexdigest(),
                  len(data), NOW, None if sealed else "proxy")


def _check(vault: LocalVault, target: Target):  # type: ignore[no-untyped-def]
    return check(target, LocalReadback(vault), Pace(0), Policy(30), NOW)


def test_an_untouched_sealed_original_passes(local_vault: LocalVault) -> None:
    target = _store(local_vault, f"originals/{ITEM}/clip.mov", b"footage" * 1000, sealed=True)
    done = _check(local_vault, target)
    assert done.problems == [] and done.bytes == 7000


def test_a_changed_byte_and_a_writable_original_are_both_found(local_vault: LocalVault) -> None:
    target = _store(local_vault, f"originals/{ITEM}/clip.mov", b"footage" * 1000, sealed=True)
    path = local_vault.root / target.key
    os.chmod(path, 0o644)
    path.write_bytes(b"F" + path.read_bytes()[1:])
    found = {p.problem: p for p in _check(local_vault, target).problems}
    assert set(found) == {DIFFERS, NOT_WRITE_ONCE}
    assert found[DIFFERS].expected == {"sha256": target.sha256, "size": 7000}
    assert found[DIFFERS].found == {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "size": 7000}
    assert found[NOT_WRITE_ONCE].found == {"protection": "writable"}


def test_a_missing_object_is_found_missing(local_vault: LocalVault) -> None:
    target = _store(local_vault, f"derivatives/{ITEM}/proxy-1.mp4", b"proxy")
    os.unlink(local_vault.root / target.key)
    [problem] = _check(local_vault, target).problems
    assert (problem.object, problem.kind, problem.problem) == ("working copy", "proxy", MISSING)


def _pages_index(vault: LocalVault, pages: list[bytes]) -> Target:
    parts = []
    for number, data in enumerate(pages, 1):
        page = workingcopies.Page(hashlib.sha256(data).hexdigest(), len(data), "image/png", number, 10, 10)
        path = vault.root / page.key(ITEM, "pages")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        parts.append(page)
    index = workingcopies.pages_index(len(pages), parts)
    target = _store(vault, f"derivatives/{ITEM}/pages-1.json", index)
    return Target(**{**target.__dict__, "kind": "pages"})


def test_each_page_of_a_pdfs_working_copy_is_checked_by_its_index(local_vault: LocalVault) -> None:
    target = _pages_index(local_vault, [b"page one", b"page two", b"page three"])
    done = _check(local_vault, target)
    assert done.problems == [] and done.parts == 3
    two = hashlib.sha256(b"page two").hexdigest()
    (local_vault.root / f"derivatives/{ITEM}/pages/{two}.png").write_bytes(b"page 2!!")
    [problem] = _check(local_vault, target).problems
    assert (problem.kind, problem.part, problem.problem) == ("pages", two, DIFFERS)


def test_an_index_that_differs_is_not_trusted_to_name_parts(local_vault: LocalVault) -> None:
    target = _pages_index(local_vault, [b"page one"])
    (local_vault.root / target.key).write_bytes(b'{"format":"evidence-pages/1","page_count":0,"pages":[]}')
    done = _check(local_vault, target)
    assert [p.problem for p in done.problems] == [DIFFERS] and done.parts == 0


def test_no_stored_name_leads_outside_the_vault(local_vault: LocalVault, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_bytes(b"not evidence")
    target = _store(local_vault, f"derivatives/{ITEM}/hls-1/index.m3u8", b"#EXTM3U\n")
    # HLS segments as its recorded method names them: a hostile or damaged method names paths.
    segments = {"../../../outside.txt": hashlib.sha256(b"not evidence").hexdigest(),
                str(secret): hashlib.sha256(b"not evidence").hexdigest(),
                "link.m4s": hashlib.sha256(b"not evidence").hexdigest()}
    # ...and a link planted inside the vault that points out of it.
    os.symlink(secret, local_vault.root / f"derivatives/{ITEM}/hls-1/link.m4s")
    hls = Target(**{**target.__dict__, "kind": "hls", "method": {"segments": segments}})
    done = _check(local_vault, hls)
    assert done.bytes == len(b"#EXTM3U\n")  # nothing outside was read
    assert sorted((p.part, p.problem) for p in done.problems) == sorted(
        (name, UNREADABLE) for name in segments)
    assert all(p.found == {"reason": "not a storage key of this service"} for p in done.problems)
