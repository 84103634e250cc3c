"""Leases on an item's processing: one worker at a time runs a step of an item, and a worker
that dies mid-step is noticed and replaced.

Celery cannot give this alone. With late acknowledgement a task whose whole worker died
(main process and pool) stays unacknowledged until Redis's visibility timeout, and a timeout
short enough to be prompt hands a long transcode that is still running to a second worker.
So the item's row says who runs its step and until when (``lease_holder``, ``lease_step``,
``lease_expires_at``); the holder renews the lease while the step runs (a heartbeat thread).

- A delivery for an item whose lease is live is dropped: someone is on it.
- A lease past its end belongs to a worker that is gone: the step is taken over, by the
  first delivery to come (a redelivered message) or by the upkeep's requeue
  (:func:`expired`, :func:`free_expired`), and counted as a start of the item's processing.
- Every commit of a step's results locks the item's row and checks that this run still
  holds the lease (:func:`transcode.fence.guard`); a run whose lease was taken over
  commits nothing.

Lease times come from the database's clock on PostgreSQL (workers on several hosts compare
them), the local clock on SQLite (one host).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from evidence.models import Item, utcnow
from evidence.runtime import Runtime
from transcode import fence
from transcode.attempts import ACTIVE, exhausted_reason
from transcode.failing import fail_in
from transcode.fence import Lease

log = logging.getLogger(__name__)


class Claim(Enum):
    TAKEN = "taken"  # the lease was free (or freed by the upkeep after a death): the step is ours
    TAKEN_OVER = "taken over"  # its holder's lease had run out: the step is ours now
    HELD = "held"  # a live worker holds it: this delivery is not needed
    SETTLED = "settled"  # nothing more to do for the item (or it does not exist)
    EXHAUSTED = "exhausted"  # started too often: the item was failed instead


@dataclass(frozen=True)
class Outcome:
    claim: Claim
    holder: str | None = None  # the other run: the live holder (HELD), or a dead one (taken from or freed)
    step: str | None = None  # the step it held
    until: datetime | None = None  # when its lease ends or ended


def now(session: Session) -> datetime:
    if session.get_bind().dialect.name == "postgresql":
        # clock_timestamp(), not now(): the time of this statement, not of the transaction's start.
        found = session.scalar(select(func.clock_timestamp()))
        if isinstance(found, datetime):
            return found
    return utcnow()


def claim(rt: Runtime, lease: Lease, *, counts_as_start: bool) -> Outcome:
    """Take the item's lease for ``lease``'s run, if it may have it.

    ``counts_as_start``: this delivery begins the item's processing (the first step, not a
    retry). A takeover counts as a start too; both are bounded by ``max_processing_attempts``.
    A delivery that finds the lease free otherwise is the next step of a run, or a copy of
    one that finished: it is not a start, and a copy dropped for a live holder is not either
    (a redelivery is not a death, and must not be held against the item)."""
    with rt.db.transaction() as session:
        item = session.get(Item, lease.item_id, with_for_update=True)
        if item is None or item.state not in ACTIVE:
            return Outcome(Claim.SETTLED)
        at = now(session)
        previous = Outcome(Claim.HELD, item.lease_holder, item.lease_step, item.lease_expires_at)
        if item.lease_holder is not None and item.lease_expires_at is not None and item.lease_expires_at > at:
            return previous
        # Ran out: its holder is gone. (A holder named without an end is one the upkeep freed
        # after its death and counted already; it is named only so its leftovers can go.)
        taken_over = item.lease_holder is not None and item.lease_expires_at is not None
        if counts_as_start or taken_over:
            if item.attempts >= rt.settings.max_processing_attempts:
                _clear(item)
                fail_in(session, item, exhausted_reason(item.attempts))
                return Outcome(Claim.EXHAUSTED)
            item.attempts += 1
        item.lease_holder, item.lease_step = lease.holder, lease.step
        item.lease_expires_at = at + timedelta(seconds=rt.settings.lease_seconds)
    return Outcome(Claim.TAKEN_OVER if taken_over else Claim.TAKEN, previous.holder, previous.step, previous.until)


def renew(rt: Runtime, lease: Lease) -> bool:
    """Extend the lease; False when it is no longer this run's."""
    with rt.db.transaction() as session:
        until = now(session) + timedelta(seconds=rt.settings.lease_seconds)
        result = session.execute(
            update(Item).where(Item.id == lease.item_id, Item.lease_holder == lease.holder).values(lease_expires_at=until)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]  # an UPDATE's result has a row count


