"""A stand-in OpenID Connect identity provider: its discovery document and key set served
over real HTTP from a thread, and access tokens signed with test keys (RS256, ES256) made
with ``cryptography``. Keys can be added, published and withdrawn (rotation); the server
counts the key-set fetches and can be stopped (an outage) and started again.

It also signs people in, as a provider does for a web page's "Sign in with ..." button
(the authorization code flow with PKCE, S256 only):

- the test registers a client (:meth:`IdentityProvider.register_client`) and chooses who is
  signed in at the provider (:meth:`IdentityProvider.sign_in_as`);
- ``GET /authorize`` checks the client and its redirect URI (else a 400 page, no redirect),
  then ``response_type=code``, ``scope`` with openid and an S256 ``code_challenge`` (else a
  redirect with ``error=``), and shows a plain HTML page with a form (POST /authorize, the
  same parameters hidden) and two buttons: **Continue as <email>** and **Cancel**;
- ``POST /authorize`` redirects (302) to ``redirect_uri?code=...&state=...``, or with
  ``error=access_denied`` for Cancel;
- ``POST /token`` redeems a code once, within :attr:`code_seconds`, for its client (with its
  secret, by HTTP Basic or in the form, when it has one), its redirect URI and the verifier
  of its challenge; it answers ``{access_token, id_token, token_type, expires_in}`` or an
  RFC 6749 error (400 ``invalid_grant`` and the like, 401 ``invalid_client``).

:attr:`id_token_changes` alters the next ID tokens (a wrong nonce or audience, say), and
:attr:`token_status` makes the token endpoint fail with that HTTP status."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "evidence-api"
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 4.1


class OAuthError(Exception):
    """An RFC 6749 error answer of the token endpoint."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass
class Client:
    client_id: str
    redirect_uris: list[str]
    secret: str | None = None


@dataclass
class Grant:
    """An authorization code's worth: who, for which client, and the PKCE challenge."""

    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    claims: dict[str, Any]
    issued: float = field(default_factory=time.time)



