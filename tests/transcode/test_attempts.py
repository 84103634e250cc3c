"""Counting starts of an item's processing, and failing an item started too often: on SQLite and
PostgreSQL, with workers racing to start the same item."""

from __future__ import annotations

import threading

import pytest

from evidence.custody.actions import Action
from evidence.models import ItemState
from evidence.runtime import Runtime
from tests.transcode.conftest import MakeItem, actions, item
from transcode.attempts import exhausted_reason, may_restart, start


@pytest.fixture
def limited(rt: Runtime) -> Runtime:
    rt.settings = rt.settings.model_copy(update={"max_processing_attempts": 3})
    return rt


def test_each_start_counts_until_the_limit_then_the_item_fails(limited: Runtime, make_item: MakeItem) -> None:
    item_id = make_item()
    assert [start(limited, item_id) for _ in range(3)] == [True, True, True]
    assert item(limited, item_id).attempts == 3
    assert start(limited, item_id) is False
    failed = item(limited, item_id)
    assert failed.state == ItemState.FAILED and failed.attempts == 3
    assert failed.reason == exhausted_reason(3)
    assert start(limited, item_id) is False  # failed already: no second record
    assert actions(limited, item_id) == [Action.ITEM_FAILED]


@pytest.mark.parametrize("state", [ItemState.READY, ItemState.FAILED, ItemState.QUARANTINED, ItemState.UPLOADING])
def test_an_item_not_waiting_for_processing_is_not_started(rt: Runtime, make_item: MakeItem, state: ItemState) -> None:
    item_id = make_item(state)
    assert start(rt, item_id) is False
    assert item(rt, item_id).attempts == 0 and item(rt, item_id).state == state
    assert actions(rt, item_id) == []


def test_a_missing_item_is_not_started(rt: Runtime) -> None:
    assert start(rt, "0" * 32) is False
    assert may_restart(rt, ["0" * 32]) == []


def test_a_processing_item_counts_its_restart(rt: Runtime, make_item: MakeItem) -> None:
    item_id = make_item(ItemState.PROCESSING, attempts=1)
    assert start(rt, item_id) is True
    assert item(rt, item_id).attempts == 2


def test_may_restart_keeps_those_that_may_and_fails_those_started_too_often(
    limited: Runtime, make_item: MakeItem
) -> None:
    fresh, halfway, exhausted, ready = (
        make_item(), make_item(ItemState.PROCESSING, attempts=2), make_item(ItemState.PROCESSING, attempts=3),
        make_item(ItemState.READY),
    )
    assert may_restart(limited, [fresh, exhausted, halfway, ready, "0" * 32]) == [fresh, halfway]
    # Deciding is not starting: the counts are those of the starts themselves.
    assert [item(limited, i).attempts for i in (fresh, halfway)] == [0, 2]
    assert item(limited, exhausted).state == ItemState.FAILED
    assert item(limited, exhausted).reason == exhausted_reason(3)
    assert actions(limited, exhausted) == [Action.ITEM_FAILED]
    assert item(limited, ready).state == ItemState.READY


def test_workers_racing_to_start_an_item_start_it_no_more_than_the_limit(limited: Runtime, make_item: MakeItem) -> None:
    """Redelivered copies of one task reach several workers at once: the row lock lets exactly
    ``max_processing_attempts`` of them through and fails the item once."""
    item_id = make_item()
    barrier = threading.Barrier(6)
    results: list[bool] = []

    def worker() -> None:
        barrier.wait()
        results.append(start(limited, item_id))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == [False, False, False, True, True, True]
    assert item(limited, item_id).attempts == 3
    assert item(limited, item_id).state == ItemState.FAILED
    assert actions(limited, item_id) == [Action.ITEM_FAILED]


def test_the_reason_reads_as_a_person_writes_it() -> None:
    assert exhausted_reason(1).startswith("processing stopped after 1 attempt: each was interrupted")
    assert exhausted_reason(3).startswith("processing stopped after 3 attempts: each was interrupted")
    assert "the worker stopped or crashed while processing this file" in exhausted_reason(3)
