"""Failing an item: its state, its reason and one custody entry, together or not at all; an item
already settled is left as it is. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from evidence.custody.actions import Action
from evidence.models import CustodyEvent, Item, ItemState
from evidence.runtime import Runtime
from tests.transcode.conftest import CASE, MakeItem, actions, item
from transcode.failing import fail, fail_in


def test_a_failed_item_says_why_and_the_record_says_so_once(rt: Runtime, make_item: MakeItem) -> None:
    item_id = make_item(ItemState.PROCESSING, progress=42.0, hashes={"sha256": "ab" * 32})
    fail(rt, item_id, "no video frame could be decoded")
    failed = item(rt, item_id)
    assert (failed.state, failed.reason, failed.progress) == ("failed", "no video frame could be decoded", None)
    assert failed.hashes == {"sha256": "ab" * 32}  # the original's hashes are kept
    with rt.db.sessions() as session:
        [event] = session.scalars(select(CustodyEvent).where(CustodyEvent.item_id == item_id))
    assert event.action == Action.ITEM_FAILED
    assert event.subject == {"case": CASE, "item": item_id}
    assert event.actor == "system:worker"
    assert event.details == {"reason": "no video frame could be decoded"}


@pytest.mark.parametrize("state", [ItemState.READY, ItemState.FAILED, ItemState.QUARANTINED])
def test_a_settled_item_is_left_as_it_is(rt: Runtime, make_item: MakeItem, state: ItemState) -> None:
    item_id = make_item(state, reason="as it was")
    fail(rt, item_id, "processing stopped: the database could not be reached")
    assert (item(rt, item_id).state, item(rt, item_id).reason) == (state, "as it was")
    assert actions(rt, item_id) == []


def test_a_received_item_can_fail_before_it_is_processed(rt: Runtime, make_item: MakeItem) -> None:
    item_id = make_item(ItemState.RECEIVED)
    fail(rt, item_id, "processing stopped after 3 attempts: each was interrupted")
    assert item(rt, item_id).state == ItemState.FAILED
    assert actions(rt, item_id) == [Action.ITEM_FAILED]


def test_failing_twice_records_once(rt: Runtime, make_item: MakeItem) -> None:
    item_id = make_item(ItemState.PROCESSING)
    fail(rt, item_id, "first reason")
    fail(rt, item_id, "second reason")
    assert item(rt, item_id).reason == "first reason"
    assert actions(rt, item_id) == [Action.ITEM_FAILED]


def test_in_the_callers_transaction_the_failure_and_its_record_go_together(rt: Runtime, make_item: MakeItem) -> None:
    item_id = make_item(ItemState.PROCESSING)
    with pytest.raises(RuntimeError), rt.db.transaction() as session:
        row = session.get_one(Item, item_id, with_for_update=True)
        fail_in(session, row, "a reason never committed")
        raise RuntimeError("the caller's work failed after it")
    assert item(rt, item_id).state == ItemState.PROCESSING
    assert actions(rt, item_id) == []
