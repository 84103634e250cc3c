"""/api/v1/links: share a case or chosen items with a reviewer; list; revoke (officer, admin)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from evidence.accounts import access
from evidence.cases import WRITERS, case_for, link_for
from evidence.http.api.body import Body
from evidence.http.deps import Db, link_gate, role
from evidence.http.views import LinkView, NewLinkView, link_view
from evidence.links.gate import Gate
from evidence.links.sharing import MAX_LIFETIME, Share, create_link, link_url, list_links, revoke_link
from evidence.models import Case, Link, User

router = APIRouter(prefix="/api/v1")
Sharer = Annotated[User, Depends(role(*WRITERS))]
Links = Annotated[Gate, Depends(link_gate)]


class NewLink(Body):
    # Every number bounded: past timedelta's or the database's range a value would be a 500.
    case: str = Field(max_length=64)
    to: str = Field(max_length=320)
    expires_in: int = Field(description="Seconds until the link expires (60 to 366 days)", ge=60,
                            le=int(MAX_LIFETIME.total_seconds()))
    items: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=10_000, description="Item ids; empty shares every item the case has now")
    download: bool = False
    passcode: bool = False
    max_uses: int | None = Field(default=None, ge=1, le=1_000_000)
    include_future: bool = Field(default=False, description="A case-wide share also shows items added later")


def _public_url(request: Request, gate: Gate) -> str:
    return gate.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")


def _view(gate: Gate, link: Link, case_ref: str, request: Request) -> LinkView:
    return link_view(link, link_url(gate.keys, link, _public_url(request, gate)), case_ref)


@router.post("/links", status_code=201, summary="Share by signed link; the passcode is shown once (officer, admin)")
def post_link(body: NewLink, request: Request, db: Db, user: Sharer, gate: Links) -> NewLinkView:
    case_for(db, user, body.case)  # officers share only from cases they are assigned to
    share = Share(body.case, body.to, timedelta(seconds=body.expires_in), body.items, body.download,
                  body.passcode, body.max_uses, body.include_future)
    link, passcode = create_link(db, gate.keys, share, access.actor_of(user), user, gate.clock())
    db.commit()
    return NewLinkView(**dict(_view(gate, link, body.case, request)), issued_passcode=passcode)


@router.get("/links", summary="A case's links (officer, admin)")
def get_links(case: str, request: Request, db: Db, user: Sharer, gate: Links) -> list[LinkView]:
    case_for(db, user, case)
    return [_view(gate, link, case, request) for link in list_links(db, case)]


@router.post("/links/{link_id}/revoke", summary="Revoke a link: the next request is refused (officer, admin)")
def post_revoke(link_id: str, request: Request, db: Db, user: Sharer, gate: Links) -> LinkView:
    link_for(db, user, link_id)
    link = revoke_link(db, link_id, access.actor_of(user), gate.clock())
    case = db.get_one(Case, link.case_id)
    db.commit()
    gate.forget(link_id)
    return _view(gate, link, case.ref, request)
