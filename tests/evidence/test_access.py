"""Bearer tokens are verified strictly: one algorithm, our issuer and audience, an expiry."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from evidence.access import TokenSigner, bearer_token
from evidence.errors import Unauthorized
from evidence.models import User

SECRET = b"s" * 64  # long enough for HS512, so only the algorithm differs
NOW = datetime.now(UTC)


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(SECRET, "evidence", "evidence-api", timedelta(days=1))


@pytest.fixture
def user() -> User:
    return User(id="a" * 32, email="pc@force.police.uk", role="officer")


def claims(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": "evidence",
        "aud": "evidence-api",
        "sub": "a" * 32,
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(hours=1)).timestamp()),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_issued_token_verifies_to_its_user(signer: TokenSigner, user: User) -> None:
    assert signer.verify(signer.issue(user)) == user.id


@pytest.mark.parametrize(
    "token_claims",
    [
        claims(aud="someone-else"),
        claims(iss="another-issuer"),
        claims(exp=int((NOW - timedelta(seconds=5)).timestamp())),
        claims(exp=None),
        claims(iat=None),
        claims(sub=None),
        claims(sub=12345),
    ],
    ids=["wrong-audience", "wrong-issuer", "expired", "no-exp", "no-iat", "no-sub", "non-string-sub"],
)
def test_bad_claims_are_rejected(signer: TokenSigner, token_claims: dict[str, object]) -> None:
    token = jwt.encode(token_claims, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized):
        signer.verify(token)


def test_expired_token_says_so(signer: TokenSigner, user: User) -> None:
    token = signer.issue(user, now=NOW - timedelta(days=2))
    with pytest.raises(Unauthorized, match="expired"):
        signer.verify(token)


def test_alg_none_is_rejected(signer: TokenSigner) -> None:
    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."
    with pytest.raises(Unauthorized):
        signer.verify(token)


def test_other_secret_is_rejected(signer: TokenSigner) -> None:
    with pytest.raises(Unauthorized):
        signer.verify(jwt.encode(claims(), b"x" * 64, algorithm="HS256"))


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_hmac_algorithm_is_rejected(signer: TokenSigner, algorithm: str) -> None:
    with pytest.raises(Unauthorized):
        signer.verify(jwt.encode(claims(), SECRET, algorithm=algorithm))


def test_rsa_signed_token_is_rejected(signer: TokenSigner) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized):
        signer.verify(jwt.encode(claims(), key, algorithm="RS256"))


def test_tampered_payload_is_rejected(signer: TokenSigner, user: User) -> None:
    header, _, signature = signer.issue(user).split(".")
    forged = f"{header}.{b64(claims(role='admin'))}.{signature}"
    with pytest.raises(Unauthorized):
        signer.verify(forged)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic abc", "Token abc", "Bearer    "])
def test_malformed_authorization_header(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        bearer_token(header)


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token("bearer abc.def.ghi") == "abc.def.ghi"
