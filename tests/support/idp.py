"""A stand-in OpenID Connect identity provider: its discovery document and key set served
over real HTTP from a thread, and access tokens signed with test keys (RS256, ES256) made
with ``cryptography``. Keys can be added, published and withdrawn (rotation); the server
counts the key-set fetches and can be stopped (an outage) and started again."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "evidence-api"


class IdentityProvider:
    def __init__(self) -> None:
        self.private: dict[str, tuple[str, Any]] = {}  # kid -> (alg, private key)
        self.published: list[str] = []
        self.jwks_fetches = 0
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

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

        return self.private[kid][1].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

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

    # -- the server ----------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/realms/force"

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks.json"

    def settings(self, **more: Any) -> dict[str, Any]:
        """Keyword arguments for :class:`evidence.settings.Settings`."""
        return {"oidc_issuer": self.issuer, "oidc_audience": AUDIENCE, "oidc_jwks_url": self.jwks_url, **more}

    def start(self) -> IdentityProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/jwks.json":
                    provider.jwks_fetches += 1
                    body = provider.jwks()
                elif self.path == "/realms/force/.well-known/openid-configuration":
                    body = {"issuer": provider.issuer, "jwks_uri": provider.jwks_url}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
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
