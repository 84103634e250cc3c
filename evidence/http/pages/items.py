"""An item's page: hashes, state, warnings, its working copies playing inline, the custody
timeline with each entry's inclusion in the latest signed checkpoint, and the reports.

The same rights as the API: whoever may see the item's case sees the page; working copies
are for the case's officers and admins; reports for auditors and admins."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence.accounts.access import actor_of
from evidence.accounts.websessions import Signed
from evidence.cases import may_see
from evidence.custody.report import FORMATS, export
from evidence.custody.timeline import timeline
from evidence.errors import NotFound
from evidence.http.deps import Db, runtime
from evidence.http.pages.cases import case_url
from evidence.http.pages.render import HEADERS, page
from evidence.http.pages.session import Page, require
from evidence.http.streaming import stream_object
from evidence.models import Case, Derivative, DerivativeKind, Item, Role

router = APIRouter(include_in_schema=False)
MEDIA_ROLES = (Role.OFFICER, Role.ADMIN)
REPORT_ROLES = (Role.AUDITOR, Role.ADMIN)
# Working copies a page shows inline; the rest (probe, manifest, HLS) are for the API.
INLINE = (DerivativeKind.PROXY, DerivativeKind.POSTER, DerivativeKind.CONTACT_SHEET, DerivativeKind.THUMBNAIL)


def visible_item(db: Session, signed: Signed, item_id: str) -> Item:
    """The item, if its case is one the user may see; else NotFound, the same either way."""
    item = db.get(Item, item_id[:64])
    if item is None or not may_see(db, signed.user, db.get_one(Case, item.case_id)):
        raise NotFound("item not found")
    return item


@router.get("/app/items/{item_id}")
def item_page(request: Request, item_id: str, db: Db, signed: Page) -> Response:
    require(signed, Role.OFFICER, Role.ADMIN, Role.AUDITOR)
    item = visible_item(db, signed, item_id)
    rt = runtime(request)
    story = timeline(db, rt.ledger_keys, item.id)
    copies = {d.kind: d for d in db.scalars(select(Derivative).where(Derivative.item_id == item.id))}
    return page("item.html", signed=signed, item=item, case=story.case, timeline=story, copies=copies,
                may_play=signed.user.role in MEDIA_ROLES, may_report=signed.user.role in REPORT_ROLES,
                case_url=case_url)


@router.get("/app/items/{item_id}/media/{kind}")
def item_media(request: Request, item_id: str, kind: str, db: Db, signed: Page) -> Response:
    require(signed, *MEDIA_ROLES)
    item = visible_item(db, signed, item_id)
    if kind not in INLINE:
        raise NotFound("no such working copy")
    derivative = db.scalar(select(Derivative).where(Derivative.item_id == item.id, Derivative.kind == kind))
    if derivative is None:
        raise NotFound("no such working copy")
    rt = runtime(request)
    response, _ = stream_object(request, rt.vault, {"Cache-Control": "private, no-store"}, derivative.key,
                                derivative.size, derivative.content_type, derivative.sha256, None)
    return response


@router.get("/app/items/{item_id}/report")
def item_report(item_id: str, db: Db, signed: Page, request: Request,
                format: Annotated[Literal["html", "pdf", "json", "case"], Query()] = "html") -> Response:
    require(signed, *REPORT_ROLES)
    item = visible_item(db, signed, item_id)
    data = export(db, runtime(request).ledger_keys, item.id, format, actor_of(signed.user))
    db.commit()
    suffix = {"html": "html", "pdf": "pdf", "json": "json", "case": "jsonld"}[format]
    headers = {**HEADERS, "Content-Disposition": f'attachment; filename="custody-{item.id}.{suffix}"'}
    return Response(data, media_type=FORMATS[format], headers=headers)
