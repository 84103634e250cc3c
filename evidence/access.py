"""Who is asking: bearer tokens for officers, reviewers, auditors and admins.

Tokens are HS256 JWTs signed with the server's secret. Verification is strict: one
algorithm only (so ``alg: none`` and algorithm confusion fail), our issuer and audience,
and an expiry, issued-at and subject are all required. The token names a user; the
user's current row (role, disabled) is what counts.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence.errors import Forbidden, Unauthorized
from evidence.models import User

ALGORITHM = "HS256"


class TokenSigner:
    def __init__(self, secret: bytes, issuer: str, audience: str, ttl: timedelta) -> None:
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl

    def issue(self, user: User, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user.id,
            "role": user.role,
            "iat": int(now.timestamp()),
            "exp": int((now + self.ttl).timestamp()),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> str:
        """Return the user id a token names, or raise Unauthorized."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid token") from None
        subject = claims["sub"]
        if not isinstance(subject, str):
            raise Unauthorized("invalid token")
        return subject


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    return token.strip()


def authenticate(session: Session, signer: TokenSigner, authorization: str | None) -> User:
    user_id = signer.verify(bearer_token(authorization))
    user = session.scalar(select(User).where(User.id == user_id))
    if user is None or user.disabled_at is not None:
        raise Unauthorized("invalid token")
    return user


def require_role(user: User, *roles: str) -> User:
    if user.role not in roles:
        raise Forbidden(f"this needs one of the roles: {', '.join(roles)}")
    return user


def actor_of(user: User) -> str:
    return f"user:{user.email}"
