"""Legal holds: while a case is held nothing of it may be disposed of. On S3 the hold is also
set as Object Lock legal hold on each of the case's originals, which the storage itself then
refuses to delete, whatever the database says."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence import custody
from evidence.custody.actions import Action
from evidence.errors import Conflict, InvalidInput
from evidence.models import Case, CaseRetention, Disposal, Item, ItemState, utcnow
from evidence.retention.state import retention_of
from evidence.vault import Vault


def _originals(session: Session, case: Case) -> list[Item]:
    """The case's originals still in storage (a disposed item's may be, until its retention passes)."""
    query = (select(Item).outerjoin(Disposal, Disposal.item_id == Item.id)
             .where(Item.case_id == case.id, Item.state != ItemState.UPLOADING, Disposal.original_removed_at.is_(None))
             .order_by(Item.created_at))
    return list(session.scalars(query))


def _storage_holds(vault: Vault, items: list[Item], on: bool) -> str:
    """Sets or clears the storage's hold on each original; says what it did, for the record.
    An original missing from storage does not stop a hold (a fixity audit names it)."""
    applied, missing = [], []
    for item in items:
        try:
            applied.append(vault.legal_hold(item.storage_key, on))
        except KeyError:
            missing.append(item.id)
    gone = f"; not found in storage: {', '.join(missing)}" if missing else ""
    if not applied:
        return f"no originals stored{gone}"
    if all(applied):
        return f"S3 Object Lock legal hold {'ON' if on else 'OFF'} on {len(applied)} original(s){gone}"
    return f"none: the local vault has no legal holds; the hold is kept in the database{gone}"


def hold(session: Session, vault: Vault, case: Case, reason: str, actor: str) -> CaseRetention:
    if not reason.strip():
        raise InvalidInput("a legal hold needs a reason (--reason)")
    row = retention_of(session, case, lock=True)
    if row.held_at is not None:
        raise Conflict(f"case {case.ref} is already held ({row.hold_reason}) since {row.held_at.isoformat()}")
    items = _originals(session, case)
    # The storage first: if it fails, nothing is recorded and the admin tries again (an
    # object held twice is harmless; a hold recorded but not in storage would not be).
    storage = _storage_holds(vault, items, True)
    row.held_at, row.held_by, row.hold_reason, row.updated_at = utcnow(), actor, reason.strip(), utcnow()
    custody.record(session, Action.CASE_HELD, {"case": case.ref}, actor,
                   {"reason": row.hold_reason, "items": [item.id for item in items], "storage": storage})
    return row


def release(session: Session, vault: Vault, case: Case, actor: str) -> CaseRetention:
    row = retention_of(session, case, lock=True)
    if row.held_at is None:
        raise Conflict(f"case {case.ref} is not held")
    items = _originals(session, case)
    storage = _storage_holds(vault, items, False)
    reason = row.hold_reason
    row.held_at, row.held_by, row.hold_reason, row.updated_at = None, None, None, utcnow()
    custody.record(session, Action.CASE_RELEASED, {"case": case.ref}, actor,
                   {"held_for": reason, "items": [item.id for item in items], "storage": storage})
    return row
