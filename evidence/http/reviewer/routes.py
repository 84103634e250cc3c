"""/s/{token}: what a reviewer with no account sees through a signed link.

Every request goes through the gate (:mod:`evidence.links.gate`); media comes from the
vault in blocks with HTTP Range, never whole into memory, or, with ``accel_redirect`` set and
a local vault, from nginx in front once the gate has admitted and recorded the request.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from evidence.custody.report import export
from evidence.http.deps import link_gate
from evidence.http.ranges import content_disposition
from evidence.http.reviewer import copies, pages
from evidence.http.reviewer.exhibits import exhibit_of, listing, part_of
from evidence.http.streaming import answer_without_reading, handoff_prefix, stream_object
from evidence.links.gate import COOKIE, Access, Client, Denied, Gate, PasscodeRequired, TooMany
from evidence.links.sharing import link_actor
from evidence.models import Derivative, DerivativeKind, Item, ItemState, Link

router = APIRouter(prefix="/s", include_in_schema=False)
# URL name -> derivative kind shown to reviewers (never the HLS folder, probe or manifest).
MEDIA = {"proxy": DerivativeKind.PROXY, "poster": DerivativeKind.POSTER, "contact-sheet": DerivativeKind.CONTACT_SHEET,
         "view": DerivativeKind.VIEW, "audio": DerivativeKind.AUDIO, "text": DerivativeKind.TEXT}
# URL name -> the index of a working copy made of many objects, each served on its own.
PARTS = {"pages": DerivativeKind.PAGES, "previews": DerivativeKind.PREVIEWS}
_COMMON = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
           "X-Robots-Tag": "noindex, nofollow", "X-Frame-Options": "DENY"}
# A text working copy is a file's own words: opened on its own it is plain text, in a sandbox
# that may load or run nothing, whatever it says.
TEXT_TYPE = "text/plain; charset=utf-8"
_TEXT = {**_COMMON, "Content-Security-Policy": "sandbox; default-src 'none'"}


def _client(request: Request) -> Client:
    # Behind a proxy, uvicorn has already put the forwarded address here (proxy_headers),
    # trusting it only from the proxies it is told of.
    host = request.client.host if request.client else ""
    return Client.of(host, request.headers.get("user-agent", ""), request.cookies.get(COOKIE))


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status, headers={**_COMMON, "Content-Security-Policy": pages.CSP})


def _refused(error: Exception) -> HTMLResponse:
    if isinstance(error, TooMany):
        response = _html(pages.too_many(), 429)
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    status = error.status if isinstance(error, Denied) else 404
    return _html(pages.gone() if status == 410 else pages.not_found(), 410 if status == 410 else 404)


def unavailable(headers: dict[str, str]) -> HTMLResponse:
    """The reviewer's page while a dependency is down (503): come back shortly."""
    response = _html(pages.unavailable(), 503)
    response.headers.update(headers)
    return response


def _handoff(gate: Gate) -> str:
    # Per request, cheaply: the setting and the vault are fixed for the process's life.
    return handoff_prefix(gate.settings.accel_redirect, gate.rt.vault)


