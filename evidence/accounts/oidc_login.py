"""Signing in on the web pages through the force's identity provider: OpenID Connect's
authorization code flow with PKCE (RFC 7636, S256 only).

:func:`begin` gives the URL to send the browser to and a :class:`Pending` (state, nonce, PKCE
verifier, time) that the routes keep in a signed, short-lived cookie until the browser comes
back; :func:`finish` takes the callback's query parameters and that Pending, redeems the code
at the token endpoint and returns who signed in. The HTTP routes and the session are the
web app's business; nothing here knows about cookies.

What is checked, and why:

- ``state`` (constant-time) ties the callback to the browser that started the sign-in, so
  nobody can push their own code into someone else's session; the Pending expires.
- PKCE binds the code to this sign-in's verifier: a code stolen on the way back is useless.
- The ID token is verified strictly with the issuer's key set (the one the
  :class:`~evidence.accounts.oidc.OidcVerifier` already keeps: no second key cache): the
  configured algorithms, issuer, audience = our client id (and ``azp`` when it names
  several), expiry, issue time, the Pending's nonce, and ``at_hash`` when present.
- The access token is verified as any bearer token is (:meth:`OidcVerifier.verify`): it
  gives the :class:`~evidence.accounts.oidc.Identity` (email, role, verified email) that
  :func:`evidence.accounts.access.user_for` takes, and its expiry ends the web session.

Errors: a refused or tampered sign-in is :class:`~evidence.errors.Unauthorized`; a token
naming no role or address of ours is ``Forbidden`` (from the verifier); a provider that
cannot be reached is ``Unavailable``. Messages are plain and never carry a token, a code,
or text the provider (or whoever forged the callback) chose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import jwt
import requests

from evidence.accounts.jwtcheck import is_numeric_date, strict_claims
from evidence.accounts.oidc import Identity, OidcVerifier
from evidence.errors import Unauthorized, Unavailable

log = logging.getLogger(__name__)

DEFAULT_SCOPES = "openid email profile"
# The provider's `error` code is shown only when it looks like one (RFC 6749 codes are
# short ASCII words); anything else in the callback is someone else's text.
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
# A Pending dated this far ahead of our clock still counts (API nodes' clocks differ a little).
_CLOCK_SKEW = 60.0
# at_hash is the left half of the access token's hash with the ID token's algorithm's hash.
_AT_HASH = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


@dataclass(frozen=True)
class Pending:
    """What one browser's sign-in needs between the redirect and the callback."""

    state: str
    nonce: str
    verifier: str = field(repr=False)  # the PKCE code_verifier: a secret, never sent to the browser
    created_at: float  # seconds since the epoch

    def to_dict(self) -> dict[str, str | float]:
        return {"state": self.state, "nonce": self.nonce, "verifier": self.verifier, "created_at": self.created_at}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pending:
        """A Pending back from :meth:`to_dict` (say, a cookie's JSON); Unauthorized when malformed."""
        state, nonce, verifier = (data.get(k) for k in ("state", "nonce", "verifier"))
        created: Any = data.get("created_at")
        if not (isinstance(state, str) and isinstance(nonce, str) and isinstance(verifier, str) and is_numeric_date(created)):
            raise Unauthorized("the sign-in could not be completed; start again")
        return cls(state, nonce, verifier, float(created))


@dataclass(frozen=True)
class SignedIn:
    identity: Identity
    # The access token's expiry: the web session ends then.
    expires_at: datetime


class Endpoints(NamedTuple):
    authorization: str
    token: str


