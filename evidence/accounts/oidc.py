"""Access tokens from the force's identity provider (OpenID Connect), verified against the
issuer's published keys (JWKS).

Verification is strict: the algorithm must be one of the configured asymmetric ones (so
``alg: none`` and HS256 signed with the public key never reach a key), the key is the one
the token's ``kid`` names in the issuer's key set, and issuer, audience, expiry, issued-at
and subject are all required. The role comes from a configurable claim.

An email address is only as good as the provider's word on it: an account is bound to the
token's address only when the token's verified-email claim (``email_verified`` by default,
configurable) is exactly ``true`` (see :func:`evidence.access.user_for`).

The key set is cached; a token signed with a key the cache has not seen (a rotation)
fetches the set again, at most once per cooldown, so made-up ``kid`` values cannot turn
into a flood of requests to the identity provider. When the provider cannot be reached,
the last good key set is kept: a provider outage must not lock every officer out.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError

from evidence.accounts.jwtcheck import strict_claims
from evidence.errors import Forbidden, Unauthorized, Unavailable
from evidence.models import ROLES, Role

log = logging.getLogger(__name__)

# When a token carries several of our roles, the first of these wins.
ROLE_PRECEDENCE = (Role.ADMIN, Role.AUDITOR, Role.OFFICER, Role.REVIEWER)


@dataclass(frozen=True)
class Identity:
    """Who a verified identity-provider token names."""

    issuer: str
    subject: str
    email: str
    role: Role
    # True only when the token's verified-email claim is exactly true.
    email_verified: bool = False
    # The token's `iat` (seconds since the epoch): a revocation covers tokens issued until then.
    issued_at: float = 0.0


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by dotted path into nested objects ("realm_access.roles").
    A name that itself contains dots (namespaced claims: "https://force.example/roles")
    is tried whole first."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def parse_role_map(text: str) -> dict[str, Role]:
    """``"idp-value=role,..."`` to a mapping; every target must be one of our roles."""
    mapping: dict[str, Role] = {}
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        source, sep, target = (s.strip() for s in pair.rpartition("="))
        if not sep or not source or target not in ROLES:
            raise ValueError(f"role map entry {pair!r} must be IDP_VALUE=ROLE with ROLE one of {', '.join(ROLES)}")
        mapping[source] = Role(target)
    return mapping


def role_from(value: Any, mapping: Mapping[str, Role]) -> Role | None:
    """Our role for a role claim's value (a string, a space-separated string or a list of
    strings), or None when it names none we know."""
    if isinstance(value, str):
        values: Sequence[Any] = value.split()
    elif isinstance(value, list):
        values = value
    else:
        return None
    found: set[Role] = set()
    for raw in values:
        if not isinstance(raw, str):
            continue
        role = mapping.get(raw, Role(raw) if raw in ROLES else None)
        if role is not None:
            found.add(role)
    return next((role for role in ROLE_PRECEDENCE if role in found), None)


class KeySet(PyJWKClient):
    """PyJWT's JWKS client, keeping the last good key set when a fetch fails."""

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri, **options)
        self._last_good: Any = None

    def fetch_data(self) -> Any:
        try:
            data = super().fetch_data()
        except PyJWKClientConnectionError:
            if self._last_good is None:
                raise
            log.warning("the identity provider's key set at %s is unreachable; using the last one fetched", self.uri)
            return self._last_good  # cached again by the caller: the next try is one lifespan away
        self._last_good = data
        return data


class OidcVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        algorithms: Sequence[str],
        *,
        jwks_url: str = "",
        role_claim: str = "roles",
        role_map: Mapping[str, Role | str] | None = None,
        email_claim: str = "email",
        email_verified_claim: str = "email_verified",
        leeway: float = 30,
        cache_seconds: float = 300,
        refresh_cooldown: float = 30,
        timeout: float = 5,
    ) -> None:
        if not audience:
            raise ValueError("EVIDENCE_OIDC_AUDIENCE must be set when EVIDENCE_OIDC_ISSUER is")
        if any(alg == "none" or alg.startswith("HS") for alg in algorithms) or not algorithms:
            raise ValueError("OIDC tokens are verified with asymmetric algorithms only")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self.role_claim = role_claim
        self.role_map = {source: Role(target) for source, target in (role_map or {}).items()}
        self.email_claim = email_claim
        self.email_verified_claim = email_verified_claim
        self.leeway = leeway
        self._jwks_url = jwks_url
        self._client_options = {
            "lifespan": cache_seconds,
            "cooldown_duration": refresh_cooldown,
            "timeout": timeout,
        }
        self._timeout = timeout
        self._keys: KeySet | None = None
        self._keys_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> OidcVerifier | None:
        if not settings.oidc_issuer:
            return None
        if settings.oidc_issuer == settings.token_issuer:
            raise ValueError("EVIDENCE_OIDC_ISSUER must differ from EVIDENCE_TOKEN_ISSUER (tokens are told apart by it)")
        return cls(
            settings.oidc_issuer,
            settings.oidc_audience,
            settings.oidc_algorithm_list,
            jwks_url=settings.oidc_jwks_url,
            role_claim=settings.oidc_role_claim,
            role_map=parse_role_map(settings.oidc_role_map),
            email_claim=settings.oidc_email_claim,
            email_verified_claim=settings.oidc_email_verified_claim,
            leeway=settings.oidc_leeway_seconds,
            cache_seconds=settings.oidc_jwks_cache_seconds,
            refresh_cooldown=settings.oidc_jwks_refresh_cooldown_seconds,
            timeout=settings.oidc_http_timeout_seconds,
        )

    def verify(self, token: str) -> Identity:
        """The identity a token names, or Unauthorized (bad token), Forbidden (no role we
        know) or Unavailable (the provider's keys cannot be had)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("invalid token") from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise Unauthorized("invalid token")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("invalid token")
        key = self.signing_key(kid)
        claims = strict_claims(token, key, algorithm, self.audience, self.issuer, self.leeway)
        subject = claims["sub"]
        role = role_from(claim_at(claims, self.role_claim), self.role_map)
        if role is None:
            raise Forbidden(f"the token's {self.role_claim!r} claim names no role of this service")
        email = claim_at(claims, self.email_claim)
        if not isinstance(email, str) or "@" not in email:
            raise Forbidden(f"the token has no email address in its {self.email_claim!r} claim")
        # Exactly true: not "true", not 1, not present-and-null. No claim configured: the
        # operator says the provider issues only addresses it manages (Entra ID's upn, say,
        # whose access tokens carry no email_verified), so every address counts as verified.
        verified = not self.email_verified_claim or claim_at(claims, self.email_verified_claim) is True
        return Identity(self.issuer, subject, email.strip().lower(), role, verified, claims["iat"])

    def signing_key(self, kid: str) -> PyJWK:
        """The provider's key ``kid`` from its key set (cached; fetched again for an unknown
        kid), for its access tokens and, at the browser sign-in, its ID tokens."""
        keys = self._key_set()
        try:
            return keys.get_signing_key(kid)
        except PyJWKClientConnectionError:
            raise Unavailable("the identity provider's signing keys cannot be fetched; try again shortly") from None
        except jwt.PyJWTError:
            # An unknown kid (after one refresh), or a key set with no usable keys.
            raise Unauthorized("invalid token") from None

    def _key_set(self) -> KeySet:
        with self._keys_lock:
            if self._keys is None:
                self._keys = KeySet(self._jwks_url or self._discover(), **self._client_options)
            return self._keys

    def _discover(self) -> str:
        """The jwks_uri from the issuer's discovery document (OpenID Connect Discovery 1.0)."""
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as response:  # noqa: S310 (the operator's URL)
                document = json.load(response)
        except (OSError, ValueError) as error:
            raise Unavailable(f"the identity provider's discovery document cannot be read: {error}") from None
        if not isinstance(document, dict) or document.get("issuer") != self.issuer:
            raise Unavailable("the identity provider's discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise Unavailable("the identity provider's discovery document has no usable jwks_uri")
        return jwks_uri
