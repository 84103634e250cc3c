"""``evidence serve --workers N``: N API processes on one port under uvicorn's supervisor,
on SQLite and on PostgreSQL. Each process answers on its own (the others stopped), uploads
work across them, and a process killed outright is replaced while the others carry on."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import requests

from tests.support.files import random_file
from tests.support.server import Server


def api_processes(server: Server) -> set[int]:
    """The supervisor's API processes (not the embedded worker or multiprocessing's helper)."""
    found = set()
    for child in psutil.Process(server.pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return found


def wait_for_processes(server: Server, count: int, started: int) -> set[int]:
    """``count`` API processes, once ``started`` of them have been started in all (each says
    so in the log when it is ready to serve)."""
    deadline = time.monotonic() + 180
    while True:
        found = api_processes(server)
        ready = server.log.read_text().count("Application startup complete.")
        if len(found) == count and ready >= started and _ready(server):
            return found
        assert time.monotonic() < deadline, f"API processes: {found}, {ready} started"
        time.sleep(0.2)


def _ready(server: Server) -> bool:
    try:
        return requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
    except requests.RequestException:
        return False


def holds_a_write_lock(pid: int, database: Path) -> bool:
    """The process holds a POSIX write lock on the SQLite files: it is inside a transaction
    (every transaction here begins IMMEDIATE, so takes SQLite's one write lock, reads too; in
    WAL mode that lock is on the -shm file)."""
    files = [f for f in (database, database.with_name(database.name + "-shm")) if f.exists()]
    inodes = {str(os.stat(f).st_ino) for f in files}
    with open("/proc/locks") as locks:
        for line in locks:
            fields = line.split()  # id: POSIX ADVISORY WRITE pid maj:min:inode start end
            if fields[1:4] == ["POSIX", "ADVISORY", "WRITE"] and fields[4] == str(pid) \
                    and fields[5].rsplit(":", 1)[-1] in inodes:
                return True
    return False


@contextmanager
def stopped(pid: int, database: Path | None = None) -> Iterator[None]:
    """The process frozen (SIGSTOP): it takes no connection until it is let go. Kept short:
    the supervisor would replace a process that stays silent too long.

    On SQLite a process frozen inside a transaction (its upkeep signs checkpoints every few
    seconds) would hold the database's write lock and so block the other one too: that is
    SQLite, not the serving, so it is frozen again at a moment it holds none."""
    deadline = time.monotonic() + 30
    while True:
        os.kill(pid, signal.SIGSTOP)
        if database is None or not holds_a_write_lock(pid, database):
            break
        os.kill(pid, signal.SIGCONT)
        assert time.monotonic() < deadline, f"process {pid} kept SQLite's write lock for 30 s"
        time.sleep(0.05)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def answers_alone(server: Server, token: str) -> None:
    """Fresh connections, each answered in time by whichever process is not frozen."""
    for _ in range(5):
        answer = requests.get(f"{server.url}/api/v1/cases", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert answer.status_code == 200


def test_two_api_processes_on_one_port(database_url: str, tmp_path: Path) -> None:
    server = Server(tmp_path, {"EVIDENCE_DATABASE_URL": database_url} if database_url else {},
                    serve_args=("--workers", "2"))
    try:
        server.start(timeout=180)  # each process imports the whole app: slow on a busy machine
        first, second = sorted(wait_for_processes(server, 2, started=2))
        sqlite = None if database_url else server.data_dir / "evidence.db"
        token = server.token()
        case = server.case()

        # Each process serves on its own: with one frozen, the other answers every request.
        with stopped(first, sqlite):
            answers_alone(server, token)
        with stopped(second, sqlite):
            answers_alone(server, token)

        source = tmp_path / "cctv.bin"
        random_file(source, 12 * 1024 * 1024 + 7)
        args = ("--case", case, "--server", server.url, "--token", token, "--chunk-size", "5MiB")
        item = server.cli("upload", str(source), *args).stdout.split()[0]

        # A process killed outright: the supervisor starts another in its place.
        os.kill(first, signal.SIGKILL)
        now = wait_for_processes(server, 2, started=3)
        assert second in now and first not in now
        [replacement] = now - {second}
        with stopped(second, sqlite):  # the new process serves alone
            answers_alone(server, token)
        again = tmp_path / "statement.pdf"
        random_file(again, 300_000)
        other = server.cli("upload", str(again), *args).stdout.split()[0]
        listed = server.cli("items", "list", "--case", case, "--token", token).stdout
        assert item in listed and other in listed
        # The upkeep (checkpoints) went on, in one process at a time: the ledger verifies.
        server.cli("audit", "verify")
        children = api_processes(server)
    finally:
        server.stop()
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in (*children, replacement))