class LoginConfig:
    """This service as a client of the identity provider, and the provider's endpoints
    (from the settings, else its discovery document, cached)."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        *,
        client_secret: str | None = None,
        scopes: str = DEFAULT_SCOPES,
        authorization_endpoint: str = "",
        token_endpoint: str = "",
        max_age_seconds: float = 600,
        timeout: float = 5,
        cache_seconds: float = 3600,
    ) -> None:
        if not issuer or not client_id:
            raise ValueError("EVIDENCE_OIDC_ISSUER must be set when EVIDENCE_OIDC_CLIENT_ID is")
        if "openid" not in scopes.split():
            raise ValueError("EVIDENCE_OIDC_SCOPES must include openid")
        for name, url in (("AUTHORIZATION", authorization_endpoint), ("TOKEN", token_endpoint)):
            if url and not _is_http_url(url):
                raise ValueError(f"EVIDENCE_OIDC_{name}_ENDPOINT must be an http(s) URL")
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret or None
        self.scopes = " ".join(scopes.split())
        self.max_age_seconds = max_age_seconds
        self.timeout = timeout
        self._overrides = Endpoints(authorization_endpoint, token_endpoint)
        self._cache_seconds = cache_seconds
        self._discovered: Endpoints | None = None
        self._discovered_at = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> LoginConfig | None:
        """None while the browser sign-in is off (no client id)."""
        if not settings.oidc_client_id:
            return None
        return cls(
            settings.oidc_issuer,
            settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            scopes=settings.oidc_scopes,
            authorization_endpoint=settings.oidc_authorization_endpoint,
            token_endpoint=settings.oidc_token_endpoint,
            max_age_seconds=settings.oidc_sign_in_minutes * 60,
            timeout=settings.oidc_http_timeout_seconds,
        )

    def endpoints(self) -> Endpoints:
        """The authorization and token endpoints; Unavailable when they must be discovered
        and the provider cannot say (a failed refresh keeps the last ones found)."""
        if all(self._overrides):
            return self._overrides
        with self._lock:
            if self._discovered is None or time.monotonic() - self._discovered_at > self._cache_seconds:
                try:
                    self._discovered = self._discover()
                except Unavailable:
                    if self._discovered is None:
                        raise
                    log.warning("the identity provider's discovery document is unreachable; using the last one read")
                self._discovered_at = time.monotonic()
            found = self._discovered
        return Endpoints(self._overrides.authorization or found.authorization, self._overrides.token or found.token)

    def _discover(self) -> Endpoints:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            response = requests.get(url, timeout=self.timeout, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError):
            raise Unavailable("the identity provider's discovery document cannot be read; try again shortly") from None
        if not isinstance(document, dict) or document.get("issuer") != self.issuer:
            raise Unavailable("the identity provider's discovery document names another issuer")
        authorization, token = document.get("authorization_endpoint"), document.get("token_endpoint")
        if not (isinstance(authorization, str) and _is_http_url(authorization)
                and isinstance(token, str) and _is_http_url(token)):
            raise Unavailable("the identity provider's discovery document has no usable authorization or token endpoint")
        return Endpoints(authorization, token)


def begin(config: LoginConfig, redirect_uri: str, *, now: float | None = None) -> tuple[str, Pending]:
    """The URL to send the browser to, and the Pending to keep until it comes back."""
    pending = Pending(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        verifier=secrets.token_urlsafe(64),  # 86 characters of [A-Za-z0-9_-]: RFC 7636 asks 43-128
        created_at=time.time() if now is None else now,
    )
    params = {
        "response_type": "code",
        "client_id": config.client_id,
        "redirect_uri": redirect_uri,
        "scope": config.scopes,
        "state": pending.state,
        "nonce": pending.nonce,
        "code_challenge": code_challenge(pending.verifier),
        "code_challenge_method": "S256",
    }
    return _with_query(config.endpoints().authorization, params), pending


def finish(
    config: LoginConfig,
    verifier: OidcVerifier,
    pending: Pending,
    params: Mapping[str, str],
    redirect_uri: str,
    *,
    now: float | None = None,
) -> SignedIn:
    """Who signed in, from the callback's query parameters; raises as the module says."""
    if verifier.issuer != config.issuer:
        raise ValueError("the sign-in and the token verifier name different issuers")
    code = _check_callback(config, pending, params, time.time() if now is None else now)
    tokens = _redeem(config, pending, code, redirect_uri)
    _check_id_token(config, verifier, pending, tokens)
    identity = verifier.verify(tokens.access_token)
    # Verified just now; read again only for its expiry, which verify() does not return.
    expires = jwt.decode(tokens.access_token, options={"verify_signature": False})["exp"]
    return SignedIn(identity, datetime.fromtimestamp(expires, UTC))


