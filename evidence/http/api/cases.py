"""/api/v1/cases and /api/v1/items. Officers see the cases they are assigned to (or
created here); auditors and admins see all; media (working copies) only officers and admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import Field
from sqlalchemy import select

from evidence.accounts import access
from evidence.cases import READERS, WRITERS, case_for, create_case, item_for, visible_cases
from evidence.errors import NotFound
from evidence.http.api.body import Body
from evidence.http.deps import Db, role, runtime
from evidence.http.reviewer.copies import number_of
from evidence.http.reviewer.exhibits import part_of
from evidence.http.streaming import MEDIA_RESPONSES, stream_object
from evidence.http.views import CaseView, ItemView, case_view, items_view
from evidence.models import Case, Derivative, DerivativeKind, Item, User
from evidence.runtime import Runtime

router = APIRouter(prefix="/api/v1")
Reader = Annotated[User, Depends(role(*READERS))]
Writer = Annotated[User, Depends(role(*WRITERS))]


class NewCase(Body):
    ref: str = Field(max_length=64)
    title: str | None = Field(default=None, max_length=500)


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/cases", summary="List cases: an officer's own, or all (officer, auditor, admin)")
def list_cases(db: Db, user: Reader) -> list[CaseView]:
    return [case_view(c) for c in db.scalars(visible_cases(user).order_by(Case.created_at))]


@router.post("/cases", status_code=201, summary="Create a case; an officer is assigned to it (officer, admin)")
def post_case(body: NewCase, db: Db, user: Writer) -> CaseView:
    # The session has already been used to authenticate; commit the case with its custody event.
    case = create_case(db, body.ref, body.title, access.actor_of(user), creator=user)
    db.commit()
    return case_view(case)


@router.get("/cases/{ref:path}", summary="One case (assigned officer, auditor, admin)")
def read_case(ref: str, db: Db, user: Reader) -> CaseView:
    return case_view(case_for(db, user, ref))


@router.get("/items", summary="Items of a case (assigned officer, auditor, admin)")
def list_items(request: Request, case: str, db: Db, user: Reader) -> list[ItemView]:
    found = case_for(db, user, case)
    items = db.scalars(select(Item).where(Item.case_id == found.id).order_by(Item.created_at))
    return items_view(db, list(items), _base_url(request))


@router.get("/items/{item_id}", summary="One item: state, hashes, derivatives (assigned officer, auditor, admin)")
def read_item(request: Request, item_id: str, db: Db, user: Reader) -> ItemView:
    return items_view(db, [item_for(db, user, item_id)], _base_url(request))[0]


@router.get("/items/{item_id}/derivatives/{kind}", summary="Download a working copy (assigned officer, admin)",
            response_class=Response, responses=MEDIA_RESPONSES)
def read_derivative(item_id: str, kind: str, request: Request, db: Db, user: Writer,
                    rt: Annotated[Runtime, Depends(runtime)]) -> Response:
    item_for(db, user, item_id)
    derivative = db.scalar(select(Derivative).where(Derivative.item_id == item_id, Derivative.kind == kind))
    if derivative is None:
        raise NotFound("no such working copy")
    # Range requests too, so a player can seek in a long proxy.
    response, _ = stream_object(request, rt.vault, {}, derivative.key, derivative.size,
                                derivative.content_type, derivative.sha256, None)
    return response


@router.get("/items/{item_id}/derivatives/{kind}/{number}",
            summary="One page of a PDF's pages (kind pages, from 1) or the preview of a ZIP's entry (kind previews, its "
                    "position in the manifest), as the working copy's index names it (assigned officer, admin)",
            response_class=Response, responses=MEDIA_RESPONSES)
def read_derivative_part(item_id: str, kind: str, number: str, request: Request, db: Db, user: Writer,
                         rt: Annotated[Runtime, Depends(runtime)]) -> Response:
    item = item_for(db, user, item_id)
    wanted = number_of(number)  # looked up in the index by number, never used as a path
    index = db.scalar(select(Derivative).where(Derivative.item_id == item.id, Derivative.kind == kind)) \
        if kind in (DerivativeKind.PAGES, DerivativeKind.PREVIEWS) and wanted is not None else None
    found = part_of(rt.vault, index, wanted) if index is not None and wanted is not None else None
    if index is None or found is None:
        raise NotFound("no such page or preview")
    response, _ = stream_object(request, rt.vault, {}, found.key(item.id, index.kind), found.size, found.content_type,
                                found.sha256, None)
    return response
