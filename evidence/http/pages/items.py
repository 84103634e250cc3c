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
from evidence.http.reviewer import copies
from evidence.http.reviewer.exhibits import exhibit_of, listing, part_of
from evidence.http.streaming import stream_object
from evidence.models import Case, Derivative, DerivativeKind, Item, Role

router = APIRouter(include_in_schema=False)
MEDIA_ROLES = (Role.OFFICER, Role.ADMIN)
REPORT_ROLES = (Role.AUDITOR, Role.ADMIN)
# Working copies a page shows inline; the rest (probe, manifest, HLS) are for the API.
INLINE = (DerivativeKind.PROXY, DerivativeKind.POSTER, DerivativeKind.CONTACT_SHEET, DerivativeKind.THUMBNAIL,
          DerivativeKind.VIEW, DerivativeKind.AUDIO, DerivativeKind.TEXT)
# Working copies made of many objects: a PDF's pages, the previews of an archive's entries.
PARTS = (DerivativeKind.PAGES, DerivativeKind.PREVIEWS)
_MEDIA_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
# A text working copy opened on its own is the file's own words: plain text in a sandbox.
_TEXT_HEADERS = {**_MEDIA_HEADERS, "Content-Security-Policy": "sandbox; default-src 'none'"}
TEXT_TYPE = "text/plain; charset=utf-8"


def visible_item(db: Session, signed: Signed, item_id: str) -> Item:
    """The item, if its case is one the user may see; else NotFound, the same either way."""
    item = db.get(Item, item_id[:64])
    if item is None or not may_see(db, signed.user, db.get_one(Case, item.case_id)):
        raise NotFound("item not found")
    return item


@router.get("/app/items/{item_id}")
def item_page(request: Request, item_id: str, db: Db, signed: Page,
              page_number: Annotated[str | None, Query(alias="page", max_length=12)] = None) -> Response:
    """``?page=K``: the page of a PDF's rendered pages, or of an archive's contents, shown."""
    require(signed, Role.OFFICER, Role.ADMIN, Role.AUDITOR)
    item = visible_item(db, signed, item_id)
    rt = runtime(request)
    story = timeline(db, rt.ledger_keys, item.id)
    made = {d.kind: d for d in db.scalars(select(Derivative).where(Derivative.item_id == item.id))}
    may_play = signed.user.role in MEDIA_ROLES
    exhibit = exhibit_of(rt.vault, item, made) if may_play else None
    number, contents = 1, None
    if exhibit is not None and exhibit.pages:
        found = copies.page_number(page_number, exhibit.pages)
        if found is None:
            raise NotFound("no such page")
        number = found
    elif exhibit is not None and (manifest := made.get(DerivativeKind.MANIFEST)) is not None:
        contents = listing(rt.vault, manifest, made.get(DerivativeKind.PREVIEWS), page_number)
        if contents is None and exhibit.entries is not None:
            raise NotFound("no such page")
    return page("item.html", signed=signed, item=item, case=story.case, timeline=story, copies=made,
                may_play=may_play, may_report=signed.user.role in REPORT_ROLES, case_url=case_url,
                ex=exhibit, number=number, contents=contents)


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
    text = derivative.kind == DerivativeKind.TEXT
    response, _ = stream_object(request, rt.vault, _TEXT_HEADERS if text else _MEDIA_HEADERS, derivative.key,
                                derivative.size, TEXT_TYPE if text else derivative.content_type, derivative.sha256,
                                None)
    return response


@router.get("/app/items/{item_id}/media/{kind}/{number}")
def item_media_part(request: Request, item_id: str, kind: str, number: str, db: Db, signed: Page) -> Response:
    """Page ``number`` of a PDF (kind ``pages``) or the preview of an archive's entry ``number``
    (kind ``previews``): looked up in the item's index, never used as a path."""
    require(signed, *MEDIA_ROLES)
    item = visible_item(db, signed, item_id)
    wanted = copies.number_of(number)
    index = db.scalar(select(Derivative).where(Derivative.item_id == item.id, Derivative.kind == kind)) \
        if kind in PARTS else None
    rt = runtime(request)
    found = part_of(rt.vault, index, wanted) if index is not None and wanted is not None else None
    if index is None or found is None:
        raise NotFound("no such working copy")
    response, _ = stream_object(request, rt.vault, _MEDIA_HEADERS, found.key(item.id, index.kind), found.size,
                                found.content_type, found.sha256, None)
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
