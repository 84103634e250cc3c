"""Strict JWT checking shared by the server's own bearer tokens and OpenID Connect ones."""

from __future__ import annotations

import math
from typing import Any

import jwt

from evidence.errors import Unauthorized


def strict_claims(token: str, key: Any, algorithm: str, audience: str, issuer: str, leeway: float = 0) -> dict[str, Any]:
    """The claims of a token signed with exactly ``algorithm`` for our audience and issuer,
    with expiry, issue time and a non-empty string subject; otherwise Unauthorized.

    The issue time must be a finite number (RFC 7519 NumericDate, fractions allowed): it
    decides whether a revocation covers the token, so a string or a boolean is refused."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[algorithm], audience=audience, issuer=issuer, leeway=leeway,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid token") from None
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise Unauthorized("invalid token")
    if not is_numeric_date(claims["iat"]):
        raise Unauthorized("invalid token")
    return claims


def is_numeric_date(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