def _with_cookie(response: Response, request: Request, token: str, access: Access) -> Response:
    if access.new_cookie:
        response.set_cookie(COOKIE, access.new_cookie, path=f"/s/{token}", httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")
    return response


@router.api_route("/{token}", methods=["GET", "HEAD"])
def shared(token: str, request: Request) -> Response:
    gate, client = link_gate(request), _client(request)
    head = request.method == "HEAD"
    try:
        access = gate.check(token, client, head=head)
    except PasscodeRequired:
        return _html(pages.passcode_form(f"/s/{token}"))
    except (Denied, TooMany) as error:
        return _refused(error)
    link = access.link
    exhibits = _exhibits(gate, link)
    if not head:
        gate.record(access, client, "page")
    expires = link.expires_at.strftime("%d %B %Y at %H:%M UTC")
    body = pages.shared_page(access.case_ref, f"/s/{token}", exhibits, link.permission == "download", expires)
    return _with_cookie(_html(body), request, token, access)


def _exhibits(gate: Gate, link: Link) -> list[pages.Exhibit]:
    """What the link's page shows of each item it shares, in the order they were received."""
    with gate.rt.db.sessions() as session:
        query = select(Item).where(Item.case_id == link.case_id).order_by(Item.created_at)
        items = [i for i in session.scalars(query) if i.id in link.item_ids or link.include_future]
        made: dict[str, dict[str, Derivative]] = {}
        for d in session.scalars(select(Derivative).where(Derivative.item_id.in_([i.id for i in items]))):
            made.setdefault(d.item_id, {})[d.kind] = d
    return [exhibit_of(gate.rt.vault, i, made.get(i.id, {})) for i in items]



@router.post("/{token}")
async def passcode(token: str, request: Request) -> Response:
    body = await request.body()
    given = parse_qs(body[:4096].decode("utf-8", "replace")).get("passcode", [""])[0]
    gate, client = link_gate(request), _client(request)
    try:
        access = await run_in_threadpool(gate.try_passcode, token, client, given)
    except TooMany as error:
        return _refused(error)
    except Denied as error:
        if error.status == 403:
            return _html(pages.passcode_form(f"/s/{token}", "That passcode is not right."), 403)
        if error.status == 429:
            response = _html(pages.passcode_form(f"/s/{token}", "Too many attempts: wait a moment and try again."), 429)
            response.headers["Retry-After"] = "1"
            return response
        return _refused(error)
    # Post/redirect/get: a reload does not send the passcode again.
    return _with_cookie(RedirectResponse(f"/s/{token}", 303, headers=_COMMON), request, token, access)


@router.api_route("/{token}/items/{item_id}/original", methods=["GET", "HEAD"])
def original(token: str, item_id: str, request: Request) -> Response:
    gate, client = link_gate(request), _client(request)
    try:
        access = gate.check(token, client, item_id, download=True, head=request.method == "HEAD")
    except (Denied, PasscodeRequired, TooMany) as error:
        return _refused(error)
    item = access.item
    if item is None or item.state == ItemState.UPLOADING:  # the gate always finds the item it admits
        return _refused(Denied(404, "not stored yet"))
    if item.state == ItemState.DISPOSED:  # its original may outlive it in storage, never served
        return _refused(Denied(404, "disposed of"))
    response, sent = stream_object(request, gate.rt.vault, _COMMON, item.storage_key, item.size, "application/octet-stream",
                                   (item.hashes or {}).get("sha256"), content_disposition(item.filename),
                                   _handoff(gate))
    if sent is not None:  # on the record before the first byte goes out (never for a HEAD)
        gate.record(access, client, "download", sent, item.size)
    return _with_cookie(response, request, token, access)


@router.api_route("/{token}/items/{item_id}/report", methods=["GET"])
def report(token: str, item_id: str, request: Request) -> Response:
    gate, client = link_gate(request), _client(request)
    try:
        access = gate.check(token, client, item_id)
    except (Denied, PasscodeRequired, TooMany) as error:
        return _refused(error)
    with gate.rt.db.transaction() as session:
        # Recorded once per client and window like any access, however often it is asked for.
        first = gate.count_report(session, access, client)
        data = export(session, gate.rt.ledger_keys, item_id, "html", link_actor(access.link),
                      reviewer=request.app.state.internals, record=first, note=gate.report_note(client),
                      link=access.link.id)
    headers = {**_COMMON, "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
    return _with_cookie(Response(data, media_type="text/html; charset=utf-8", headers=headers), request, token, access)


@router.api_route("/{token}/items/{item_id}/document", methods=["GET", "HEAD"])
def document(token: str, item_id: str, request: Request) -> Response:
    """A PDF's rendered pages, one at a time (?page=K), with links to the others."""
    return _item_page(token, item_id, request, DerivativeKind.PAGES)


@router.api_route("/{token}/items/{item_id}/contents", methods=["GET", "HEAD"])
def contents(token: str, item_id: str, request: Request) -> Response:
    """An archive's manifest, copies.PER_PAGE entries a page (?page=K), with the previews made
    of the images and videos in it."""
    return _item_page(token, item_id, request, DerivativeKind.MANIFEST)


def _item_page(token: str, item_id: str, request: Request, needs: str) -> Response:
    gate, client = link_gate(request), _client(request)
    head = request.method == "HEAD"
    try:
        access = gate.check(token, client, item_id, head=head, copy=needs)
    except PasscodeRequired:
        return _html(pages.passcode_form(f"/s/{token}"))
    except (Denied, TooMany) as error:
        return _refused(error)
    if access.item is None or access.copy is None:
        return _refused(Denied(404, "no such page"))
    with gate.rt.db.sessions() as session:
        made = {d.kind: d for d in session.scalars(select(Derivative).where(Derivative.item_id == access.item.id))}
    exhibit, base, raw = exhibit_of(gate.rt.vault, access.item, made), f"/s/{token}", request.query_params.get("page")
    body: str | None = None
    if needs == DerivativeKind.PAGES and exhibit.pages:
        number = copies.page_number(raw, exhibit.pages)
        if number is not None:
            body = pages.document_page(access.case_ref, base, exhibit, number)
    elif needs == DerivativeKind.MANIFEST:
        found = listing(gate.rt.vault, access.copy, made.get(DerivativeKind.PREVIEWS), raw)
        if found is not None:
            body = pages.contents_page(access.case_ref, base, exhibit, found.listed, found.number, found.pages,
                                       found.first)
    if body is None:
        return _refused(Denied(404, "no such page"))
    if not head:
        gate.record(access, client, "page")
    return _with_cookie(_html(body), request, token, access)


@router.api_route("/{token}/items/{item_id}/{name}", methods=["GET", "HEAD"])
async def working_copy(token: str, item_id: str, name: str, request: Request) -> Response:
    """A player's Range requests come by the hundred. One of a view session whose link this
    process read within FRESH_SECONDS is admitted on the event loop (the gate's quick path:
    the same checks, no database); if nginx sends the bytes, it is also counted and answered
    there, else its bytes are read in one thread hop. Any other request goes through the gate
    in full, in a thread."""
    if name not in MEDIA:
        return _refused(Denied(404, "no such page"))
    quick = await _quick_view(token, item_id, MEDIA[name], request)
    if quick is not None:
        return quick
    return await run_in_threadpool(_working_copy, token, item_id, name, request)


async def _quick_view(token: str, item_id: str, kind: str, request: Request) -> Response | None:
    if request.method != "GET":
        return None
    gate, client = link_gate(request), _client(request)
    try:
        access = gate.admit_quickly(token, client, item_id, kind)
    except TooMany as error:
        return _refused(error)
    found = access.copy if access is not None else None
    if access is None or found is None:
        return None
    answered = answer_without_reading(request, _headers_of(found), found.key, found.size, _type_of(found),
                                      found.sha256, None, _handoff(gate))
    if answered is None:  # bytes to read here (no nginx, or it would not send what we would): admitted already
        return await run_in_threadpool(_send_copy, gate, access, found, client, request, token)
    response, sent = answered
    if sent is not None:  # on the record before the answer goes out, as in _send_copy
        access.extra["copy"] = kind
        full = gate.count(access, client, "view", sent)
        if full is None:  # the window's first request: written, with its ledger entry
            await run_in_threadpool(gate.record, access, client, "view", sent)
        elif full:
            await run_in_threadpool(gate.flush)
    return response


def _working_copy(token: str, item_id: str, name: str, request: Request) -> Response:
    gate, client = link_gate(request), _client(request)
    try:
        # The working copy comes in the gate's one read of link and item.
        access = gate.check(token, client, item_id, head=request.method == "HEAD", copy=MEDIA[name])
    except (Denied, PasscodeRequired, TooMany) as error:
        return _refused(error)
    found = access.copy
    if found is None:
        return _refused(Denied(404, "no working copy"))
    return _send_copy(gate, access, found, client, request, token)


def _send_copy(gate: Gate, access: Access, found: Derivative, client: Client, request: Request, token: str) -> Response:
    response, sent = stream_object(request, gate.rt.vault, _headers_of(found), found.key, found.size, _type_of(found),
                                   found.sha256, None, _handoff(gate))
    if sent is not None:
        # One entry per item per client and window, however many Range requests a player makes.
        access.extra["copy"] = found.kind
        gate.record(access, client, "view", sent)
    return _with_cookie(response, request, token, access)


def _headers_of(found: Derivative) -> dict[str, str]:
    return _TEXT if found.kind == DerivativeKind.TEXT else _COMMON


def _type_of(found: Derivative) -> str:
    return TEXT_TYPE if found.kind == DerivativeKind.TEXT else found.content_type


@router.api_route("/{token}/items/{item_id}/{name}/{number}", methods=["GET", "HEAD"])
def part(token: str, item_id: str, name: str, number: str, request: Request) -> Response:
    """A page of a PDF or a preview of an archive's entry: looked up in the index the item's
    working copy holds (by number, never as a path) and served from where its hash puts it."""
    wanted = copies.number_of(number)
    if name not in PARTS or wanted is None:
        return _refused(Denied(404, "no such page"))
    gate, client = link_gate(request), _client(request)
    try:
        access = gate.check(token, client, item_id, head=request.method == "HEAD", copy=PARTS[name])
    except (Denied, PasscodeRequired, TooMany) as error:
        return _refused(error)
    index, item = access.copy, access.item
    found = part_of(gate.rt.vault, index, wanted) if index is not None and item is not None else None
    if index is None or item is None or found is None:
        return _refused(Denied(404, "no such page"))
    response, sent = stream_object(request, gate.rt.vault, _COMMON, found.key(item.id, index.kind), found.size,
                                   found.content_type, found.sha256, None, _handoff(gate))
    if sent is not None:
        access.extra["copy"] = index.kind
        gate.record(access, client, "view", sent)
    return _with_cookie(response, request, token, access)


@router.api_route("/{rest:path}", methods=["GET", "HEAD", "POST"])
def anything_else(rest: str) -> Response:
    # Traversal attempts and stray paths: the same page as any other refusal.
    return _refused(Denied(404, "no such page"))
