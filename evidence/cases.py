"""Cases and users: the few domain operations the CLI and the API share."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence import custody
from evidence.errors import Conflict, InvalidInput, NotFound
from evidence.models import ROLES, Case, User

CASE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/\-]{0,63}")
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")


def create_case(session: Session, ref: str, title: str | None, actor: str) -> Case:
    if not CASE_REF.fullmatch(ref):
        raise InvalidInput("a case reference is 1-64 characters: letters, digits, space . _ / -")
    if session.scalar(select(Case.id).where(Case.ref == ref)) is not None:
        raise Conflict(f"case {ref} already exists")
    case = Case(ref=ref, title=title, created_by=actor)
    session.add(case)
    session.flush()
    custody.record(session, "case.created", subject={"case": ref}, actor=actor, details={"title": title})
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
    if user is not None:
        if user.role != role:
            raise Conflict(f"{email} already exists with role {user.role}")
        return user  # adding an existing user again issues a fresh token
    user = User(email=email, role=role)
    session.add(user)
    session.flush()
    return user
