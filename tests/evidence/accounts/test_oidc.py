"""Identity-provider tokens: verified against a key set served over real HTTP by a local
stand-in provider, signed with RS256 and ES256 test keys; and every way a token can be
wrong, refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from evidence.accounts.oidc import OidcVerifier, claim_at, parse_role_map, role_from
from evidence.errors import Forbidden, Unauthorized, Unavailable
from tests.support.idp import AUDIENCE, IdentityProvider


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        provider.add_key("RS256")
        provider.add_key("ES256")
        yield provider


def verifier(idp: IdentityProvider, **options: Any) -> OidcVerifier:
    options = {"jwks_url": idp.jwks_url, "refresh_cooldown": 0, **options}
    return OidcVerifier(idp.issuer, AUDIENCE, ("RS256", "ES256"), **options)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value).encode())


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_tokens_of_each_algorithm_verify(idp: IdentityProvider, alg: str) -> None:
    kid = next(k for k, (a, _) in idp.private.items() if a == alg)
    identity = verifier(idp).verify(idp.token(kid))
    assert (identity.issuer, identity.subject, identity.email, identity.role) == (
        idp.issuer, "f:1b2c3d4e:pc.smith", "pc.smith@force.police.uk", "officer",
    )


def test_key_set_is_fetched_once_and_cached(idp: IdentityProvider) -> None:
    check = verifier(idp)
    for kid in idp.published * 3:
        check.verify(idp.token(kid))
    assert idp.jwks_fetches == 1


def test_the_issuer_discovery_document_gives_the_key_set(idp: IdentityProvider) -> None:
    assert verifier(idp, jwks_url="").verify(idp.token()).role == "officer"


def _rejected(idp: IdentityProvider) -> dict[str, str]:
    rsa_kid, ec_kid = idp.published
    now = int(time.time())
    signed = idp.token(rsa_kid)
    header, payload, signature = signed.split(".")
    # Algorithm confusion: HS256 keyed with the provider's public key, which anyone has.
    confused_header = segment({"alg": "HS256", "typ": "JWT", "kid": rsa_kid})
    confused_payload = segment(idp.claims())
    mac = hmac.new(idp.public_pem(rsa_kid), f"{confused_header}.{confused_payload}".encode(), hashlib.sha256).digest()
    stranger = IdentityProvider()
    stranger.port = idp.port  # the same issuer name, another key
    stranger_kid = stranger.add_key("RS256")
    stranger.private[rsa_kid] = stranger.private.pop(stranger_kid)  # and even the same kid
    stranger.published = [rsa_kid]
    return {
        "expired": idp.token(iat=now - 3600, exp=now - 120),
        "wrong audience": idp.token(aud="another-api"),
        "wrong issuer": idp.token(iss="http://127.0.0.1:1/realms/other"),
        "no expiry": idp.token(exp=None),
        "no issued-at": idp.token(iat=None),
        "no subject": idp.token(sub=None),
        "empty subject": idp.token(sub=""),
        "alg none": f"{segment({'alg': 'none', 'typ': 'JWT', 'kid': rsa_kid})}.{segment(idp.claims())}.",
        "HS256 with the public key": f"{confused_header}.{confused_payload}.{b64(mac)}",
        "unknown kid": idp.token(idp.add_key("RS256", publish=False)),
        "no kid": f"{segment({'alg': 'RS256', 'typ': 'JWT'})}.{payload}.{signature}",
        "RS256 header on the EC key": f"{segment({'alg': 'RS256', 'typ': 'JWT', 'kid': ec_kid})}.{payload}.{signature}",
        "another key, same kid": stranger.token(rsa_kid),
        "tampered payload": f"{header}.{segment(idp.claims(roles=['admin']))}.{signature}",
        "signature cut": f"{header}.{payload}.",
        "garbage": "not.a.jwt",
    }


def test_bad_tokens_are_refused(idp: IdentityProvider) -> None:
    check = verifier(idp)
    for name, token in _rejected(idp).items():
        with pytest.raises(Unauthorized) as raised:
            check.verify(token)
        assert ("expired" in raised.value.message) == (name == "expired"), name


def test_a_rotated_key_is_accepted_once_published(idp: IdentityProvider) -> None:
    check = verifier(idp)
    check.verify(idp.token())
    new_kid = idp.add_key("ES256", publish=False)
    token = idp.token(new_kid)
    with pytest.raises(Unauthorized):
        check.verify(token)  # not published yet: refused after one refresh
    idp.published = [new_kid]  # the provider rotates: the old key is withdrawn
    assert check.verify(token).role == "officer"
    assert idp.jwks_fetches == 3


def test_unknown_kids_refresh_the_key_set_at_most_once_per_cooldown(idp: IdentityProvider) -> None:
    check = verifier(idp, refresh_cooldown=60)
    check.verify(idp.token())
    for _ in range(20):
        with pytest.raises(Unauthorized):
            check.verify(idp.token(idp.add_key("RS256", publish=False)))
    assert idp.jwks_fetches == 1  # the first fetch starts the cooldown: made-up kids cost nothing


def test_the_last_good_key_set_outlives_a_provider_outage(idp: IdentityProvider) -> None:
    check = verifier(idp, cache_seconds=0.05, timeout=1)
    token = idp.token()
    check.verify(token)
    idp.stop()
    time.sleep(0.1)  # the cached set has expired: the next token needs a fetch, which fails
    assert check.verify(token).role == "officer"


def test_an_unreachable_provider_is_unavailable_not_unauthorized(idp: IdentityProvider) -> None:
    token = idp.token()
    idp.stop()
    for jwks_url in (idp.jwks_url, ""):
        with pytest.raises(Unavailable):
            verifier(idp, jwks_url=jwks_url, timeout=1).verify(token)


@pytest.mark.parametrize(
    ("changes", "role_claim", "role_map", "expected"),
    [
        ({"roles": ["officer"]}, "roles", "", "officer"),
        ({"roles": "auditor"}, "roles", "", "auditor"),
        ({"roles": ["officer", "admin"]}, "roles", "", "admin"),
        ({"role": "reviewer", "roles": None}, "role", "", "reviewer"),
        ({"scp": "openid evidence.officer", "roles": None}, "scp", "evidence.officer=officer", "officer"),
        ({"realm_access": {"roles": ["offline_access", "evidence-auditor"]}, "roles": None}, "realm_access.roles",
         "evidence-auditor=auditor", "auditor"),
        ({"https://force.example/roles": ["evidence-admin"], "roles": None}, "https://force.example/roles",
         "evidence-admin=admin", "admin"),
    ],
)
def test_the_role_comes_from_the_configured_claim(
    idp: IdentityProvider, changes: dict[str, Any], role_claim: str, role_map: str, expected: str
) -> None:
    check = verifier(idp, role_claim=role_claim, role_map=parse_role_map(role_map))
    assert check.verify(idp.token(**changes)).role == expected


@pytest.mark.parametrize(
    "changes",
    [{"roles": None}, {"roles": []}, {"roles": ["superuser"]}, {"roles": 7}, {"roles": [{"name": "admin"}]}],
    ids=["missing", "empty", "unknown", "not-a-list", "objects"],
)
def test_no_recognised_role_is_forbidden(idp: IdentityProvider, changes: dict[str, Any]) -> None:
    with pytest.raises(Forbidden, match="roles"):
        verifier(idp).verify(idp.token(**changes))


def test_no_email_is_forbidden(idp: IdentityProvider) -> None:
    with pytest.raises(Forbidden, match="email"):
        verifier(idp).verify(idp.token(email=None))


def test_shared_secret_algorithms_cannot_be_configured() -> None:
    for algorithms in (("HS256",), ("RS256", "none"), ()):
        with pytest.raises(ValueError):
            OidcVerifier("https://idp", AUDIENCE, algorithms)
    with pytest.raises(ValueError):
        OidcVerifier("https://idp", "", ("RS256",))


def test_claim_paths_and_role_maps() -> None:
    claims = {"a": {"b": {"c": ["x"]}}, "a.b": "whole"}
    assert claim_at(claims, "a.b") == "whole"
    assert claim_at(claims, "a.b.c") == ["x"]
    assert claim_at(claims, "a.z") is None
    assert role_from("officer  admin", {}) == "admin"
    assert role_from(["x"], {"x": "reviewer"}) == "reviewer"
    with pytest.raises(ValueError):
        parse_role_map("x=superuser")
    with pytest.raises(ValueError):
        parse_role_map("justaname")


@pytest.mark.parametrize(
    ("changes", "claim", "verified"),
    [
        ({}, "email_verified", True),
        ({"email_verified": None}, "email_verified", False),
        ({"email_verified": False}, "email_verified", False),
        ({"email_verified": "true"}, "email_verified", False),
        ({"email_verified": 1}, "email_verified", False),
        ({"email_verified": None, "mail_checked": True}, "mail_checked", True),
        ({"email_verified": True}, "mail_checked", False),
        ({"email_verified": None, "ext": {"verified": True}}, "ext.verified", True),
        ({"email_verified": None}, "", True),  # the operator trusts the provider's addresses
    ],
    ids=["true", "missing", "false", "string", "one", "configured", "configured-missing", "dotted", "trusted"],
)
def test_an_email_is_verified_only_when_the_configured_claim_is_exactly_true(
    idp: IdentityProvider, changes: dict[str, Any], claim: str, verified: bool
) -> None:
    identity = verifier(idp, email_verified_claim=claim).verify(idp.token(**changes))
    assert identity.email_verified is verified


def test_the_issue_time_is_kept_for_revocation(idp: IdentityProvider) -> None:
    issued = int(time.time()) - 7
    assert verifier(idp).verify(idp.token(iat=issued)).issued_at == issued
    with pytest.raises(Unauthorized):
        verifier(idp).verify(idp.token(iat="1700000000"))
