"""Accounts: adding one, finding one by email, revoking its tokens, disabling it. Each
change that matters to custody is recorded in the caller's transaction."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from evidence import custody
from evidence.custody.actions import Action
from evidence.errors import Conflict, InvalidInput, NotFound
from evidence.models import ROLES, Role, User, utcnow

EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")


def add_user(session: Session, email: str, role: Role | str) -> User:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of: {', '.join(ROLES)}")
    role = Role(role)
    email = email.strip().lower()
    if not EMAIL.fullmatch(email):
        raise InvalidInput(f"{email!r} is not an email address")
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        try:
            with session.begin_nested():
                user = User(email=email, role=role.value)
                session.add(user)
        except IntegrityError:  # added at the same moment by someone else: theirs counts
            user = session.scalar(select(User).where(User.email == email))
            if user is None:  # neither ours nor theirs: not a duplicate, so say what it was
                raise
    if user.role != role:
        raise Conflict(f"{email} already exists with role {user.role}")
    if user.disabled_at is not None:
        raise Conflict(f"{email} is disabled; enable the account first (evidence users enable)")
    return user  # adding an existing user again issues a fresh token


def user_by_email(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()).with_for_update())
    if user is None:
        raise NotFound(f"no account {email.strip().lower()}")
    return user


def revoke_tokens(session: Session, user: User, actor: str, now: datetime | None = None) -> datetime:
    """Every token issued to ``user`` until now stops working: local tokens and the
    identity provider's alike, by their issue time. Returns the new ``tokens_valid_after``."""
    now = now or utcnow()
    # Never backwards (a clock stepped back must not bring revoked tokens back to life).
    if user.tokens_valid_after is None or now > user.tokens_valid_after:
        user.tokens_valid_after = now
    session.flush()
    custody.record(session, Action.USER_REVOKED, subject={"user": user.email}, actor=actor,
                   details={"role": user.role, "tokens_valid_after": user.tokens_valid_after.isoformat()})
    return user.tokens_valid_after


def set_disabled(session: Session, user: User, disabled: bool, actor: str) -> bool:
    """Shut an account (every token refused while it is) or open it again; False if it
    already was. Disabling revokes nothing by itself: revoke too if a token may have leaked."""
    if disabled == (user.disabled_at is not None):
        return False
    user.disabled_at = utcnow() if disabled else None
    session.flush()
    custody.record(session, Action.USER_DISABLED if disabled else Action.USER_ENABLED, subject={"user": user.email},
                   actor=actor, details={"role": user.role})
    return True
