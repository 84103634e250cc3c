"""Who is asking: bearer tokens for officers, reviewers, auditors and admins.

Two kinds of token, told apart by their ``iss`` claim:

- local tokens (``evidence users add``): HS256 JWTs signed with the server's secret. One
  algorithm only (so ``alg: none`` and algorithm confusion fail), our issuer and audience,
  and an expiry, issued-at and subject are all required. The token names a user; the
  user's current row (role, disabled, revoked) is what counts.
- the force's identity provider (OpenID Connect, :mod:`evidence.oidc`): the account is
  found or created from the token's subject and (verified) email, and takes the token's role.

Either way, a token is refused when its account is disabled or when it was issued at or
before the account's ``tokens_valid_after`` (``evidence users revoke``). The row is read on
every request, so a revocation takes effect on the next request on every API node. Local
tokens carry their issue time to the microsecond (RFC 7519 allows a fractional NumericDate),
so a token issued in the same second as a revocation, but before it, does not survive it,
and one issued after it does. Identity-provider tokens usually carry whole seconds: one
issued in the second of the revocation cannot be told from one issued just before, and is
refused (sign in again a moment later).

:class:`Authenticator` is the one entry point; the API and the tus hooks both use it.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import jwt
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from evidence.accounts.jwtcheck import strict_claims
from evidence.accounts.oidc import Identity, OidcVerifier
from evidence.errors import Forbidden, Unauthorized
from evidence.models import Role, User

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class LocalToken(NamedTuple):
    """A verified local token: the user it names and when it was issued (epoch seconds)."""

    user_id: str
    issued_at: float


class TokenSigner:
    def __init__(self, secret: bytes, issuer: str, audience: str, ttl: timedelta) -> None:
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl

    def issue(self, user: User, now: datetime | None = None) -> str:
        # Strictly after the last revocation, even on a clock that has not moved on since
        # (or is a little behind the node that revoked): a token issued after a revocation works.
        issued = now or datetime.now(UTC)
        if user.tokens_valid_after is not None and issued <= user.tokens_valid_after:
            issued = user.tokens_valid_after + _MICROSECOND
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user.id,
            "role": user.role,
            "iat": numeric_date(issued),
            "exp": int((issued + self.ttl).timestamp()),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> LocalToken:
        """The user a token names and its issue time, or Unauthorized."""
        claims = strict_claims(token, self._secret, ALGORITHM, self.audience, self.issuer)
        return LocalToken(str(claims["sub"]), claims["iat"])


def numeric_date(moment: datetime) -> float:
    """``moment`` as a JWT NumericDate to the microsecond (exact: see :func:`micros_of`)."""
    return micros(moment) / 1_000_000


def micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def micros_of(numeric: float) -> int:
    # Below 2**32 seconds (the year 2106) a double's step is under a microsecond, and both
    # the division that made the NumericDate and this product are correctly rounded, so
    # rounding gives back the microseconds issued (a property test checks it).
    return round(numeric * 1_000_000)


def revoked(issued_at: float, valid_after: datetime | None) -> bool:
    """Whether a token issued at ``issued_at`` (epoch seconds) is covered by a revocation
    at ``valid_after``. Issued at the very microsecond of the revocation counts as before it."""
    return valid_after is not None and micros_of(issued_at) <= micros(valid_after)


def admit(user: User, issued_at: float) -> User:
    """``user`` if a token of theirs issued at ``issued_at`` may act now; else Unauthorized."""
    if user.disabled_at is not None:
        raise Unauthorized("this account is disabled")
    if revoked(issued_at, user.tokens_valid_after):
        raise Unauthorized("this token has been revoked; get a new one")
    return user


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
            return user_for(session, self.oidc.verify(token), self.oidc.email_verified_claim)
        # Anything else is a local token or nothing: the signer checks the issuer.
        presented = self.signer.verify(token)
        user = session.get(User, presented.user_id)
        if user is None:
            raise Unauthorized("invalid token")
        return admit(user, presented.issued_at)


def authenticate(session: Session, signer: TokenSigner, authorization: str | None) -> User:
    """A local token only (kept for callers with no identity provider at hand)."""
    return Authenticator(signer).authenticate(session, authorization)


def _unverified_issuer(token: str) -> object:
    # Only to choose the verifier; the chosen one checks the issuer again, signed.
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise Unauthorized("invalid token") from None


def user_for(session: Session, identity: Identity, verified_claim: str = "email_verified") -> User:
    """The account of an identity-provider user, found by issuer and subject, else by
    email (an account added or assigned before its first sign-in), else created. The
    provider is the authority on the role: the account follows the token's. Changes are
    committed at once, so concurrent first sign-ins find one account.

    An address is bound to an account (linked, created, or changed) only when the token
    says the provider verified it. Otherwise anyone who can type an officer's address into
    their profile at the provider would take over the account the officer was added or
    assigned under, or claim it before the officer's first sign-in."""
    for attempt in range(2):
        user = session.scalar(
            select(User).where(User.idp_issuer == identity.issuer, User.idp_subject == identity.subject)
        )
        if user is None:
            if not identity.email_verified:
                raise Forbidden(
                    f"the identity provider has not verified {identity.email} (the token's {verified_claim!r} "
                    "claim is not true); accounts are matched by verified addresses only"
                )
            user = session.scalar(select(User).where(User.email == identity.email))
            if user is not None and user.idp_subject is not None:
                raise Forbidden(f"{identity.email} is bound to another identity of the identity provider")
        if user is not None:
            admit(user, identity.issued_at)  # before the token may change anything
        changed = _apply(session, user, identity)
        if user is None or changed:
            try:
                with session.begin_nested():
                    if user is None:
                        user = User(email=identity.email, role=identity.role.value, idp_issuer=identity.issuer,
                                    idp_subject=identity.subject)
                        session.add(user)
                session.commit()
            except IntegrityError:
                session.rollback()
                if attempt:
                    raise
                continue  # someone else's first sign-in won the race: read theirs
        if user is not None:
            return user
    raise AssertionError("unreachable: the second attempt returns or raises")


def _apply(session: Session, user: User | None, identity: Identity) -> bool:
    if user is None:
        return False
    changed = False
    if user.idp_subject is None:
        user.idp_issuer, user.idp_subject = identity.issuer, identity.subject
        changed = True
    if user.role != identity.role:
        log.info("account %s: role %s -> %s (from the identity provider)", user.email, user.role, identity.role)
        user.role = identity.role.value
        changed = True
    if (identity.email_verified and user.email != identity.email
            and session.scalar(select(User.id).where(User.email == identity.email)) is None):
        user.email = identity.email
        changed = True
    return changed


def require_role(user: User, *roles: Role) -> User:
    if user.role not in roles:
        raise Forbidden(f"this needs one of the roles: {', '.join(roles)}")
    return user


def actor_of(user: User) -> str:
    return f"user:{user.email}"
