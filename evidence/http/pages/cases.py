"""The officer's pages: their cases, and a case's page (upload, items, sharing).

Every route resumes the session and checks the role and the case on every request, as the
API does: a case the user may not see answers exactly like one that does not exist."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from evidence.accounts.access import actor_of
from evidence.accounts.websessions import Signed
from evidence.cases import case_for, may_see, visible_cases
from evidence.durations import parse_duration
from evidence.errors import EvidenceError, InvalidInput, NotFound
from evidence.http.deps import Db, link_gate, runtime
from evidence.http.pages.render import page
from evidence.http.pages.session import Page, Script, check_csrf, require
from evidence.links.sharing import Share, create_link, link_url, list_links, revoke_link
from evidence.models import Case, Item, ItemState, Link, Role
from evidence.uploads import client_hash

router = APIRouter(include_in_schema=False)
SHARERS = (Role.OFFICER, Role.ADMIN)
UPLOADERS = (Role.OFFICER, Role.ADMIN)
CASE_VIEWERS = (Role.OFFICER, Role.ADMIN, Role.AUDITOR)


def case_url(ref: str) -> str:
    return "/app/cases/" + quote(ref, safe="")


@router.get("/app/")
def cases_page(db: Db, signed: Page) -> Response:
    cases = list(db.scalars(visible_cases(signed.user).order_by(Case.created_at.desc())))
    return page("cases.html", signed=signed, cases=cases, case_url=case_url)


def _items(db: Db, case: Case) -> list[Item]:
    return list(db.scalars(select(Item).where(Item.case_id == case.id).order_by(Item.created_at)))


def _live_links(db: Db, case: Case, now: datetime) -> list[Link]:
    return [link for link in list_links(db, case.ref) if link.revoked_at is None and link.expires_at > now]


def _case_page(request: Request, db: Db, signed: Signed, ref: str, status: int = 200, **extra: Any) -> Response:
    require(signed, *CASE_VIEWERS)
    case = case_for(db, signed.user, ref)
    rt = runtime(request)
    gate = link_gate(request)
    values: dict[str, Any] = {"new_link": None, "passcode": None, "share_error": "", "notice": "", **extra}
    return page(
        "case.html", status=status, signed=signed, case=case, items=_items(db, case),
        links=_live_links(db, case, gate.clock()) if signed.user.role in SHARERS else [],
        may_upload=signed.user.role in UPLOADERS, may_share=signed.user.role in SHARERS,
        chunk_size=rt.settings.web_chunk_size, refresh_url="/app/fragments/items?case=" + quote(ref, safe=""),
        case_url=case_url, settled=_settled, **values,
    )


@router.get("/app/cases/{ref:path}")
def case_page(request: Request, ref: str, db: Db, signed: Page, notice: str = "") -> Response:
    notices = {"revoked": "The link was revoked: it no longer opens."}
    return _case_page(request, db, signed, ref, notice=notices.get(notice, ""))


@router.get("/app/fragments/items")
def items_fragment(case: str, db: Db, signed: Script) -> Response:
    """The case's items table alone, for the case page's script to refresh."""
    require(signed, *CASE_VIEWERS)
    found = case_for(db, signed.user, case)
    return page("case_items.html", items=_items(db, found), settled=_settled)


def _settled(item: Item) -> bool:
    return ItemState(item.state).settled


@router.post("/app/links")
def share(
    request: Request, db: Db, signed: Page,
    case: Annotated[str, Form(max_length=64)],
    csrf: Annotated[str, Form(max_length=100)] = "",
    to: Annotated[str, Form(max_length=320)] = "",
    expires: Annotated[str, Form(max_length=20)] = "14d",
    download: Annotated[str, Form(max_length=10)] = "",
    passcode: Annotated[str, Form(max_length=10)] = "",
    max_uses: Annotated[str, Form(max_length=10)] = "",
    items: Annotated[list[str] | None, Form(max_length=10_000)] = None,
) -> Response:
    check_csrf(request, signed, csrf)
    require(signed, *SHARERS)
    case_for(db, signed.user, case)
    gate = link_gate(request)
    try:
        lifetime = parse_duration(expires)
        uses = int(max_uses) if max_uses.strip() else None
        chosen = [item_id[:64] for item_id in (items or [])]
        share = Share(case, to, lifetime, chosen, bool(download), bool(passcode), uses, include_future=False)
        link, issued = create_link(db, gate.keys, share, actor_of(signed.user), signed.user, gate.clock())
    except (ValueError, InvalidInput) as refused:
        db.rollback()
        message = refused.message if isinstance(refused, EvidenceError) else str(refused)
        return _case_page(request, db, signed, case, status=400, share_error=message)
    db.commit()
    public = gate.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    return _case_page(request, db, signed, case, new_link=link_url(gate.keys, link, public), passcode=issued,
                      notice=f"Link created for {link.recipient}. Copy it now: it is shown only once.")


@router.post("/app/links/{link_id}/revoke")
def revoke(request: Request, link_id: str, db: Db, signed: Page, csrf: Annotated[str, Form(max_length=100)] = ""
           ) -> Response:
    check_csrf(request, signed, csrf)
    require(signed, *SHARERS)
    found = db.get(Link, link_id[:64])
    case = db.get(Case, found.case_id) if found is not None else None
    if found is None or case is None or not may_see(db, signed.user, case):
        raise NotFound(f"link {link_id[:64]} does not exist")
    revoke_link(db, found.id, actor_of(signed.user), link_gate(request).clock())
    db.commit()
    link_gate(request).forget(found.id)
    return RedirectResponse(case_url(case.ref) + "?notice=revoked", status_code=303)


class ClientHash(BaseModel):
    sha256: str = Field(max_length=64)


@router.post("/app/uploads/{upload_id}/sha256")
def record_client_hash(request: Request, upload_id: str, body: ClientHash, db: Db, signed: Script) -> JSONResponse:
    """The browser's SHA-256 of a file it is uploading (or has uploaded)."""
    check_csrf(request, signed)
    require(signed, *UPLOADERS)
    outcome = client_hash.record(db, upload_id[:64], signed.user, body.sha256)
    db.commit()
    return JSONResponse({"state": outcome.state, "item": outcome.item, "matches": outcome.matches})
