"""transfer.lane: calls run in order in one thread, the event loop waits only when the
backlog in bytes is over the limit, and after a failure nothing more runs."""

from __future__ import annotations

import threading

import pytest

from transfer.lane import Lane

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_calls_run_in_order_in_one_thread_and_count_their_bytes() -> None:
    lane = Lane(limit=10)
    seen: list[tuple[int, int]] = []
    try:
        for n in range(50):
            await lane.submit(lambda n=n: seen.append((n, threading.get_ident())), size=3)
        await lane.drain()
    finally:
        lane.close()
    assert [n for n, _ in seen] == list(range(50))
    assert len({thread for _, thread in seen}) == 1
    assert threading.get_ident() not in {thread for _, thread in seen}
    assert lane.done == 150


async def test_submit_waits_while_the_backlog_is_over_the_limit() -> None:
    """A slow stage holds the sender back: never more than the limit (plus the call just
    submitted) is queued, which is what keeps an upload's memory bounded."""
    lane = Lane(limit=4)
    gate = threading.Event()
    try:
        await lane.submit(gate.wait, size=3)
        await lane.submit(lambda: None, size=1)  # 4 queued: at the limit, no wait
        assert lane.done == 0
        releaser = threading.Timer(0.2, gate.set)
        releaser.start()
        await lane.submit(lambda: None, size=2)  # 6 > 4: waits for the oldest call
        assert gate.is_set() and lane.done >= 3
        await lane.drain()
    finally:
        lane.close()
    assert lane.done == 6


async def test_after_a_failure_nothing_more_runs_and_the_error_comes_back() -> None:
    lane = Lane(limit=100)
    ran: list[int] = []

    def fail() -> None:
        raise OSError(28, "No space left on device")

    try:
        await lane.submit(ran.append, 1, size=1)
        await lane.submit(fail, size=1)
        await lane.submit(ran.append, 2, size=1)  # may be queued before the failure is seen
        with pytest.raises(OSError, match="No space"):
            await lane.drain()
        with pytest.raises(OSError, match="No space"):
            await lane.submit(ran.append, 3, size=1)
        await lane.settle()  # waits, and does not raise
    finally:
        lane.close()
    assert ran == [1]
    assert lane.done == 1
