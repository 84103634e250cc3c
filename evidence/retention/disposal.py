"""Four-eyes disposal of an item at the end of its life: one admin proposes, another approves,
and only then are its working copies removed and, once the storage's own retention allows
it, its original. The item's row stays (state ``disposed``), and the ledger's
``item.disposed`` entry keeps the original's hash and size, who proposed, who approved and
why: the record proves what existed and when it went.

Refused while the case is held, before its review date (evidence.retention.policy), by the
admin who proposed, and for an item already disposed of (but for an original the storage kept
at the time: approving again removes it once the storage allows). Only this item's storage keys are
touched: its original's key and ``derivatives/<item>/``; another item with the same bytes
has keys of its own.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from evidence import custody
from evidence.custody.actions import Action
from evidence.errors import Conflict, Forbidden, InvalidInput
from evidence.models import Case, CaseRetention, Derivative, Disposal, Item, ItemState, User, utcnow
from evidence.retention.state import retention_of
from evidence.vault import StillRetained, Vault


def _subject(case: Case, item: Item) -> dict[str, str]:
    return {"case": case.ref, "item": item.id}


def _check(item: Item, case: Case, row: CaseRetention, today: date) -> None:
    """Why the item may not be disposed of now, as the error to raise; nothing if it may."""
    if item.state == ItemState.DISPOSED:
        raise Conflict(f"item {item.id} has already been disposed of")
    if not ItemState(item.state).settled:
        raise Conflict(f"item {item.id} is {item.state}: it can be disposed of once processing has finished")
    if row.held_at is not None:
        raise Conflict(f"case {case.ref} is under a legal hold ({row.hold_reason}): nothing of it may be disposed of")
    if row.review_on is None:
        raise Conflict(f"case {case.ref} has no review date (outcome: {row.outcome}"
                       f"{', appeal open' if row.appeal_open else ''}): its material must be kept")
    if row.review_on > today:
        raise Conflict(f"case {case.ref} may not be reviewed for disposal before {row.review_on.isoformat()}")


def propose(session: Session, item: Item, user: User, actor: str, reason: str, today: date) -> Disposal:
    if not reason.strip():
        raise InvalidInput("a disposal needs a reason (--reason)")
    case = session.get_one(Case, item.case_id)
    _check(item, case, retention_of(session, case, lock=True), today)
    found = session.get(Disposal, item.id)
    if found is not None:
        raise Conflict(f"disposal of item {item.id} was already proposed by {found.proposed_by} on "
                       f"{found.proposed_at.date().isoformat()}; another admin approves it with --approve")
    proposal = Disposal(item_id=item.id, proposer_id=user.id, proposed_by=actor, reason=reason.strip())
    session.add(proposal)
    session.flush()
    custody.record(session, Action.DISPOSAL_PROPOSED, _subject(case, item), actor,
                   {"reason": proposal.reason, "sha256": (item.hashes or {}).get("sha256"), "size": item.size})
    return proposal


def approve(session: Session, vault: Vault, item: Item, user: User, actor: str, today: date) -> dict[str, Any] | None:
    """Approves a proposed disposal: None once the decision is made (the caller commits it,
    then calls :func:`carry_out` in a transaction of its own); what was removed, and what the
    storage still keeps, when this approval finishes an earlier one.

    In two transactions: first the decision (the approver, and the item ``disposed``: from then
    on nothing of it is served or audited), then the removal from storage and the
    ``item.disposed`` entry. Removing files inside the decision's transaction would leave, if its
    commit failed, an original gone with nothing on the record; this way a crash or failure
    after the decision leaves an approved disposal that approving again (another admin than the
    proposer, as before) carries on from."""
    case = session.get_one(Case, item.case_id)
    row = retention_of(session, case, lock=True)  # a hold placed meanwhile waits for this, or stops it
    proposal = session.get(Disposal, item.id, with_for_update=True)
    if item.state == ItemState.DISPOSED and proposal is not None and proposal.approved_by and proposal.disposed_at is None:
        _four_eyes(proposal, user)  # an approval cut short after its decision: carried on
        return _carry_out(session, vault, item, case, proposal, actor)
    if item.state == ItemState.DISPOSED and proposal is not None and proposal.original_removed_at is None:
        return _finish(session, vault, item, case, row, proposal, user, actor)
    _check(item, case, row, today)
    if proposal is None:
        raise Conflict(f"no disposal of item {item.id} has been proposed; an admin proposes it with --reason")
    _four_eyes(proposal, user)
    item.state, item.progress = ItemState.DISPOSED, None
    proposal.approver_id, proposal.approved_by = user.id, actor
    return None  # the decision: committed by the caller before anything leaves storage


def carry_out(session: Session, vault: Vault, item_id: str, actor: str) -> dict[str, Any]:
    """The second transaction of :func:`approve`: what was removed, and what the storage keeps."""
    item = session.get_one(Item, item_id)
    case = session.get_one(Case, item.case_id)
    retention_of(session, case, lock=True)
    proposal = session.get_one(Disposal, item.id, with_for_update=True)
    if proposal.disposed_at is not None:  # carried out already (two callers at once): the same answer
        raise Conflict(f"item {item.id} has already been disposed of")
    return _carry_out(session, vault, item, case, proposal, actor)


def _carry_out(session: Session, vault: Vault, item: Item, case: Case, proposal: Disposal, actor: str) -> dict[str, Any]:
    """The approved disposal's removals from storage, and its ``item.disposed`` entry."""
    copies = list(session.scalars(select(Derivative).where(Derivative.item_id == item.id).order_by(Derivative.kind)))
    removed_objects = vault.remove_working_copies(item.id)
    session.execute(delete(Derivative).where(Derivative.item_id == item.id))
    kept_until, kept_why = None, None
    try:
        vault.remove_original(item.storage_key)  # last: the working copies can be made again, it cannot
    except StillRetained as kept:
        kept_until, kept_why = kept.retain_until, kept.message
    except KeyError:
        kept_why = "the original was not found in storage"
    now = utcnow()
    removed = kept_why is None
    proposal.disposed_at = now
    proposal.original_removed_at = now if removed else None
    result = {
        "item": item.id, "case": case.ref, "state": str(ItemState.DISPOSED),
        "sha256": (item.hashes or {}).get("sha256"), "size": item.size,
        "working_copies_removed": len(copies), "original_removed": removed,
        "original_kept_until": kept_until.isoformat() if kept_until else None, "original_kept_because": kept_why,
    }
    custody.record(session, Action.ITEM_DISPOSED, _subject(case, item), actor, {
        "sha256": result["sha256"], "hashes": dict(item.hashes or {}), "size": item.size, "filename": item.filename,
        "reason": proposal.reason, "proposed_by": proposal.proposed_by,
        "proposed_at": proposal.proposed_at.isoformat(), "approved_by": proposal.approved_by,
        "working_copies": [{"kind": d.kind, "sha256": d.sha256, "size": d.size} for d in copies],
        "storage_objects_removed": removed_objects + (1 if removed else 0),
        "original_removed": removed, "original_kept_until": result["original_kept_until"],
        "original_kept_because": kept_why,
    })
    return result


