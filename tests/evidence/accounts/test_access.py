"""Bearer tokens are verified strictly: one algorithm, our issuer and audience, an expiry;
and a revocation covers exactly the tokens issued until it, to the microsecond."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from evidence import migrate
from evidence.accounts import users
from evidence.accounts.access import Authenticator, TokenSigner, bearer_token, micros, micros_of, numeric_date, revoked
from evidence.db import Database
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
    presented = signer.verify(signer.issue(user, now=NOW))
    assert presented.user_id == user.id
    assert micros_of(presented.issued_at) == micros(NOW)  # to the microsecond


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
        claims(iat=str(int(NOW.timestamp()))),
        claims(iat=True),
    ],
    ids=["wrong-audience", "wrong-issuer", "expired", "no-exp", "no-iat", "no-sub", "non-string-sub",
         "string-iat", "boolean-iat"],
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


# -- revocation ---------------------------------------------------------------------------


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2105, 12, 31), timezones=st.just(UTC)))
def test_issue_times_survive_the_token_to_the_microsecond(moment: datetime) -> None:
    assert micros_of(jwt_roundtrip(numeric_date(moment))) == micros(moment)


def jwt_roundtrip(value: float) -> float:
    return float(jwt.decode(jwt.encode({"iat": value}, SECRET, algorithm="HS256"), SECRET, algorithms=["HS256"],
                            options={"verify_iat": False})["iat"])


def test_a_revocation_covers_what_was_issued_until_it() -> None:
    at = datetime(2025, 3, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    second = int(at.timestamp())
    assert not revoked(numeric_date(at), None)
    assert revoked(numeric_date(at - timedelta(microseconds=1)), at)
    assert revoked(numeric_date(at), at)  # the same microsecond: before it
    assert not revoked(numeric_date(at + timedelta(microseconds=1)), at)
    # Whole seconds (identity providers): the revocation's own second cannot be told apart.
    assert revoked(second, at)
    assert not revoked(second + 1, at)
    assert revoked(float(second + 1), at + timedelta(seconds=0.5))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'evidence.db'}")
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


def _authenticate(db: Database, signer: TokenSigner, token: str) -> User:
    with db.sessions() as session:
        return Authenticator(signer).authenticate(session, f"Bearer {token}")


def _revoke(db: Database, email: str, at: datetime) -> None:
    with db.transaction() as session:
        users.revoke_tokens(session, users.user_by_email(session, email), "operator:test@host", now=at)


def test_tokens_issued_in_the_second_of_a_revocation(db: Database, signer: TokenSigner) -> None:
    second = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    with db.transaction() as session:
        officer = users.add_user(session, "pc@force.police.uk", "officer")
    before = signer.issue(officer, now=second + timedelta(milliseconds=100))
    assert _authenticate(db, signer, before).email == "pc@force.police.uk"
    _revoke(db, "pc@force.police.uk", second + timedelta(milliseconds=300))
    with pytest.raises(Unauthorized, match="revoked"):
        _authenticate(db, signer, before)
    after = signer.issue(_reload(db, officer), now=second + timedelta(milliseconds=600))
    assert _authenticate(db, signer, after).email == "pc@force.police.uk"


def test_a_token_issued_at_once_after_a_revocation_works(db: Database, signer: TokenSigner) -> None:
    # A clock that has not moved on since the revocation (or lags the node that revoked).
    with db.transaction() as session:
        officer = users.add_user(session, "pc@force.police.uk", "officer")
    at = datetime.now(UTC) - timedelta(seconds=5)
    old = signer.issue(officer, now=at)
    _revoke(db, "pc@force.police.uk", at)
    for now in (at, at - timedelta(seconds=2)):
        fresh = signer.issue(_reload(db, officer), now=now)
        assert _authenticate(db, signer, fresh).id == officer.id
    with pytest.raises(Unauthorized, match="revoked"):
        _authenticate(db, signer, old)


def test_a_revocation_never_moves_back(db: Database, signer: TokenSigner) -> None:
    with db.transaction() as session:
        officer = users.add_user(session, "pc@force.police.uk", "officer")
    at = datetime.now(UTC) - timedelta(seconds=5)
    token = signer.issue(officer, now=at - timedelta(seconds=1))
    _revoke(db, "pc@force.police.uk", at)
    _revoke(db, "pc@force.police.uk", at - timedelta(seconds=3))  # a clock stepped back
    assert _reload(db, officer).tokens_valid_after == at
    with pytest.raises(Unauthorized, match="revoked"):
        _authenticate(db, signer, token)


def test_a_disabled_account_is_refused_until_enabled(db: Database, signer: TokenSigner) -> None:
    with db.transaction() as session:
        officer = users.add_user(session, "pc@force.police.uk", "officer")
    token = signer.issue(officer)
    with db.transaction() as session:
        assert users.set_disabled(session, users.user_by_email(session, officer.email), True, "operator:test@host")
        assert not users.set_disabled(session, users.user_by_email(session, officer.email), True, "operator:test@host")
    with pytest.raises(Unauthorized, match="disabled"):
        _authenticate(db, signer, token)
    with db.transaction() as session:
        assert users.set_disabled(session, users.user_by_email(session, officer.email), False, "operator:test@host")
    assert _authenticate(db, signer, token).id == officer.id


def _reload(db: Database, user: User) -> User:
    session: Session
    with db.sessions() as session:
        return session.get_one(User, user.id)
