"""Signed links: sharing a case or chosen items with a reviewer, listing and revoking.

Shared by the CLI and the API; each change is recorded in the ledger in the caller's
transaction. What a link covers is fixed when it is made (:func:`covers`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence import custody
from evidence.accounts.users import EMAIL
from evidence.cases import get_case
from evidence.custody.actions import Action
from evidence.errors import InvalidInput, NotFound
from evidence.links.tokens import KeyRing, scope_hash
from evidence.models import Case, Item, Link, User

MAX_LIFETIME = timedelta(days=366)
# A passcode is read out or sent by SMS: no look-alike characters.
_PASSCODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class Share:
    case_ref: str
    recipient: str
    lifetime: timedelta
    item_ids: Sequence[str] = ()
    download: bool = False
    passcode: bool = False
    max_uses: int | None = None
    include_future: bool = False


def create_link(session: Session, keys: KeyRing, share: Share, actor: str, creator: User | None,
                now: datetime) -> tuple[Link, str | None]:
    """The new link and, if asked for, its passcode (shown once, never stored)."""
    case = get_case(session, share.case_ref)
    recipient = share.recipient.strip().lower()
    if not EMAIL.fullmatch(recipient):
        raise InvalidInput(f"{share.recipient!r} is not an email address")
    if not timedelta(minutes=1) <= share.lifetime <= MAX_LIFETIME:
        raise InvalidInput("a link lasts between one minute and 366 days")
    if share.max_uses is not None and share.max_uses < 1:
        raise InvalidInput("--max-uses must be at least 1")
    case_items = list(session.scalars(select(Item.id).where(Item.case_id == case.id).order_by(Item.created_at)))
    if share.item_ids:
        if share.include_future:
            raise InvalidInput("only a case-wide share can include items added later")
        unknown = sorted(set(share.item_ids) - set(case_items))
        if unknown:
            raise NotFound(f"not items of case {case.ref}: {', '.join(unknown)}")
        item_ids = list(dict.fromkeys(share.item_ids))
    else:
        item_ids = case_items
    passcode = "".join(secrets.choice(_PASSCODE_ALPHABET) for _ in range(10)) if share.passcode else None
    link = Link(
        case_id=case.id, scope="items" if share.item_ids else "case", item_ids=item_ids,
        include_future=share.include_future, recipient=recipient,
        permission="download" if share.download else "view",
        created_at=now, expires_at=now + share.lifetime, max_uses=share.max_uses, uses=0,
        creator_id=creator.id if creator else None, created_by=actor,
        passcode_hash=hash_passcode(passcode) if passcode else None, failed_attempts=0, kid=keys.current,
    )
    session.add(link)
    session.flush()
    custody.record(session, Action.LINK_CREATED, {"case": case.ref, "link": link.id}, actor, {
        "to": recipient, "scope": link.scope, "items": item_ids, "include_future": link.include_future,
        "permission": link.permission, "expires_at": link.expires_at.isoformat(), "max_uses": link.max_uses,
        "passcode": passcode is not None, "kid": link.kid,
    })
    return link, passcode


def revoke_link(session: Session, link_id: str, actor: str, now: datetime) -> Link:
    link = session.get(Link, link_id, with_for_update=True)
    if link is None:
        raise NotFound(f"link {link_id} does not exist")
    if link.revoked_at is None:
        link.revoked_at, link.revoked_by = now, actor
        case = session.get_one(Case, link.case_id)
        custody.record(session, Action.LINK_REVOKED, {"case": case.ref, "link": link.id}, actor,
                       {"items": list(link.item_ids), "include_future": link.include_future})
    return link


def list_links(session: Session, case_ref: str) -> list[Link]:
    case = get_case(session, case_ref)
    return list(session.scalars(select(Link).where(Link.case_id == case.id).order_by(Link.created_at)))


def covers(link: Link, item: Item) -> bool:
    """Exactly what was shared: the snapshot, plus later items of the case if it said so."""
    if item.case_id != link.case_id:
        return False
    return item.id in link.item_ids or (link.include_future and link.scope == "case")


def link_actor(link: Link) -> str:
    """Who the ledger says acted through a link: the link, and whom it was sent to."""
    return f"link:{link.id} ({link.recipient})"


def token_of(keys: KeyRing, link: Link) -> str:
    return keys.issue(link.id, link.created_at, link.expires_at, link_scope_hash(link), link.kid)


def link_scope_hash(link: Link) -> str:
    return scope_hash(list(link.item_ids), link.include_future)


def link_url(keys: KeyRing, link: Link, public_url: str) -> str | None:
    try:
        return f"{public_url}/s/{token_of(keys, link)}"
    except FileNotFoundError:  # its signing key has been retired: the link can no longer be used
        return None


# -- passcodes ------------------------------------------------------------------------------


def hash_passcode(passcode: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(passcode.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt$" + "$".join(base64.b64encode(x).decode() for x in (salt, digest))


def check_passcode(stored: str, given: str) -> bool:
    scheme, salt, digest = stored.split("$")
    if scheme != "scrypt":
        return False
    # Passcodes are read out; be forgiving of case and spacing, not of characters.
    given = "".join(given.split()).upper()[:64]
    computed = hashlib.scrypt(given.encode(), salt=base64.b64decode(salt), dklen=32, **_SCRYPT)
    return hmac.compare_digest(computed, base64.b64decode(digest))
