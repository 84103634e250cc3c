"""transfer.lock.LocalLocker: one request at a time per upload, within a process (asyncio
locks) and between processes sharing a data folder (flock); a lock that stays taken is
423 Locked after the timeout, never a wait without end."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from transfer.errors import Locked
from transfer.lock import LocalLocker

pytestmark = pytest.mark.anyio

UPLOAD = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_requests_on_one_upload_take_turns(tmp_path: Path) -> None:
    locker = LocalLocker(tmp_path / "locks", timeout=5)
    events: list[str] = []

    async def request(name: str) -> None:
        async with locker.lock(UPLOAD):
            events.append(f"{name} in")
            await anyio.sleep(0.05)
            events.append(f"{name} out")

    async with anyio.create_task_group() as group:
        for name in ("a", "b", "c"):
            group.start_soon(request, name)
    assert len(events) == 6
    assert all(events[i].split()[0] == events[i + 1].split()[0] for i in range(0, 6, 2)), events


async def test_other_uploads_do_not_wait(tmp_path: Path) -> None:
    locker = LocalLocker(tmp_path / "locks", timeout=0.2)
    async with locker.lock(UPLOAD), locker.lock("f" * 32):
        pass


async def test_a_busy_upload_is_locked_after_the_timeout(tmp_path: Path) -> None:
    locker = LocalLocker(tmp_path / "locks", timeout=0.2)
    async with locker.lock(UPLOAD):
        with pytest.raises(Locked):
            async with locker.lock(UPLOAD):
                pass
    async with locker.lock(UPLOAD):  # free again
        pass


async def test_two_processes_on_one_folder_take_turns(tmp_path: Path) -> None:
    """Two lockers stand for two processes: each has its own asyncio locks, and only the
    flock on the shared folder keeps them apart."""
    first, second = LocalLocker(tmp_path / "locks", timeout=5), LocalLocker(tmp_path / "locks", timeout=0.3)
    async with first.lock(UPLOAD):
        with pytest.raises(Locked):
            async with second.lock(UPLOAD):
                pass
    async with second.lock(UPLOAD):
        pass


async def test_a_failed_request_releases_its_lock_and_nothing_is_left_behind(tmp_path: Path) -> None:
    locker = LocalLocker(tmp_path / "locks", timeout=0.2)
    with pytest.raises(RuntimeError):
        async with locker.lock(UPLOAD):
            raise RuntimeError("the store failed")
    async with locker.lock(UPLOAD):
        pass
    assert locker._locks == {}  # no lock object kept per upload ever seen
