"""/api/v1/retention: a case's outcome under the CPIA code (the assigned officer, or an admin),
legal holds and four-eyes disposal (admins), what is due for review (auditors, admins).
The rules are evidence.retention's, the same as the command line's."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import Field

from evidence.accounts import access
from evidence.cases import WRITERS, case_for, item_for
from evidence.http.api.body import Body
from evidence.http.deps import Db, role, runtime
from evidence.http.views import View
from evidence.models import Role, User, utcnow
from evidence.retention import disposal, holds, policy, state
from evidence.retention.due import due
from evidence.runtime import Runtime

router = APIRouter(prefix="/api/v1/retention")
Recorder = Annotated[User, Depends(role(*WRITERS))]
Admin = Annotated[User, Depends(role(Role.ADMIN))]
Auditor = Annotated[User, Depends(role(Role.AUDITOR, Role.ADMIN))]
Rt = Annotated[Runtime, Depends(runtime)]


class RetentionView(View):
    case: str
    outcome: policy.Outcome
    decided_on: date | None
    release_on: date | None
    appeal_open: bool
    review_on: date | None = Field(description="The first day the case may be reviewed for disposal; null: kept")
    held: bool
    hold_reason: str | None
    held_at: str | None


class DueView(View):
    case: str
    outcome: policy.Outcome
    review_on: date | None
    item: str | None
    state: str | None
    size: int | None
    filename: str | None
    proposed_by: str | None = Field(description="Who proposed its disposal, awaiting another admin's approval")


class DisposedView(View):
    item: str
    case: str
    state: str
    sha256: str | None
    size: int
    working_copies_removed: int
    original_removed: bool
    original_kept_until: str | None
    original_kept_because: str | None


class ProposedView(View):
    item: str
    proposed_by: str
    reason: str


class OutcomeBody(Body):
    case: str = Field(max_length=64)
    event: policy.Event
    on: date | None = Field(default=None, description="The day of the decision (for convicted, of the conviction); today")
    release_on: date | None = Field(default=None, description="Convicted: the day of release from custody or hospital")


class HoldBody(Body):
    case: str = Field(max_length=64)
    reason: str = Field(min_length=1, max_length=2000)


class ReleaseBody(Body):
    case: str = Field(max_length=64)


class ProposalBody(Body):
    item: str = Field(max_length=64)
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/outcome", summary="Record a case's outcome; the review date follows (assigned officer, admin)")
def post_outcome(body: OutcomeBody, db: Db, user: Recorder, rt: Rt) -> RetentionView:
    case = case_for(db, user, body.case)
    row = state.record_outcome(db, case, body.event, body.on or utcnow().date(), body.release_on,
                               state.periods_of(rt.settings), access.actor_of(user))
    db.commit()
    return RetentionView(**state.view(case, row))


@router.post("/hold", summary="Place a legal hold on a case: no disposal while it stands (admin)")
def post_hold(body: HoldBody, db: Db, user: Admin, rt: Rt) -> RetentionView:
    case = case_for(db, user, body.case)
    row = holds.hold(db, rt.vault, case, body.reason, access.actor_of(user))
    db.commit()
    return RetentionView(**state.view(case, row))


@router.post("/release", summary="Release a case's legal hold (admin)")
def post_release(body: ReleaseBody, db: Db, user: Admin, rt: Rt) -> RetentionView:
    case = case_for(db, user, body.case)
    row = holds.release(db, rt.vault, case, access.actor_of(user))
    db.commit()
    return RetentionView(**state.view(case, row))


@router.get("/due", summary="Cases past their review date with no hold, and their items (auditor, admin)")
def get_due(db: Db, user: Auditor) -> list[DueView]:
    return [DueView(**row) for row in due(db, utcnow().date())]


@router.post("/disposals", status_code=201, summary="Propose an item's disposal; another admin approves (admin)")
def post_disposal(body: ProposalBody, db: Db, user: Admin) -> ProposedView:
    item = item_for(db, user, body.item)
    found = disposal.propose(db, item, user, access.actor_of(user), body.reason, utcnow().date())
    db.commit()
    return ProposedView(item=found.item_id, proposed_by=found.proposed_by, reason=found.reason)


@router.post("/disposals/{item_id}/approve",
             summary="Approve another admin's proposal: the item's copies are removed (admin)")
def post_approval(item_id: str, db: Db, user: Admin, rt: Rt) -> DisposedView:
    item = item_for(db, user, item_id)
    result = disposal.approve(db, rt.vault, item, user, access.actor_of(user), utcnow().date())
    db.commit()  # the decision, before anything leaves storage (disposal.approve says why)
    if result is None:
        result = disposal.carry_out(db, rt.vault, item.id, access.actor_of(user))
        db.commit()
    return DisposedView(**result)
