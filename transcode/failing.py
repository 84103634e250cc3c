"""Ending an item's processing as ``failed``, with a plain reason for the officer and the record."""

from __future__ import annotations

from sqlalchemy.orm import Session

from evidence import custody
from evidence.custody.actions import Action
from evidence.models import Case, Item, ItemState
from evidence.runtime import Runtime
from transcode import fence


def subject(session: Session, item: Item) -> dict[str, str]:
    case = session.get_one(Case, item.case_id)
    return {"case": case.ref, "item": item.id}


def actor() -> str:
    return custody.system_actor("worker")


def fail_in(session: Session, item: Item, reason: str) -> None:
    """Fail ``item`` (locked by the caller) in the caller's transaction, unless it is settled."""
    if ItemState(item.state).settled:
        return
    item.state, item.reason, item.progress = ItemState.FAILED, reason, None
    custody.record(session, Action.ITEM_FAILED, subject(session, item), actor(), {"reason": reason})


def fail(rt: Runtime, item_id: str, reason: str) -> None:
    """The item cannot be processed: say why. Its original and hashes stay as they are.
    Not by a run whose step was taken over (LeaseLost): the run now holding it decides."""
    with rt.db.transaction() as session:
        item = session.get_one(Item, item_id, with_for_update=True)
        fence.guard(item)
        fail_in(session, item, reason)