def code_challenge(code_verifier: str) -> str:
    """RFC 7636's S256: BASE64URL(SHA256(ASCII(code_verifier))), unpadded."""
    return _b64url(hashlib.sha256(code_verifier.encode("ascii")).digest())


class _Tokens(NamedTuple):
    access_token: str
    id_token: str


def _check_callback(config: LoginConfig, pending: Pending, params: Mapping[str, str], now: float) -> str:
    state = params.get("state", "")
    if not pending.state or not hmac.compare_digest(state.encode(), pending.state.encode()):
        raise Unauthorized("this sign-in response does not belong to this browser's sign-in; start again")
    age = now - pending.created_at
    if age > config.max_age_seconds or age < -_CLOCK_SKEW:
        raise Unauthorized("the sign-in took too long; start again")
    error = params.get("error")
    if error is not None:
        # error_description is left out: it is text anyone can put in a link.
        shown = error if _ERROR_CODE.fullmatch(error) else "an error"
        raise Unauthorized(f"the identity provider did not sign you in ({shown})")
    code = params.get("code", "")
    if not code:
        raise Unauthorized("the identity provider's response has no authorization code; start again")
    return code


def _redeem(config: LoginConfig, pending: Pending, code: str, redirect_uri: str) -> _Tokens:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": config.client_id,
        "code_verifier": pending.verifier,
    }
    headers = {"Accept": "application/json"}
    if config.client_secret is not None:
        # client_secret_basic (RFC 6749 2.3.1): both parts form-encoded before Basic.
        pair = f"{quote(config.client_id, safe='')}:{quote(config.client_secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    try:
        response = requests.post(
            config.endpoints().token, data=form, headers=headers, timeout=config.timeout, allow_redirects=False,
        )
    except requests.RequestException:
        raise Unavailable("the identity provider cannot be reached; try again shortly") from None
    if response.status_code >= 500:
        raise Unavailable("the identity provider is not answering; try again shortly")
    body = _json_object(response)
    if response.status_code != 200:
        error = body.get("error") if body is not None else None
        shown = error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else f"HTTP {response.status_code}"
        raise Unauthorized(f"the identity provider refused the sign-in ({shown}); start again")
    if body is None:
        raise Unauthorized("the identity provider's token response is not JSON")
    access_token, id_token, token_type = (body.get(k) for k in ("access_token", "id_token", "token_type"))
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise Unauthorized("the identity provider's token response is not a bearer token")
    if not isinstance(access_token, str) or not access_token or not isinstance(id_token, str) or not id_token:
        raise Unauthorized("the identity provider's token response lacks an access token or an ID token")
    return _Tokens(access_token, id_token)


def _check_id_token(config: LoginConfig, verifier: OidcVerifier, pending: Pending, tokens: _Tokens) -> None:
    invalid = Unauthorized("the identity provider's ID token is not valid; start again")
    try:
        header = jwt.get_unverified_header(tokens.id_token)
    except jwt.PyJWTError:
        raise invalid from None
    algorithm, kid = header.get("alg"), header.get("kid")
    if algorithm not in verifier.algorithms or not isinstance(kid, str) or not kid:
        raise invalid
    # The verifier's own key set (cache, rotation, cooldown, last good set): one JWKS client.
    try:
        key = verifier.signing_key(kid)  # Unavailable when the key set cannot be had: passed on
        claims = strict_claims(tokens.id_token, key, algorithm, config.client_id, config.issuer, verifier.leeway)
    except Unauthorized:
        raise invalid from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != config.client_id:
        raise invalid
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), pending.nonce.encode()):
        raise invalid
    at_hash = claims.get("at_hash")
    digest = _AT_HASH.get(algorithm[-3:]) if algorithm[:2] in ("RS", "PS", "ES") else None
    if at_hash is not None and digest is not None:
        full = digest(tokens.access_token.encode()).digest()
        if not isinstance(at_hash, str) or not hmac.compare_digest(at_hash, _b64url(full[: len(full) // 2])):
            raise invalid


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _with_query(url: str, params: Mapping[str, str]) -> str:
    # The endpoint may carry its own query (Azure AD B2C's policy, say): keep it.
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("https", "http") and bool(parts.netloc)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
