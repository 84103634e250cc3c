"""Signing secrets generated on first use: random, private, written whole, the same for every
process that asks at once, and never replaced once they exist."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from evidence.keys import load_or_create_secret, load_or_create_text


def test_a_secret_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "token.secret"
    first = load_or_create_secret(path)
    assert len(first) == 32 and first != bytes(32)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_secret(path) == first
    assert load_or_create_secret(tmp_path / "other.secret") != first  # random, not derived
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".new-")]  # no half-written leftovers


def test_a_short_secret_given_by_an_operator_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weak.secret"
    path.write_bytes(b"password")
    with pytest.raises(ValueError, match="shorter than 32 bytes"):
        load_or_create_secret(path)


def test_a_key_found_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "ledger.skey"
    path.write_text("PRIVATE+KEY+made+by+an+older+install")
    path.chmod(0o644)
    assert load_or_create_text(path, lambda: "never used") == "PRIVATE+KEY+made+by+an+older+install"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _secret_of(path: str) -> bytes:
    return load_or_create_secret(Path(path))


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    path = str(tmp_path / "keys" / "session.secret")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        found = pool.map(_secret_of, [path] * 8)
    assert len(set(found)) == 1 and found[0] == Path(path).read_bytes()
