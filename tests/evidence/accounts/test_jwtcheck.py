"""The strict JWT check (evidence.accounts.jwtcheck) shared by local and identity-provider
tokens: exactly one algorithm, our audience and issuer, every required claim, a string
subject and a numeric issue time. Everything else is one answer: Unauthorized."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from evidence.accounts.jwtcheck import is_numeric_date, strict_claims
from evidence.errors import Unauthorized

SECRET = b"s" * 64  # long enough for HS512 too: a short key is a warning, and warnings are errors
NOW = int(time.time())  # for values that need only be numbers, not times


def good() -> dict[str, Any]:
    """Good claims as of now: made per test, since a test may run long after this module loads."""
    now = int(time.time())
    return {"iss": "evidence", "aud": "evidence-api", "sub": "u1", "iat": now, "exp": now + 600}


def _token(claims: dict[str, Any], key: bytes = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _check(token: str) -> dict[str, Any]:
    return strict_claims(token, SECRET, "HS256", "evidence-api", "evidence")


def test_a_good_token_gives_its_claims() -> None:
    assert _check(_token({**good(), "role": "officer"}))["role"] == "officer"
    claims = good()
    fractional = {**claims, "iat": claims["iat"] + 0.123456}
    assert _check(_token(fractional))["iat"] == claims["iat"] + 0.123456


@pytest.mark.parametrize("change", [
    {"iss": "someone-else"}, {"aud": "another-api"}, {"sub": ""}, {"sub": 7}, {"iat": "yesterday"},
    {"iat": True}, {"iat": None},
])
def test_a_wrong_claim_is_an_invalid_token(change: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized, match=r"^invalid token$"):
        _check(_token({**good(), **change}))


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "iss", "aud"])
def test_every_required_claim_must_be_there(missing: str) -> None:
    with pytest.raises(Unauthorized, match=r"^invalid token$"):
        _check(_token({k: v for k, v in good().items() if k != missing}))


def test_an_expired_token_says_so() -> None:
    with pytest.raises(Unauthorized, match=r"^token expired$"):
        _check(_token({**good(), "exp": int(time.time()) - 10}))


def test_only_the_named_algorithm_and_key() -> None:
    for token in (_token(good(), b"another secret" * 5), _token(good(), algorithm="HS512"),
                  jwt.encode(good(), None, algorithm="none"), "not.a.token", ""):
        with pytest.raises(Unauthorized, match=r"^invalid token$"):
            _check(token)


def test_leeway_is_the_callers() -> None:
    late = _token({**good(), "exp": int(time.time()) - 5})
    assert strict_claims(late, SECRET, "HS256", "evidence-api", "evidence", leeway=60)["sub"] == "u1"


@pytest.mark.parametrize(("value", "numeric"), [
    (0, True), (1.5, True), (NOW, True), (True, False), (False, False), ("1", False), (None, False),
    (float("inf"), False), (float("nan"), False), (-float("inf"), False), ([1], False),
])
def test_numeric_dates(value: object, numeric: bool) -> None:
    assert is_numeric_date(value) is numeric