def _four_eyes(proposal: Disposal, user: User) -> None:
    if proposal.proposer_id == user.id:
        raise Forbidden("four eyes: the admin who proposed a disposal cannot approve it; another admin approves")


def _finish(session: Session, vault: Vault, item: Item, case: Case, row: CaseRetention, proposal: Disposal,
            user: User, actor: str) -> dict[str, Any]:
    """An approved disposal whose original the storage still kept: its original goes now,
    if the storage lets it (again another admin than the proposer, and no hold since)."""
    if row.held_at is not None:
        raise Conflict(f"case {case.ref} is under a legal hold ({row.hold_reason}): nothing of it may be disposed of")
    _four_eyes(proposal, user)
    found = "removed"
    try:
        vault.remove_original(item.storage_key)
    except StillRetained as kept:
        raise Conflict(f"item {item.id} was disposed of, but the storage still keeps its original: {kept.message}") \
            from None
    except KeyError:
        found = "not found in storage"
    proposal.original_removed_at = utcnow()
    custody.record(session, Action.ITEM_DISPOSED, _subject(case, item), actor, {
        "sha256": (item.hashes or {}).get("sha256"), "hashes": dict(item.hashes or {}), "size": item.size,
        "filename": item.filename, "reason": proposal.reason, "proposed_by": proposal.proposed_by,
        "proposed_at": proposal.proposed_at.isoformat(), "approved_by": proposal.approved_by,
        "original_removed_by": actor, "working_copies": [], "storage_objects_removed": int(found == "removed"),
        "original_removed": True, "original": found, "completes": "the original the storage kept at the disposal",
    })
    return {"item": item.id, "case": case.ref, "state": str(ItemState.DISPOSED),
            "sha256": (item.hashes or {}).get("sha256"), "size": item.size, "working_copies_removed": 0,
            "original_removed": True, "original_kept_until": None, "original_kept_because": None}


def disposal_message(result: dict[str, Any]) -> str:
    """One line for a person: what went, and what the storage still keeps."""
    said = f"item {result['item']} disposed of: {result['working_copies_removed']} working cop(ies) removed; "
    if result["original_removed"]:
        return said + "original removed"
    until = f" until {result['original_kept_until']}" if result["original_kept_until"] else ""
    return said + f"the ORIGINAL IS STILL STORED{until} ({result['original_kept_because']}); nothing of it is served"
