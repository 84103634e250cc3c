"""The gate every reviewer request passes: token, then row, then item; and the record of it.

Order matters. The token's signature is checked first, with no database access, so
forged or guessed URLs cost nothing and learn nothing. Then the row decides (revoked,
expired, locked, used up: 410) and the item must be one the link covers (else 404).
Refusals of genuine tokens are recorded, at most once per identical refusal per window;
accesses once per item, client and kind per window, full downloads every time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update

from evidence import custody
from evidence.link_token import LINK_ID, Claims, InvalidToken, KeyRing
from evidence.links import check_passcode, covers, link_scope_hash
from evidence.models import Case, Item, Link
from evidence.runtime import Runtime

COOKIE = "evidence_link"


class Denied(Exception):
    """Refused; ``status`` 404 or 410 show the same plain pages whatever the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class PasscodeRequired(Exception):
    pass


@dataclass
class Client:
    ip: str
    agent: str
    cookie: str | None


@dataclass
class Access:
    link: Link
    case_ref: str
    session: str  # the view session: the cookie's, or one just started
    new_cookie: str | None = None
    item: Item | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Throttle:
    """Remembers keys for ``window`` seconds: ``first`` is true once per key per window.
    Per process: with several API processes a window may be recorded once by each."""

    def __init__(self, limit: int = 100_000) -> None:
        self._seen: dict[Any, datetime] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def first(self, key: Any, now: datetime, window: float) -> bool:
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last < timedelta(seconds=window):
                return False
            if len(self._seen) >= self._limit:
                cutoff = now - timedelta(seconds=window)
                self._seen = {k: t for k, t in self._seen.items() if t > cutoff}
            self._seen[key] = now
            return True