def release(rt: Runtime, lease: Lease) -> None:
    """Give the lease up (if it is still this run's): the item waits for its next step."""
    with rt.db.transaction() as session:
        session.execute(
            update(Item).where(Item.id == lease.item_id, Item.lease_holder == lease.holder)
            .values(lease_holder=None, lease_step=None, lease_expires_at=None)
        )


def _clear(item: Item) -> None:
    item.lease_holder, item.lease_step, item.lease_expires_at = None, None, None


# -- the run that holds a lease ---------------------------------------------------------------

@contextlib.contextmanager
def kept(rt: Runtime, lease: Lease) -> Iterator[Lease]:
    """Hold ``lease`` while the block runs: renewed by a heartbeat thread, checked by every
    commit of the run's results (:func:`transcode.fence.guard`), given up at the end."""
    stop = threading.Event()
    every = rt.settings.lease_seconds / 3
    beat = threading.Thread(target=_heartbeat, args=(rt, lease, every, stop), name=f"lease-{lease.tag}", daemon=True)
    beat.start()
    try:
        with fence.entered(lease):
            yield lease
    finally:
        stop.set()
        beat.join()
        release(rt, lease)


def _heartbeat(rt: Runtime, lease: Lease, every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        try:
            if not renew(rt, lease):
                log.warning("lost the lease on item %s (%s): another worker took the step over", lease.item_id, lease.step)
                lease.lost.set()
                return
        except Exception:  # the database may be down for a moment: try again on the next beat
            log.warning("could not renew the lease on item %s", lease.item_id, exc_info=True)


def remove_work_of(tmp_dir: Path, holder: str) -> int:
    """Remove the working folders a dead run left on this host (partial outputs, never
    stored or counted). None on another host: its scratch space is its own."""
    removed = 0
    for folder in tmp_dir.glob(f"work-{fence.tag_of(holder)}-*"):
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


# -- the upkeep's side ------------------------------------------------------------------------


def expired(rt: Runtime) -> list[str]:
    """Items in processing whose worker's lease has run out (the worker died mid-step)."""
    with rt.db.sessions() as session:
        at = now(session)
        return list(
            session.scalars(
                select(Item.id).where(
                    Item.state.in_(ACTIVE), Item.lease_holder.is_not(None), Item.lease_expires_at < at
                )
            )
        )


def free_expired(rt: Runtime, item_id: str) -> bool:
    """Free the run-out lease of an item, for it to be queued again; True if it may be.

    The start is counted when the queued task runs (as for any start), so a death taken over
    by its redelivered message instead is counted once, not twice. An item already started
    ``max_processing_attempts`` times is failed instead."""
    with rt.db.transaction() as session:
        item = session.get(Item, item_id, with_for_update=True)
        if item is None or item.state not in ACTIVE or item.lease_holder is None or item.lease_expires_at is None:
            return False
        if item.lease_expires_at >= now(session):
            return False  # renewed, or taken over, since it was found
        exhausted = item.attempts >= rt.settings.max_processing_attempts
        log.warning("item %s: the lease of %s on its %s step ran out at %s; %s", item_id, item.lease_holder,
                    item.lease_step, item.lease_expires_at.isoformat(),
                    "started too often, failing it" if exhausted else "queuing it again")
        if exhausted:
            _clear(item)
            fail_in(session, item, exhausted_reason(item.attempts))
            return False
        # Free, but still naming the dead holder: the run that takes the item next removes
        # what that one left in its working folder, if they share a host.
        item.lease_expires_at = None
        return True


def expire_freed(rt: Runtime, item_ids: list[str]) -> None:
    """Undo :func:`free_expired` for items that could not be queued: their leases end now
    again, so the next round finds them. Not one a run has taken meanwhile."""
    with rt.db.transaction() as session:
        session.execute(
            update(Item).where(Item.id.in_(item_ids), Item.lease_holder.is_not(None), Item.lease_expires_at.is_(None))
            .values(lease_expires_at=now(session))
        )


def free_all(rt: Runtime, item_ids: list[str]) -> None:
    """Free the leases of items whose runs cannot be live (the embedded worker at start)."""
    with rt.db.transaction() as session:
        session.execute(
            update(Item).where(Item.id.in_(item_ids)).values(lease_holder=None, lease_step=None, lease_expires_at=None)
        )
