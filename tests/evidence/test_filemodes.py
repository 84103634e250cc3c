"""The data dir, its keys and its database are the service user's alone: on a fresh start,
after an older install left them open, and for whatever the running server creates."""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path

import psutil
import pytest
import requests

from evidence.errors import NotPrivate
from evidence.filemodes import make_private, private_dir, private_tree
from tests.support.server import Server

SQLITE = ("evidence.db", "evidence.db-wal", "evidence.db-shm")


def open_to_others(root: Path) -> list[str]:
    """Everything under ``root`` (and itself) that group or others may use."""
    found = []
    for path in (root, *root.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077 and not path.is_symlink():
            found.append(f"{path.relative_to(root.parent)} {mode:04o}")
    return found


def umask_of(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return line.split()[1]
    raise AssertionError("no Umask line")


def start_loosely(server: Server) -> Server:
    """Start it from a process with the usual umask 022: whatever is private, the server made so."""
    previous = os.umask(0o022)
    try:
        return server.start()
    finally:
        os.umask(previous)


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def test_the_data_dir_is_private_when_new_and_after_an_older_install(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server({"EVIDENCE_EMBEDDED_WORKER": "true"}, start=False)
    data = server.data_dir
    # The CLI may be the first to touch the data dir (an operator bootstrapping an admin).
    server.cli("users", "add", "admin@force.police.uk", "--role", "admin", preexec_fn=lambda: os.umask(0o022))
    assert open_to_others(data) == []
    assert {p.name for p in data.iterdir()} >= {"keys", "evidence.db"}

    start_loosely(server)
    assert umask_of(server.pid) == "0077"
    worker = psutil.Process(server.pid).children()
    assert worker and all(umask_of(child.pid) == "0077" for child in worker)
    wait_for(data / "broker.db")  # made by the embedded worker
    # SQLite's log exists while a connection is open: the upkeep's first round opens one.
    wait_for(data / "evidence.db-wal")
    assert (data / "keys" / "links" / "session.secret").is_file()
    assert open_to_others(data) == []
    server.stop()

    # An older install: everything readable by all, including SQLite's companion files.
    for name in ("evidence.db-wal", "evidence.db-shm", "broker.db-journal"):
        (data / name).touch()
    for path in (data, *data.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    start_loosely(server)
    for name in SQLITE:  # the start-up's last connection closing removes SQLite's companions; the upkeep's brings them back
        wait_for(data / name)
    # The data dir shuts everything in it; the keys and the databases are private themselves
    # too (the vault's own folders are the vault's business: originals are sealed 0400).
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert open_to_others(data / "keys") == []
    assert [p for p in open_to_others(data) if p.startswith(("data/evidence.db", "data/broker.db", "data/keys"))] == []
    assert {stat.S_IMODE((data / name).stat().st_mode) for name in SQLITE} == {0o600}
    assert stat.S_IMODE((data / "keys" / "token.secret").stat().st_mode) == 0o600
    # It still works, with the keys it had.
    token = server.token("admin@force.police.uk", "admin")
    assert requests.get(f"{server.url}/api/v1/users", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200


def test_owner_bits_are_kept_and_symlinks_not_followed(tmp_path: Path) -> None:
    root = private_dir(tmp_path / "a" / "b")
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700  # missing parents too
    sealed, outside = root / "sealed", tmp_path / "outside"
    sealed.write_bytes(b"x")
    outside.write_bytes(b"y")
    sealed.chmod(0o444)
    outside.chmod(0o644)
    (root / "link").symlink_to(outside)
    private_tree(root)
    assert stat.S_IMODE(sealed.stat().st_mode) == 0o400
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644  # not ours to change through a link


def test_a_path_that_cannot_be_made_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    # A file of another user's, or on a read-only mount. The tests run as root, for whom
    # chmod always succeeds, so the refusal is stood in for.
    key = tmp_path / "token.secret"
    key.write_bytes(b"k" * 32)
    key.chmod(0o644)

    def refuse(path: object, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chmod", refuse)
    with pytest.raises(NotPrivate, match=r"token\.secret.*0644"):
        make_private(key)
    with caplog.at_level(logging.WARNING):
        make_private(key, strict=False)  # the operator's own file: reported, not fatal
    assert "could not be made private" in caplog.text


def test_a_shared_folder_is_refused_not_shut(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    with pytest.raises(NotPrivate, match="shared folder"):
        private_dir(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
