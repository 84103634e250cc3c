"""Signing in and out: a token from ``evidence users add`` (or the identity provider's
sign-in, :mod:`evidence.http.pages.oidc`) becomes a session cookie.

The cookie is HttpOnly (no script can read it), SameSite=Strict (no other site's page can
make the browser send it), Secure behind HTTPS, and lasts exactly as long as the token
would have. The sign-in form itself is protected by a double-submit token, so another
site cannot sign a browser in to an account of its choosing."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated

import jwt
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from evidence.accounts import websessions
from evidence.errors import Unauthorized
from evidence.http.deps import Db, runtime
from evidence.http.pages.render import page
from evidence.http.pages.session import COOKIE, Page, check_csrf, secure_cookies, sign_in_url

router = APIRouter(include_in_schema=False)
LOGIN_COOKIE = "evidence_login"
NOTICES = {
    "expired": "Your session has ended. Sign in again.",
    "signed-out": "You have signed out.",
}


def safe_next(value: str | None) -> str:
    """Only a path of these pages: never another site (``//host``, ``/\\host``, a scheme)."""
    if value and value.startswith("/app/") and "//" not in value and "\\" not in value and len(value) < 500:
        return value
    return "/app/"


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/app/", status_code=303)


@router.get("/app")
def app_root() -> RedirectResponse:
    return RedirectResponse("/app/", status_code=303)


@router.get("/app/login")
def login_page(request: Request, next: str = "/app/", notice: str = "") -> Response:
    return _login_form(request, safe_next(next), NOTICES.get(notice, ""), "")


def _login_form(request: Request, next_path: str, notice: str, error: str, status: int = 200) -> Response:
    rt = runtime(request)
    form_token = secrets.token_urlsafe(24)
    response = page("login.html", status=status, next_path=next_path, notice=notice, error=error,
                    form_token=form_token, oidc=bool(rt.settings.oidc_client_id and rt.auth.oidc))
    response.set_cookie(LOGIN_COOKIE, form_token, max_age=3600, path="/app/login", httponly=True, samesite="strict",
                        secure=secure_cookies(request, rt.settings.public_url))
    return response


@router.post("/app/login")
def sign_in(request: Request, db: Db, token: Annotated[str, Form(max_length=8192)] = "",
            csrf: Annotated[str, Form(max_length=100)] = "", next: Annotated[str, Form(max_length=500)] = "/app/"
            ) -> Response:
    rt = runtime(request)
    next_path = safe_next(next)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(expected.encode(), csrf.encode()):
        return _login_form(request, next_path, "", "The sign-in form had expired. Please try again.", 400)
    token = token.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    try:
        user = rt.auth.authenticate(db, f"Bearer {token}")
        expires_at = _expiry(token)
        cookie, _ = websessions.start(db, user, expires_at)
    except Unauthorized as refused:
        db.rollback()
        return _login_form(request, next_path, "", f"That access token was not accepted: {refused.message}.", 401)
    db.commit()
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, request, cookie, expires_at)
    response.delete_cookie(LOGIN_COOKIE, path="/app/login")
    return response


def _expiry(token: str) -> datetime:
    """When the (already verified) token expires: the session ends then too."""
    exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    if not isinstance(exp, (int, float)):
        raise Unauthorized("the token has no expiry")
    return datetime.fromtimestamp(exp, UTC)


def set_session_cookie(response: Response, request: Request, cookie: str, expires_at: datetime) -> None:
    rt = runtime(request)
    response.set_cookie(COOKIE, cookie, expires=expires_at, path="/", httponly=True, samesite="strict",
                        secure=secure_cookies(request, rt.settings.public_url))


@router.post("/app/logout")
def sign_out(request: Request, db: Db, signed: Page, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(request, signed, csrf)
    websessions.end(db, request.cookies.get(COOKIE))
    db.commit()
    response = RedirectResponse(sign_in_url(notice="signed-out"), status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
