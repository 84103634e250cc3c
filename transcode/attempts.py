"""How many times an item's processing has been started, and when to stop starting it.

Every start counts: the first hand-off after the upload, a re-queue of an item whose hand-off
was lost, a resume after a restart, a redelivery after a worker died. An item that keeps
killing its worker (or that is interrupted every time) would otherwise be started again on every
restart, for ever, and hold up the queue each time: past ``max_processing_attempts`` starts it
is failed instead.
"""

from __future__ import annotations

from evidence.models import Item, ItemState
from evidence.runtime import Runtime
from transcode.failing import fail_in

ACTIVE = (ItemState.RECEIVED, ItemState.PROCESSING)


def exhausted_reason(attempts: int) -> str:
    plural = "" if attempts == 1 else "s"
    return (
        f"processing stopped after {attempts} attempt{plural}: each was interrupted before it finished"
        " (the worker stopped or crashed while processing this file)"
    )


def start(rt: Runtime, item_id: str) -> bool:
    """Count a start of the item's processing. False when it must not go on: it is settled
    already, missing, or has been started ``max_processing_attempts`` times (it is failed)."""
    limit = rt.settings.max_processing_attempts
    with rt.db.transaction() as session:
        item = session.get(Item, item_id, with_for_update=True)
        if item is None or item.state not in ACTIVE:
            return False
        if item.attempts >= limit:
            fail_in(session, item, exhausted_reason(item.attempts))
            return False
        item.attempts += 1
        return True


def may_restart(rt: Runtime, item_ids: list[str]) -> list[str]:
    """Of the items about to be queued again, those that may be; the others are failed."""
    limit = rt.settings.max_processing_attempts
    allowed: list[str] = []
    for item_id in item_ids:
        with rt.db.transaction() as session:
            item = session.get(Item, item_id, with_for_update=True)
            if item is None or item.state not in ACTIVE:
                continue
            if item.attempts >= limit:
                fail_in(session, item, exhausted_reason(item.attempts))
                continue
        allowed.append(item_id)
    return allowed

