"""Who is asking: bearer tokens for officers, reviewers, auditors and admins.

Two kinds of token, told apart by their ``iss`` claim:

- local tokens (``evidence users add``): HS256 JWTs signed with the server's secret. One
  algorithm only (so ``alg: none`` and algorithm confusion fail), our issuer and audience,
  and an expiry, issued-at and subject are all required. The token names a user; the
  user's current row (role, disabled) is what counts.
- the force's identity provider (OpenID Connect, :mod:`evidence.oidc`): the account is
  found or created from the token's subject and email, and takes the token's role.

:class:`Authenticator` is the one entry point; the API and the tus hooks both use it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import jwt
import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from evidence.errors import Forbidden, Unauthorized
from evidence.jwtcheck import strict_claims
from evidence.models import User
from evidence.oidc import Identity, OidcVerifier

log = logging.getLogger(__name__)

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
        return str(strict_claims(token, self._secret, ALGORITHM, self.audience, self.issuer)["sub"])


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    return token.strip()


class Authenticator:
    """Turns an ``Authorization`` header into a user: a local token or, when configured,
    one from the identity provider."""

    def __init__(self, signer: TokenSigner, oidc: OidcVerifier | None = None) -> None:
        self.signer = signer
        self.oidc = oidc

    def authenticate(self, session: Session, authorization: str | None) -> User:
        token = bearer_token(authorization)
        if self.oidc is not None and _unverified_issuer(token) == self.oidc.issuer:
            user = user_for(session, self.oidc.verify(token))
        else:
            # Anything else is a local token or nothing: the signer checks the issuer.
            user_id = self.signer.verify(token)
            user = session.scalar(select(User).where(User.id == user_id))
        if user is None or user.disabled_at is not None:
            raise Unauthorized("invalid token")
        return user


def authenticate(session: Session, signer: TokenSigner, authorization: str | None) -> User:
    """A local token only (kept for callers with no identity provider at hand)."""
    return Authenticator(signer).authenticate(session, authorization)


def _unverified_issuer(token: str) -> object:
    # Only to choose the verifier; the chosen one checks the issuer again, signed.
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise Unauthorized("invalid token") from None


def user_for(session: Session, identity: Identity) -> User:
    """The account of an identity-provider user, found by issuer and subject, else by
    email (an account added or assigned before its first sign-in), else created. The
    provider is the authority on the role: the account follows the token's. Changes are
    committed at once, so concurrent first sign-ins find one account."""
    for attempt in range(2):
        user = session.scalar(
            select(User).where(User.idp_issuer == identity.issuer, User.idp_subject == identity.subject)
        )
        if user is None:
            user = session.scalar(select(User).where(User.email == identity.email))
            if user is not None and user.idp_subject is not None:
                raise Forbidden(f"{identity.email} is bound to another identity of the identity provider")
            if user is not None and identity.email_verified is False:
                raise Forbidden(f"the identity provider has not verified {identity.email}")
        changed = _apply(session, user, identity)
        if user is None or changed:
            try:
                with session.begin_nested():
                    if user is None:
                        user = User(email=identity.email, role=identity.role, idp_issuer=identity.issuer,
                                    idp_subject=identity.subject)
                        session.add(user)
                session.commit()
            except IntegrityError:
                session.rollback()
                if attempt:
                    raise
                continue  # someone else's first sign-in won the race: read theirs
        assert user is not None
        return user
    raise AssertionError("unreachable")


def _apply(session: Session, user: User | None, identity: Identity) -> bool:
    if user is None:
        return False
    changed = False
    if user.idp_subject is None:
        user.idp_issuer, user.idp_subject = identity.issuer, identity.subject
        changed = True
    if user.role != identity.role:
        log.info("account %s: role %s -> %s (from the identity provider)", user.email, user.role, identity.role)
        user.role = identity.role
        changed = True
    if user.email != identity.email and session.scalar(select(User.id).where(User.email == identity.email)) is None:
        user.email = identity.email
        changed = True
    return changed


def require_role(user: User, *roles: str) -> User:
    if user.role not in roles:
        raise Forbidden(f"this needs one of the roles: {', '.join(roles)}")
    return user


def actor_of(user: User) -> str:
    return f"user:{user.email}"