class Gate:
    def __init__(self, rt: Runtime, keys: KeyRing, cookie_secret: bytes, clock: Callable[[], datetime]) -> None:
        self.rt, self.keys, self._secret, self.clock = rt, keys, cookie_secret, clock
        self.settings = rt.settings
        self._records, self._attempts = Throttle(), Throttle()

    # -- the view-session cookie ------------------------------------------------------------

    def _cookie(self, link_id: str, session: str, passcode_ok: bool, now: datetime) -> str:
        until = int((now + timedelta(minutes=self.settings.link_session_minutes)).timestamp())
        body = f"{link_id}:{session}:{int(passcode_ok)}:{until}".encode()
        mac = hmac.new(self._secret, body, hashlib.sha256).digest()
        return f"{base64.urlsafe_b64encode(body).decode()}.{base64.urlsafe_b64encode(mac).decode()}"

    def _read_cookie(self, value: str | None, link_id: str, now: datetime) -> tuple[str, bool] | None:
        try:
            body_b64, mac_b64 = (value or "").split(".")
            body = base64.urlsafe_b64decode(body_b64)
            expected = hmac.new(self._secret, body, hashlib.sha256).digest()
            if not hmac.compare_digest(expected, base64.urlsafe_b64decode(mac_b64)):
                return None
            cookie_link, session, passcode_ok, until = body.decode().split(":")
        except (ValueError, UnicodeDecodeError):
            return None
        if cookie_link != link_id or int(until) <= now.timestamp():
            return None
        return session, passcode_ok == "1"

    # -- checks ---------------------------------------------------------------------------

    def _claims(self, token: str, now: datetime) -> Claims:
        try:
            return self.keys.verify(token, now)
        except InvalidToken:
            raise Denied(404, "invalid token") from None

    def check(self, token: str, client: Client, item_id: str | None = None, download: bool = False) -> Access:
        """Admit a request or raise Denied / PasscodeRequired. A request without a view
        session starts one, which counts as one use of the link."""
        now = self.clock()
        claims = self._claims(token, now)  # before any database access
        refusal: tuple[int, str] | None = None
        # Only reads here: refusals are recorded after this session ends (on SQLite, an
        # open session holds the write lock that recording needs).
        with self.rt.db.sessions() as session:
            link = session.get(Link, claims.link_id)
            if link is None:
                raise Denied(404, "no such link")
            access = Access(link, session.get_one(Case, link.case_id).ref, "")
            viewing = self._read_cookie(client.cookie, link.id, now)
            if link_scope_hash(link) != claims.scope_hash:
                refusal = (404, "token does not match the link's scope")
            else:
                refusal = self._refusal(link, now, has_session=viewing is not None)
            if refusal is None and link.passcode_hash is not None and not (viewing and viewing[1]):
                raise PasscodeRequired()
            if refusal is None and item_id is not None:
                item = session.get(Item, item_id) if LINK_ID.fullmatch(item_id) else None
                if item is None or not covers(link, item):
                    refusal = (404, "item not covered by the link")
                else:
                    access.item = item
                    if download and link.permission != "download":
                        refusal = (404, "download not permitted")
        if refusal is not None:
            self._deny(access, client, *refusal, item_id)
        if viewing is not None:
            access.session = viewing[0]
            return access
        self._start_session(access, client, now, passcode_ok=False)
        return access

    @staticmethod
    def _refusal(link: Link, now: datetime, has_session: bool) -> tuple[int, str] | None:
        if link.revoked_at is not None:
            return 410, "revoked"
        if now >= link.expires_at:
            return 410, "expired"
        if link.locked_at is not None:
            return 410, "locked after wrong passcodes"
        if not has_session and link.max_uses is not None and link.uses >= link.max_uses:
            return 410, "uses exhausted"
        return None

    def _start_session(self, access: Access, client: Client, now: datetime, passcode_ok: bool) -> None:
        link = access.link
        with self.rt.db.transaction() as session:
            # Atomic, so two reviewers opening the last use at once cannot both get it.
            counted = session.execute(
                update(Link).where(Link.id == link.id, or_(Link.max_uses.is_(None), Link.uses < Link.max_uses))
                .values(uses=Link.uses + 1)
            ).rowcount
        if not counted:
            self._deny(access, client, 410, "uses exhausted", None)
        access.session = secrets.token_hex(16)
        access.new_cookie = self._cookie(link.id, access.session, passcode_ok, now)

    def _deny(self, access: Access, client: Client, status: int, reason: str, item_id: str | None) -> None:
        item = (item_id or "")[:64]
        if self._records.first(("denied", access.link.id, reason, item, client.ip), self.clock(),
                               self.settings.link_record_window_seconds):
            subject = {"case": access.case_ref, "link": access.link.id}
            if access.item is not None:  # a covered item (never one of another case)
                subject["item"] = access.item.id
            details: dict[str, Any] = {"outcome": "denied", "reason": reason, "requested_item": item or None,
                                       **_who(client)}
            if access.item is None:  # about the link as a whole: it shows in its items' reports
                details["items"] = sorted(access.link.item_ids)
            with self.rt.db.transaction() as session:
                custody.record(session, "link.accessed", subject, _actor(access.link), details)
        raise Denied(status, reason)

    # -- passcodes ----------------------------------------------------------------------------

    def try_passcode(self, token: str, client: Client, given: str) -> Access:
        """Admit on the right passcode (a new view session, passcode given); otherwise
        count the failure, lock the link after too many, and raise Denied (403 wrong, 429
        too fast, 410 locked)."""
        now = self.clock()
        claims = self._claims(token, now)
        with self.rt.db.sessions() as session:
            link = session.get(Link, claims.link_id)
            if link is None or link.passcode_hash is None or link_scope_hash(link) != claims.scope_hash:
                raise Denied(404, "no passcode for this link")
            access = Access(link, session.get_one(Case, link.case_id).ref, "")
        refusal = self._refusal(link, now, has_session=False)
        if refusal is not None:
            self._deny(access, client, *refusal, None)
        if not self._attempts.first(link.id, now, self.settings.link_passcode_interval_seconds):
            raise Denied(429, "too many attempts")
        if check_passcode(link.passcode_hash, given):
            with self.rt.db.transaction() as session:
                session.execute(update(Link).where(Link.id == link.id).values(failed_attempts=0))
                custody.record(session, "link.accessed", {"case": access.case_ref, "link": link.id}, _actor(link),
                               {"outcome": "granted", "kind": "passcode", **_who(client)})
            self._start_session(access, client, now, passcode_ok=True)
            return access
        limit = self.settings.link_passcode_attempts
        with self.rt.db.transaction() as session:
            row = session.get_one(Link, link.id, with_for_update=True)
            row.failed_attempts += 1
            locked = row.failed_attempts >= limit and row.locked_at is None
            if locked:
                row.locked_at = now
            custody.record(session, "link.accessed", {"case": access.case_ref, "link": link.id}, _actor(link), {
                "outcome": "denied", "reason": "wrong passcode", "attempt": row.failed_attempts,
                "locked": row.locked_at is not None, **_who(client),
            })
        if locked:
            raise Denied(410, "locked after wrong passcodes")
        raise Denied(403, "wrong passcode")

    # -- the record of what was seen --------------------------------------------------------

    def record(self, access: Access, client: Client, kind: str, byte_range: tuple[int, int] | None = None,
               always: bool = False) -> None:
        """``kind``: page, view (a working copy) or download (the original). Windowed per
        view session, item and kind unless ``always`` (full downloads)."""
        link, item = access.link, access.item
        key = ("ok", link.id, item.id if item else None, kind, access.session or client.ip)
        if not always and not self._records.first(key, self.clock(), self.settings.link_record_window_seconds):
            return
        subject = {"case": access.case_ref, "link": link.id}
        if item is not None:
            subject["item"] = item.id
        details: dict[str, Any] = {"outcome": "granted", "kind": kind, **_who(client), **access.extra}
        if item is None:
            details["items"] = sorted(link.item_ids)
        if byte_range is not None:
            details["range"] = {"first": byte_range[0], "last": byte_range[1]}
        with self.rt.db.transaction() as session:
            custody.record(session, "link.accessed", subject, _actor(link), details)


def _who(client: Client) -> dict[str, str]:
    return {"client_ip": client.ip, "user_agent": client.agent[:300]}


def _actor(link: Link) -> str:
    return f"link:{link.id} ({link.recipient})"
