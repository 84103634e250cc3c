"""**Sign in with your force account**: the OpenID Connect authorization code flow with PKCE
(:mod:`evidence.accounts.oidc_login` does the protocol; this is its two routes).

Between the redirect and the callback the browser keeps the sign-in's state, nonce and PKCE
verifier in a short-lived cookie, HMAC-signed by the server so it cannot be forged, and
HttpOnly. That cookie is SameSite=Lax: the callback is a top-level navigation coming back
from the provider's site, which a Strict cookie would not be sent with. For the same
reason the callback answers with a page that moves on to /app/ itself: the session cookie
is Strict, and a redirect chain that began on another site would not carry it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from evidence.accounts import access, websessions
from evidence.accounts.oidc_login import LoginConfig, Pending, begin, finish
from evidence.errors import EvidenceError
from evidence.http.deps import Db, runtime
from evidence.http.pages.login import safe_next, set_session_cookie
from evidence.http.pages.render import page
from evidence.http.pages.session import secure_cookies

router = APIRouter(include_in_schema=False)
PENDING_COOKIE = "evidence_oidc"
CALLBACK = "/app/login/oidc/callback"


def _config(request: Request) -> LoginConfig | None:
    state = request.app.state
    if not hasattr(state, "oidc_login"):
        settings = runtime(request).settings
        state.oidc_login = LoginConfig.from_settings(settings) if runtime(request).auth.oidc else None
    config: LoginConfig | None = state.oidc_login
    return config


def _redirect_uri(request: Request) -> str:
    public = runtime(request).settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    return public + CALLBACK


def _key(request: Request) -> bytes:
    secret: bytes = request.app.state.cookie_secret
    return hmac.new(secret, b"oidc sign-in pending", hashlib.sha256).digest()


def _seal(request: Request, data: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()
    tag = hmac.new(_key(request), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{tag}"


def _unseal(request: Request, value: str | None) -> dict[str, Any] | None:
    if not value or value.count(".") != 1 or len(value) > 4096:
        return None
    body, tag = value.split(".")
    if not hmac.compare_digest(tag, hmac.new(_key(request), body.encode(), hashlib.sha256).hexdigest()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _refused(message: str) -> Response:
    return page("error.html", status=401, title="Sign-in did not complete",
                message=f"{message} Go back to the sign-in page and try again.")


@router.get("/app/login/oidc")
def start(request: Request, next: str = "/app/") -> Response:
    config = _config(request)
    if config is None:
        return RedirectResponse("/app/login", status_code=303)
    try:
        url, pending = begin(config, _redirect_uri(request))
    except EvidenceError as error:
        return _refused(error.message)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(PENDING_COOKIE, _seal(request, {**pending.to_dict(), "next": safe_next(next)}),
                        max_age=int(config.max_age_seconds), path="/app/login/oidc", httponly=True, samesite="lax",
                        secure=secure_cookies(request, runtime(request).settings.public_url))
    return response


@router.get(CALLBACK)
def callback(request: Request, db: Db) -> Response:
    config = _config(request)
    rt = runtime(request)
    if config is None or rt.auth.oidc is None:
        return RedirectResponse("/app/login", status_code=303)
    data = _unseal(request, request.cookies.get(PENDING_COOKIE))
    if data is None:
        return _refused("This sign-in was not started here, or took too long.")
    try:
        pending = Pending.from_dict(data)
        signed_in = finish(config, rt.auth.oidc, pending, dict(request.query_params), _redirect_uri(request))
        user = access.user_for(db, signed_in.identity, rt.auth.oidc.email_verified_claim)
        cookie, _ = websessions.start(db, user, signed_in.expires_at)
    except EvidenceError as error:
        db.rollback()
        return _refused(error.message)
    db.commit()
    next_path = safe_next(str(data.get("next", "/app/")))
    response = page("signed_in.html", next_path=next_path, headers={"Refresh": f"0; url={next_path}"})
    set_session_cookie(response, request, cookie, signed_in.expires_at)
    response.delete_cookie(PENDING_COOKIE, path="/app/login/oidc")
    return response
