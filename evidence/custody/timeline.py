"""An item's custody timeline for the pages: each entry in plain words, with whether it is
proven included in the latest signed checkpoint. Who acted is shown as the continuity statement
shows it (`evidence.custody.statement.who`): an e-mail address or a service, never a host or an
OS account.

Each entry's inclusion is checked the way an outside verifier would: the checkpoint's
signature with the ledger's public key, then the entry's leaf hash (from its stored bytes)
and its inclusion proof against the signed root. An entry newer than the checkpoint is
"not yet in a signed checkpoint", which is not a fault: checkpoints follow within seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from audit import Checkpoint as SignedCheckpoint
from audit import VerificationError, merkle, verify_inclusion
from evidence.custody import ledger, statement
from evidence.custody.actions import Action
from evidence.custody.report import item_entries
from evidence.errors import NotFound
from evidence.models import Case, Item


@dataclass(frozen=True)
class Step:
    seq: int
    at: datetime
    action: str
    label: str
    actor: str
    details: dict[str, Any]
    # "included", "pending" (after the latest checkpoint) or "NOT INCLUDED: <why>"
    inclusion: str

    @property
    def note(self) -> str:
        """A few words more where the action alone is vague: which working copy, to whom."""
        details = self.details
        if self.action == Action.DERIVATIVE_CREATED:
            return statement.copy_kind(str(details.get("kind", "")))  # as the statement names it
        if self.action.startswith("link."):
            return str(details.get("to", ""))
        if self.action == Action.FIXITY_FAILED:
            what = str(details.get("object", "")) + (f" ({details['kind']})" if details.get("kind") else "")
            return f"{what}: {details.get('problem', '')}"
        return ""

    @property
    def proven(self) -> bool:
        return self.inclusion == "included"


@dataclass(frozen=True)
class Timeline:
    item: Item
    case: Case
    checkpoint_size: int | None
    steps: list[Step]


def timeline(session: Session, keys: ledger.Keys, item_id: str) -> Timeline:
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"item {item_id[:64]} does not exist")
    case = session.get_one(Case, item.case_id)
    signed = _latest_signed(session, keys)
    steps = []
    for row in item_entries(session, item, case):
        action, details = row.action, dict(row.details or {})
        # A refused request says so: "Link used" read as if a revoked link had been opened.
        label = statement.access_label(details) if action == Action.LINK_ACCESSED else statement.label(action)
        steps.append(Step(row.seq, row.at, action, label, statement.who(row.actor), details,
                          _inclusion(session, signed, row.seq, row.body, row.leaf_hash)))
    return Timeline(item, case, signed.size if signed is not None else None, steps)


def _latest_signed(session: Session, keys: ledger.Keys) -> SignedCheckpoint | None:
    stored = ledger.latest_checkpoint(session)
    if stored is None:
        return None
    return ledger.read_checkpoint(stored.note, keys.verifier, keys.origin)


def _inclusion(session: Session, signed: SignedCheckpoint | None, seq: int, body: bytes, stored_leaf: bytes) -> str:
    if signed is None or seq >= signed.size:
        return "pending"
    leaf = merkle.leaf_hash(body)
    if leaf != stored_leaf:
        return "NOT INCLUDED: the entry's bytes do not match its leaf hash"
    try:
        verify_inclusion(seq, signed.size, leaf, ledger.inclusion_proof(session, seq, signed.size), signed.root)
    except (VerificationError, ValueError) as error:
        return f"NOT INCLUDED: {error}"
    return "included"
