"""A case's retention row: its outcome and review date (evidence.retention.policy), and what
the command line and the API show of it."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from evidence import custody
from evidence.custody.actions import Action
from evidence.errors import InvalidInput
from evidence.models import Case, CaseRetention, utcnow
from evidence.retention import policy
from evidence.settings import Settings


def periods_of(settings: Settings) -> policy.Periods:
    return policy.Periods(nfa_days=settings.retention_nfa_days, acquitted_days=settings.retention_acquitted_days)


def retention_of(session: Session, case: Case, lock: bool = False) -> CaseRetention:
    """The case's row, made (pending, no hold) if it has none yet; ``lock``: taken for update,
    so two admins acting at once take turns."""
    found = session.get(CaseRetention, case.id, with_for_update=lock)
    if found is not None:
        return found
    try:
        with session.begin_nested():  # two first acts on a case at once: one row, the other waits for it
            session.add(CaseRetention(case_id=case.id, outcome=policy.Outcome.PENDING, appeal_open=False))
    except IntegrityError:
        pass
    return session.get_one(CaseRetention, case.id, with_for_update=lock, populate_existing=True)


def state_of(row: CaseRetention) -> policy.State:
    return policy.State(policy.Outcome(row.outcome), row.decided_on, row.release_on, row.appeal_open,
                        row.appeal_closed_on)


def record_outcome(session: Session, case: Case, event: policy.Event, on: date, release_on: date | None,
                   periods: policy.Periods, actor: str) -> CaseRetention:
    if on > utcnow().date():
        raise InvalidInput(f"{on.isoformat()} is in the future: record an outcome once it is decided")
    row = retention_of(session, case, lock=True)
    after = policy.apply(state_of(row), event, on, release_on)
    row.outcome, row.decided_on, row.release_on = after.outcome, after.decided_on, after.release_on
    row.appeal_open, row.appeal_closed_on = after.appeal_open, after.appeal_closed_on
    row.review_on = policy.review_date(after, periods)
    row.updated_at = utcnow()
    custody.record(session, Action.CASE_OUTCOME, {"case": case.ref}, actor, {
        "event": str(event), "on": on.isoformat(), "outcome": str(after.outcome),
        "release_on": _iso(after.release_on), "appeal_open": after.appeal_open,
        "review_on": _iso(row.review_on),
        "periods": {"nfa_days": periods.nfa_days, "acquitted_days": periods.acquitted_days},
    })
    return row


def view(case: Case, row: CaseRetention | None) -> dict[str, Any]:
    """What ``cases outcome|hold|release`` print and the API answers."""
    if row is None:
        return {"case": case.ref, "outcome": str(policy.Outcome.PENDING), "decided_on": None, "release_on": None,
                "appeal_open": False, "review_on": None, "held": False, "hold_reason": None, "held_at": None}
    return {"case": case.ref, "outcome": row.outcome, "decided_on": _iso(row.decided_on),
            "release_on": _iso(row.release_on), "appeal_open": row.appeal_open, "review_on": _iso(row.review_on),
            "held": row.held_at is not None, "hold_reason": row.hold_reason,
            "held_at": row.held_at.isoformat() if row.held_at else None}


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
