"""Cases and users: the few domain operations the CLI and the API share, and who may see
which case (officers: the cases they are assigned to; auditors and admins: all).

A case someone may not see is, to them, a case that does not exist: the same 404 with the
same message, so case references cannot be probed."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from evidence import custody
from evidence.errors import Conflict, InvalidInput, NotFound
from evidence.models import ROLES, Case, CaseAssignment, User, utcnow

CASE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/\-]{0,63}")
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")


# Roles that see every case; officers see the cases they are assigned to, reviewers none.
SEE_ALL = ("auditor", "admin")


def create_case(session: Session, ref: str, title: str | None, actor: str, creator: User | None = None) -> Case:
    if not CASE_REF.fullmatch(ref):
        raise InvalidInput("a case reference is 1-64 characters: letters, digits, space . _ / -")
    if session.scalar(select(Case.id).where(Case.ref == ref)) is not None:
        raise Conflict(f"case {ref} already exists")
    case = Case(ref=ref, title=title, created_by=actor)
    session.add(case)
    session.flush()
    custody.record(session, "case.created", subject={"case": ref}, actor=actor, details={"title": title})
    if creator is not None and creator.role == "officer":
        assign(session, case, creator, actor)
    return case


def get_case(session: Session, ref: str) -> Case:
    case = session.scalar(select(Case).where(Case.ref == ref))
    if case is None:
        raise NotFound(f"case {ref} does not exist")
    return case


def add_user(session: Session, email: str, role: str) -> User:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of: {', '.join(ROLES)}")
    email = email.strip().lower()
    if not EMAIL.fullmatch(email):
        raise InvalidInput(f"{email!r} is not an email address")
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        try:
            with session.begin_nested():
                user = User(email=email, role=role)
                session.add(user)
        except IntegrityError:  # added at the same moment by someone else: theirs counts
            user = session.scalar(select(User).where(User.email == email))
            assert user is not None
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
    custody.record(session, "user.revoked", subject={"user": user.email}, actor=actor,
                   details={"role": user.role, "tokens_valid_after": user.tokens_valid_after.isoformat()})
    return user.tokens_valid_after


def set_disabled(session: Session, user: User, disabled: bool, actor: str) -> bool:
    """Shut an account (every token refused while it is) or open it again; False if it
    already was. Disabling revokes nothing by itself: revoke too if a token may have leaked."""
    if disabled == (user.disabled_at is not None):
        return False
    user.disabled_at = utcnow() if disabled else None
    session.flush()
    custody.record(session, "user.disabled" if disabled else "user.enabled", subject={"user": user.email},
                   actor=actor, details={"role": user.role})
    return True


def officer_account(session: Session, email: str) -> User:
    """The officer with this email; an unknown email is registered as an officer (so a
    case can be assigned before the officer's first sign-in with the identity provider)."""
    email = email.strip().lower()
    user = session.scalar(select(User).where(User.email == email)) or add_user(session, email, "officer")
    if user.role != "officer":
        raise InvalidInput(f"{email} is {user.role}; only officers are assigned to cases")
    return user


def assign(session: Session, case: Case, officer: User, actor: str) -> bool:
    """Assign an officer to a case; False if they already were."""
    if session.get(CaseAssignment, (case.id, officer.id)) is not None:
        return False
    session.add(CaseAssignment(case_id=case.id, user_id=officer.id, assigned_by=actor))
    session.flush()
    custody.record(session, "case.assigned", subject={"case": case.ref}, actor=actor, details={"officer": officer.email})
    return True


def unassign(session: Session, case: Case, officer: User, actor: str) -> bool:
    found = session.get(CaseAssignment, (case.id, officer.id))
    if found is None:
        return False
    session.delete(found)
    session.flush()
    custody.record(session, "case.unassigned", subject={"case": case.ref}, actor=actor, details={"officer": officer.email})
    return True


def assignees(session: Session, case: Case) -> list[User]:
    query = select(User).join(CaseAssignment, CaseAssignment.user_id == User.id).where(CaseAssignment.case_id == case.id)
    return list(session.scalars(query.order_by(User.email)))


def visible_cases(user: User) -> Select[tuple[Case]]:
    """The cases ``user`` may see, as a query."""
    query = select(Case)
    if user.role in SEE_ALL:
        return query
    if user.role != "officer":
        return query.where(False)
    return query.join(CaseAssignment, CaseAssignment.case_id == Case.id).where(CaseAssignment.user_id == user.id)


def may_see(session: Session, user: User, case: Case) -> bool:
    if user.role in SEE_ALL:
        return True
    return user.role == "officer" and session.get(CaseAssignment, (case.id, user.id)) is not None


def case_for(session: Session, user: User, ref: str) -> Case:
    """A case ``user`` may see; NotFound, the same for a case that does not exist and one
    they may not see."""
    case = session.scalar(select(Case).where(Case.ref == ref))
    if case is None or not may_see(session, user, case):
        raise NotFound(not_found_message(user, ref))
    return case


def not_found_message(user: User, ref: str) -> str:
    """Depends on who asks, never on whether the case exists."""
    shown = ref[:64]
    if user.role in SEE_ALL:
        return f"case {shown} does not exist"
    return f"case {shown} not found among the cases you are assigned to"
