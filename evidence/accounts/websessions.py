"""Signed-in browsers: the sessions of the pages under /app/.

Signing in turns a bearer token (local, or the identity provider's) into a session that
ends when the token would have. The browser holds ``<id>.<secret>`` in an HttpOnly cookie;
the database holds only the secret's SHA-256. Every request resumes the session and checks
the account again (disabled, tokens revoked since the session began), exactly as a bearer
token is checked on every request. State-changing requests also carry the session's CSRF
token, which a page of another site cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.cookies import CookieError, SimpleCookie

from sqlalchemy import delete
from sqlalchemy.orm import Session

from evidence.accounts.access import admit, numeric_date
from evidence.errors import Unauthorized
from evidence.models import User, WebSession, utcnow

COOKIE = "evidence_session"
# One plain message for every reason a session stops working, so a
# stolen or stale cookie learns nothing about the account.
EXPIRED = "your session has ended: sign in again"
# Ended and expired sessions are kept this long (so a late request still gets "ended",
# not "unknown"), then deleted by the server's upkeep.
KEEP_ENDED = timedelta(days=1)


@dataclass(frozen=True)
class Signed:
    """A resumed session: who, and the form token their pages carry."""

    user: User
    session_id: str
    csrf: str
    expires_at: datetime


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def start(session: Session, user: User, expires_at: datetime, now: datetime | None = None) -> tuple[str, Signed]:
    """A new session for ``user`` until ``expires_at``; returns the cookie value and it."""
    now = now or utcnow()
    if expires_at <= now:
        raise Unauthorized("this token has expired")
    secret = secrets.token_urlsafe(32)
    row = WebSession(secret_hash=_digest(secret), user_id=user.id, csrf=secrets.token_urlsafe(32),
                     created_at=now, expires_at=expires_at)
    session.add(row)
    session.flush()
    return f"{row.id}.{secret}", Signed(user, row.id, row.csrf, expires_at)


def resume(session: Session, cookie: str | None, now: datetime | None = None) -> Signed:
    """The session a cookie names, if it is still good; else Unauthorized."""
    now = now or utcnow()
    row = _row(session, cookie)
    if row is None or row.ended_at is not None or row.expires_at <= now:
        raise Unauthorized(EXPIRED)
    user = session.get(User, row.user_id)
    if user is None:
        raise Unauthorized(EXPIRED)
    try:
        # A session is a token in another form: revoking the account's tokens ends it too.
        admit(user, numeric_date(row.created_at))
    except Unauthorized:
        raise Unauthorized(EXPIRED) from None
    return Signed(user, row.id, row.csrf, row.expires_at)


def end(session: Session, cookie: str | None, now: datetime | None = None) -> None:
    """Sign out: the cookie stops working at once, wherever it has been copied to."""
    row = _row(session, cookie)
    if row is not None and row.ended_at is None:
        row.ended_at = now or utcnow()


def csrf_matches(signed: Signed, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(signed.csrf.encode(), (presented or "").encode())


def purge(session: Session, now: datetime | None = None) -> int:
    """Delete sessions that ended or expired more than :data:`KEEP_ENDED` ago."""
    cutoff = (now or utcnow()) - KEEP_ENDED
    result = session.execute(delete(WebSession).where(
        (WebSession.expires_at < cutoff) | (WebSession.ended_at < cutoff)))
    return int(getattr(result, "rowcount", 0) or 0)


def _row(session: Session, cookie: str | None) -> WebSession | None:
    if not cookie or cookie.count(".") != 1 or len(cookie) > 200:
        return None
    session_id, secret = cookie.split(".")
    row = session.get(WebSession, session_id)
    if row is None or not hmac.compare_digest(row.secret_hash, _digest(secret)):
        return None
    return row


def from_cookie_header(header: str | None) -> str | None:
    """The session cookie's value in a ``Cookie`` header, if there is one."""
    if not header:
        return None
    try:
        morsel = SimpleCookie(header).get(COOKIE)
    except CookieError:
        return None
    return morsel.value if morsel is not None else None
