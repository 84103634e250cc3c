"""An item's CPU-time budget: worked out from its media, spent across every child that decodes it,
and charged atomically when workers charge it at once. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from evidence.models import ItemState
from evidence.runtime import Runtime
from tests.transcode.conftest import MakeItem, item
from transcode.budget import charge, item_budget, limits_for
from transcode.errors import MediaFailure
from transcode.limits import DATA_RATE_FLOOR, HD_PIXELS, budget_seconds


@pytest.fixture
def priced(rt: Runtime) -> Runtime:
    rt.settings = rt.settings.model_copy(
        update={"cpu_budget_base_seconds": 100.0, "cpu_budget_per_media_second": 2.0, "decoder_memory_bytes": 1 << 30}
    )
    return rt


def test_the_budget_follows_the_footage(priced: Runtime, make_item: MakeItem) -> None:
    unprobed = make_item(ItemState.PROCESSING, size=10**9)
    minute_hd = make_item(ItemState.PROCESSING, size=10**9, media={"duration": 60.0, "width": 1920, "height": 1080})
    minute_4k = make_item(ItemState.PROCESSING, size=10**9, media={"duration": 60.0, "width": 3840, "height": 2160})
    assert item_budget(priced, item(priced, unprobed)) == 100.0
    assert item_budget(priced, item(priced, minute_hd)) == 100.0 + 2.0 * 60
    assert item_budget(priced, item(priced, minute_4k)) == 100.0 + 2.0 * 60 * (3840 * 2160 / HD_PIXELS)


def test_a_declared_duration_counts_only_as_far_as_the_bytes_could_hold(priced: Runtime, make_item: MakeItem) -> None:
    # A 40 kB file claiming ten hours is credited ten seconds.
    liar = make_item(ItemState.PROCESSING, size=10 * DATA_RATE_FLOOR, media={"duration": 36000.0})
    assert item_budget(priced, item(priced, liar)) == 100.0 + 2.0 * 10
    assert item_budget(priced, item(priced, liar)) == budget_seconds(
        base=100.0, per_media_second=2.0, duration=36000.0, width=None, height=None, size=10 * DATA_RATE_FLOOR
    )


def test_each_child_gets_what_is_left_until_it_is_spent(priced: Runtime, make_item: MakeItem) -> None:
    item_id = make_item(ItemState.PROCESSING, size=10**9, media={"duration": 60.0, "width": 640, "height": 480})
    first = limits_for(priced, item_id)
    assert (first.memory_bytes, first.cpu_seconds, first.budget_seconds) == (1 << 30, 220.0, 220.0)
    charge(priced, item_id, 200.5)
    second = limits_for(priced, item_id)
    assert (second.cpu_seconds, second.budget_seconds) == (pytest.approx(19.5), 220.0)
    charge(priced, item_id, 19.5)
    with pytest.raises(MediaFailure, match=r"^stopped: used its CPU-time budget of 220 s$"):
        limits_for(priced, item_id)


def test_nothing_used_is_nothing_charged(priced: Runtime, make_item: MakeItem) -> None:
    item_id = make_item(ItemState.PROCESSING, cpu_seconds=3.0)
    charge(priced, item_id, 0.0)
    charge(priced, item_id, -1.0)  # a clock that stepped back charges nothing, never credits
    assert item(priced, item_id).cpu_seconds == 3.0


def test_charges_made_at_once_all_count(priced: Runtime, make_item: MakeItem) -> None:
    """Children of one item reaped by different workers at the same moment (a redelivered step
    beside the one still running): the account adds up in the database, not read-modify-write."""
    item_id = make_item(ItemState.PROCESSING)
    barrier = threading.Barrier(4)

    def child() -> None:
        barrier.wait()
        for _ in range(5):
            charge(priced, item_id, 1.25)

    threads = [threading.Thread(target=child) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert item(priced, item_id).cpu_seconds == pytest.approx(4 * 5 * 1.25)