class IdentityProvider:
    def __init__(self) -> None:
        self.private: dict[str, tuple[str, Any]] = {}  # kid -> (alg, private key)
        self.published: list[str] = []
        self.jwks_fetches = 0
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.clients: dict[str, Client] = {}
        # Who is signed in at the provider: claims for the access token (see claims()).
        self.user: dict[str, Any] = {}
        self.grants: dict[str, Grant] = {}
        self.code_seconds = 60.0
        self.token_seconds = 600
        self.id_token_changes: dict[str, Any] = {}
        self.token_status: int | None = None
        # The kid the token endpoint signs with; the first published one when None.
        self.signing_key: str | None = None
        self.token_requests: list[dict[str, str]] = []  # each one's form, plus "auth": basic|post|none
        self._lock = threading.Lock()

    # -- keys ----------------------------------------------------------------------------

    def add_key(self, alg: str = "RS256", publish: bool = True) -> str:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg == "RS256" else ec.generate_private_key(ec.SECP256R1())
        kid = f"{alg.lower()}-{secrets.token_hex(4)}"
        self.private[kid] = (alg, key)
        if publish:
            self.published.append(kid)
        return kid

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.published:
            alg, key = self.private[kid]
            exporter = RSAAlgorithm if alg == "RS256" else ECAlgorithm
            jwk = exporter.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": alg})
        return {"keys": keys}

    def public_pem(self, kid: str) -> bytes:
        from cryptography.hazmat.primitives import serialization

        pem: bytes = self.private[kid][1].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem

    # -- tokens --------------------------------------------------------------------------

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "f:1b2c3d4e:pc.smith",
            "email": "pc.smith@force.police.uk",
            # Pass email_verified=None to leave it out, as some providers do.
            "email_verified": True,
            "roles": ["officer"],
            "iat": now,
            "exp": now + 600,
        }
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def token(self, kid: str | None = None, headers: dict[str, Any] | None = None, **changes: Any) -> str:
        kid = kid or self.published[0]
        alg, key = self.private[kid]
        return jwt.encode(self.claims(**changes), key, algorithm=alg, headers={"kid": kid, **(headers or {})})

    # -- signing in (authorization code flow with PKCE) -----------------------------------

    def register_client(self, client_id: str, redirect_uri: str, secret: str | None = None) -> Client:
        """A client of the provider; a second call for the same id adds a redirect URI."""
        client = self.clients.setdefault(client_id, Client(client_id, [], secret))
        client.redirect_uris.append(redirect_uri)
        client.secret = secret
        return client

    def sign_in_as(self, email: str, role: str | None = "officer", email_verified: bool | None = True, **claims: Any) -> None:
        """Who the provider's page offers to continue as: claims for the access token it
        issues (see claims(); None leaves a claim out)."""
        local = email.partition("@")[0]
        self.user = {
            "sub": f"f:{hashlib.sha256(email.encode()).hexdigest()[:8]}:{local}",
            "email": email,
            "email_verified": email_verified,
            "roles": None if role is None else [role],
            **claims,
        }

    def approve(self, authorization_url: str, *, cancel: bool = False, http: requests.Session | None = None) -> str:
        """What a person does: open the authorization URL, press Continue (or Cancel) on the
        provider's page. Returns where the provider sends the browser back to."""
        agent: Any = http or requests
        page = agent.get(authorization_url, allow_redirects=False, timeout=5)
        if page.status_code == 302:  # an error, sent straight back
            return str(page.headers["Location"])
        assert page.status_code == 200, page.text
        form = _Form()
        form.feed(page.text)
        name, value = form.buttons["Cancel" if cancel else next(b for b in form.buttons if b.startswith("Continue as "))]
        answer = agent.post(urljoin(authorization_url, form.action), data={**form.fields, name: value},
                            allow_redirects=False, timeout=5)
        assert answer.status_code == 302, answer.text
        return str(answer.headers["Location"])

    def _authorization_error(self, params: dict[str, str]) -> _Response | None:
        client = self.clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if client is None or redirect_uri not in client.redirect_uris:
            # Never redirect to an address the client did not register (RFC 6749 4.1.2.1).
            return _page(400, "<p>Unknown client or redirect URI.</p>")
        if params.get("response_type") != "code":
            return _back(redirect_uri, params, error="unsupported_response_type")
        if "openid" not in params.get("scope", "").split():
            return _back(redirect_uri, params, error="invalid_scope")
        challenge = params.get("code_challenge", "")
        if params.get("code_challenge_method") != "S256" or not re.fullmatch(r"[A-Za-z0-9_-]{43}", challenge):
            return _back(redirect_uri, params, error="invalid_request", error_description="PKCE with S256 is required")
        return None

    def _consent_page(self, params: dict[str, str]) -> _Response:
        refused = self._authorization_error(params)
        if refused is not None:
            return refused
        email = self.claims(**self.user)["email"]
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in params.items()
        )
        return _page(200, (
            '<h1>Force identity provider</h1><form method="post" action="/authorize">' + hidden
            + f'<button type="submit" name="decision" value="allow">Continue as {html.escape(email)}</button>'
            + '<button type="submit" name="decision" value="deny">Cancel</button></form>'
        ))

    def _decide(self, form: dict[str, str]) -> _Response:
        decision = form.pop("decision", "")
        refused = self._authorization_error(form)
        if refused is not None:
            return refused
        if decision != "allow":
            return _back(form["redirect_uri"], form, error="access_denied")
        code = secrets.token_urlsafe(32)
        with self._lock:
            self.grants[code] = Grant(form["client_id"], form["redirect_uri"], form["code_challenge"],
                                      form.get("nonce"), dict(self.user))
        return _back(form["redirect_uri"], form, code=code)

    def _token_endpoint(self, form: dict[str, str], authorization: str | None) -> _Response:
        auth = "basic" if (authorization or "").startswith("Basic ") else "post" if "client_secret" in form else "none"
        with self._lock:
            self.token_requests.append({**form, "auth": auth})
        if self.token_status is not None:
            return _json(self.token_status, {"error": "temporarily_unavailable"})
        try:
            grant = self._redeem(form, authorization)
        except OAuthError as error:
            headers = {"WWW-Authenticate": 'Basic realm="force"'} if error.status == 401 else {}
            return _json(error.status, {"error": error.error, "error_description": error.description}, headers)
        kid = self.signing_key or self.published[0]
        alg, key = self.private[kid]
        now = int(time.time())
        access = self.token(kid, **{"iat": now, "exp": now + self.token_seconds, **grant.claims})
        base = self.claims(**grant.claims)
        digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[-3:]](access.encode()).digest()
        id_claims: dict[str, Any] = {
            "iss": self.issuer, "sub": base["sub"], "aud": grant.client_id, "iat": now, "exp": now + self.token_seconds,
            "auth_time": now, "nonce": grant.nonce, "email": base.get("email"), "email_verified": base.get("email_verified"),
            "at_hash": _b64url(digest[: len(digest) // 2]),
        }
        id_claims.update(self.id_token_changes)
        id_token = jwt.encode({k: v for k, v in id_claims.items() if v is not None}, key, algorithm=alg, headers={"kid": kid})
        return _json(200, {"access_token": access, "id_token": id_token, "token_type": "Bearer",
                           "expires_in": self.token_seconds})

    def _redeem(self, form: dict[str, str], authorization: str | None) -> Grant:
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(authorization[6:], validate=True).decode().partition(":")
            except ValueError:
                raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
            if client_id and client_id != unquote(user.replace("+", " ")):
                raise OAuthError("invalid_client", "client_id differs from the Basic credentials", 401)
            client_id, secret = unquote(user.replace("+", " ")), unquote(password.replace("+", " "))
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError("invalid_client", "unknown client", 401)
        if client.secret is not None and not hmac.compare_digest((secret or "").encode(), client.secret.encode()):
            raise OAuthError("invalid_client", "wrong or missing client secret", 401)
        if form.get("grant_type") != "authorization_code":
            raise OAuthError("unsupported_grant_type", "only authorization_code")
        with self._lock:
            grant = self.grants.pop(form.get("code", ""), None)  # single use, right or wrong
        if grant is None:
            raise OAuthError("invalid_grant", "unknown or used code")
        if time.time() - grant.issued > self.code_seconds:
            raise OAuthError("invalid_grant", "the code has expired")
        if grant.client_id != client.client_id or form.get("redirect_uri") != grant.redirect_uri:
            raise OAuthError("invalid_grant", "the code was issued to another client or redirect URI")
        verifier = form.get("code_verifier", "")
        if not _VERIFIER.fullmatch(verifier) or _b64url(hashlib.sha256(verifier.encode()).digest()) != grant.challenge:
            raise OAuthError("invalid_grant", "the code verifier does not match the code challenge")
        return grant

    # -- the server ----------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/realms/force"

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks.json"

    @property
    def authorization_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/authorize"

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "authorization_endpoint": self.authorization_url,
            "token_endpoint": self.token_url,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "scopes_supported": ["openid", "email", "profile"],
        }

    def settings(self, **more: Any) -> dict[str, Any]:
        """Keyword arguments for :class:`evidence.settings.Settings`."""
        return {"oidc_issuer": self.issuer, "oidc_audience": AUDIENCE, "oidc_jwks_url": self.jwks_url, **more}

    def start(self) -> IdentityProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if self.path == "/jwks.json":
                    provider.jwks_fetches += 1
                    body = provider.jwks()
                elif self.path == "/realms/force/.well-known/openid-configuration":
                    body = provider.discovery()
                elif url.path == "/authorize":
                    self.answer(provider._consent_page(dict(parse_qsl(url.query))))
                    return
                else:
                    self.send_error(404)
                    return
                self.answer(_json(200, body))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                if self.path == "/authorize":
                    self.answer(provider._decide(form))
                elif self.path == "/token":
                    self.answer(provider._token_endpoint(form, self.headers.get("Authorization")))
                else:
                    self.send_error(404)

            def answer(self, response: _Response) -> None:
                status, headers, data = response
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(data))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> IdentityProvider:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


_Response = tuple[int, dict[str, str], bytes]


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> _Response:
    return status, {"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})}, json.dumps(body).encode()


def _page(status: int, body: str) -> _Response:
    text = f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head><body>{body}</body></html>'
    return status, {"Content-Type": "text/html; charset=utf-8"}, text.encode()


def _back(redirect_uri: str, params: dict[str, str], **values: str) -> _Response:
    """Back to the client: ``values`` and the request's state in the redirect URI's query."""
    if "state" in params:
        values["state"] = params["state"]
    return 302, {"Location": f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(values)}"}, b""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Form(HTMLParser):
    """The provider's consent form: its action, hidden fields and buttons (text -> name, value)."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, tuple[str, str]] = {}
        self._button: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = found.get("action", "")
        elif tag == "input" and found.get("type") == "hidden":
            self.fields[found["name"]] = found.get("value", "")
        elif tag == "button":
            self._button = (found.get("name", ""), found.get("value", ""))

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self.buttons[data.strip()] = self._button
            self._button = None
