"""Who is asking, for the pages: the session cookie, resumed and checked on every request,
and the CSRF token that every state-changing request must carry (a form field ``csrf`` or
the ``X-CSRF-Token`` header). A page request without a good session is sent to sign in;
a script's request (JSON, fragments) gets 401."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from evidence.accounts import websessions
from evidence.errors import EvidenceError, Forbidden, Unauthorized
from evidence.http.deps import Db
from evidence.models import Role

COOKIE = websessions.COOKIE


class SignInRequired(EvidenceError):
    """Answered with a redirect to the sign-in page (see :func:`install`)."""

    status = 303

    def __init__(self, next_path: str, message: str = "") -> None:
        super().__init__(message or websessions.EXPIRED)
        self.next_path = next_path


def sign_in_url(next_path: str = "/app/", notice: str = "") -> str:
    url = "/app/login"
    query = []
    if next_path and next_path != "/app/":
        query.append("next=" + quote(next_path, safe="/"))
    if notice:
        query.append("notice=" + quote(notice))
    return url + ("?" + "&".join(query) if query else "")


def _resume(request: Request, db: Session) -> websessions.Signed:
    return websessions.resume(db, request.cookies.get(COOKIE))


def page_user(request: Request, db: Db) -> websessions.Signed:
    """For pages: the signed-in session, or a redirect to sign in and come back."""
    try:
        return _resume(request, db)
    except Unauthorized:
        notice = "expired" if request.cookies.get(COOKIE) else ""
        raise SignInRequired(request.url.path, notice) from None


def script_user(request: Request, db: Db) -> websessions.Signed:
    """For the pages' scripts (fragments, JSON): the session, or 401."""
    return _resume(request, db)


Page = Annotated[websessions.Signed, Depends(page_user)]
Script = Annotated[websessions.Signed, Depends(script_user)]


def require(signed: websessions.Signed, *roles: Role) -> None:
    if signed.user.role not in roles:
        raise Forbidden("your account's role does not give access to this page")


def check_csrf(request: Request, signed: websessions.Signed, form_value: str | None = None) -> None:
    presented = form_value or request.headers.get("x-csrf-token")
    if not websessions.csrf_matches(signed, presented):
        raise Forbidden("this form has expired or did not come from this site: reload the page and try again")


def secure_cookies(request: Request, public_url: str) -> bool:
    """Secure cookies behind HTTPS (the public URL says so, or the request came that way)."""
    return public_url.startswith("https://") or request.url.scheme == "https"
