"""Strict JWT checking shared by the server's own bearer tokens and OpenID Connect ones."""

from __future__ import annotations

from typing import Any

import jwt

from evidence.errors import Unauthorized


def strict_claims(token: str, key: Any, algorithm: str, audience: str, issuer: str, leeway: float = 0) -> dict[str, Any]:
    """The claims of a token signed with exactly ``algorithm`` for our audience and issuer,
    with expiry, issue time and a non-empty string subject; otherwise Unauthorized."""
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
    return claims
