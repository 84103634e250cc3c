"""What may be reviewed for disposal: cases past their review date with no legal hold, and
their items not yet disposed of (with any disposal already proposed, for the second admin), and
those disposed of whose original the storage still kept then."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from evidence.models import Case, CaseRetention, Disposal, Item, ItemState


def due(session: Session, today: date) -> list[dict[str, Any]]:
    cases = session.execute(
        select(Case, CaseRetention).join(CaseRetention, CaseRetention.case_id == Case.id)
        .where(CaseRetention.review_on <= today, CaseRetention.held_at.is_(None))
        .order_by(CaseRetention.review_on, Case.ref))
    rows = []
    for case, retention in cases:
        base = {"case": case.ref, "outcome": retention.outcome, "review_on": retention.review_on.isoformat()
                if retention.review_on else None}
        items = session.execute(
            select(Item, Disposal.proposed_by).outerjoin(Disposal, Disposal.item_id == Item.id)
            .where(Item.case_id == case.id,
                   # a disposed item whose original the storage kept: approving again removes it
                   or_(Item.state != ItemState.DISPOSED, Disposal.original_removed_at.is_(None)))
            .order_by(Item.created_at))
        found = [{**base, "item": item.id, "state": item.state, "size": item.size, "filename": item.filename,
                  "proposed_by": proposed_by} for item, proposed_by in items]
        rows += found or [{**base, "item": None, "state": None, "size": None, "filename": None, "proposed_by": None}]
    return rows
