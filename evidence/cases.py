"""Cases, the officers assigned to them, and who may see which case (officers: the cases
they are assigned to; auditors and admins: all).

A case someone may not see is, to them, a case that does not exist: the same 404 with the
same message, so case references cannot be probed."""

from __future__ import annotations

import re

from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session

from evidence import custody
from evidence.accounts.users import add_user
from evidence.custody.actions import Action
from evidence.errors import Conflict, InvalidInput, NotFound
from evidence.models import Case, CaseAssignment, Item, Link, Role, User

CASE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/\-]{0,63}")


# Roles that see every case; officers see the cases they are assigned to, reviewers none.
SEE_ALL = frozenset({Role.AUDITOR, Role.ADMIN})
# Who may do what with cases, checked alike by the API's routes and the command line.
READERS = (Role.OFFICER, Role.AUDITOR, Role.ADMIN)  # cases and their items
WRITERS = (Role.OFFICER, Role.ADMIN)  # open a case; share it; its links; its working copies
ASSIGNERS = (Role.ADMIN,)  # who works on which case


def create_case(session: Session, ref: str, title: str | None, actor: str, creator: User | None = None) -> Case:
    if not CASE_REF.fullmatch(ref):
        raise InvalidInput("a case reference is 1-64 characters: letters, digits, space . _ / -")
    if session.scalar(select(Case.id).where(Case.ref == ref)) is not None:
        raise Conflict(f"case {ref} already exists")
    case = Case(ref=ref, title=title, created_by=actor)
    session.add(case)
    session.flush()
    custody.record(session, Action.CASE_CREATED, subject={"case": ref}, actor=actor, details={"title": title})
    if creator is not None and creator.role == Role.OFFICER:
        assign(session, case, creator, actor)
    return case


def get_case(session: Session, ref: str) -> Case:
    case = session.scalar(select(Case).where(Case.ref == ref))
    if case is None:
        raise NotFound(f"case {ref} does not exist")
    return case


def officer_account(session: Session, email: str) -> User:
    """The officer with this email; an unknown email is registered as an officer (so a
    case can be assigned before the officer's first sign-in with the identity provider)."""
    email = email.strip().lower()
    user = session.scalar(select(User).where(User.email == email)) or add_user(session, email, Role.OFFICER)
    if user.role != Role.OFFICER:
        raise InvalidInput(f"{email} is {user.role}; only officers are assigned to cases")
    return user


def assign(session: Session, case: Case, officer: User, actor: str) -> bool:
    """Assign an officer to a case; False if they already were."""
    if session.get(CaseAssignment, (case.id, officer.id)) is not None:
        return False
    session.add(CaseAssignment(case_id=case.id, user_id=officer.id, assigned_by=actor))
    session.flush()
    custody.record(session, Action.CASE_ASSIGNED, subject={"case": case.ref}, actor=actor, details={"officer": officer.email})
    return True


def unassign(session: Session, case: Case, officer: User, actor: str) -> bool:
    found = session.get(CaseAssignment, (case.id, officer.id))
    if found is None:
        return False
    session.delete(found)
    session.flush()
    custody.record(session, Action.CASE_UNASSIGNED, subject={"case": case.ref}, actor=actor, details={"officer": officer.email})
    return True


def assignees(session: Session, case: Case) -> list[User]:
    query = select(User).join(CaseAssignment, CaseAssignment.user_id == User.id).where(CaseAssignment.case_id == case.id)
    return list(session.scalars(query.order_by(User.email)))


def visible_cases(user: User) -> Select[Case]:
    """The cases ``user`` may see, as a query."""
    query = select(Case)
    if user.role in SEE_ALL:
        return query
    if user.role != Role.OFFICER:
        return query.where(false())
    return query.join(CaseAssignment, CaseAssignment.case_id == Case.id).where(CaseAssignment.user_id == user.id)


def may_see(session: Session, user: User, case: Case) -> bool:
    if user.role in SEE_ALL:
        return True
    return user.role == Role.OFFICER and session.get(CaseAssignment, (case.id, user.id)) is not None


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


def item_for(session: Session, user: User, item_id: str) -> Item:
    """An item of a case ``user`` may see; another case's item reads as missing (item ids
    are not for probing)."""
    item = session.get(Item, item_id)
    if item is None or not may_see(session, user, session.get_one(Case, item.case_id)):
        raise NotFound("item not found")
    return item


def link_for(session: Session, user: User, link_id: str) -> Link:
    """A link of a case ``user`` may see; another case's link reads as missing."""
    link = session.get(Link, link_id)
    if link is None or not may_see(session, user, session.get_one(Case, link.case_id)):
        raise NotFound(f"link {link_id} does not exist")
    return link


def visible_refs(session: Session, user: User) -> list[str]:
    """The references of the cases ``user`` may see (what a "did you mean" may offer them)."""
    return list(session.scalars(visible_cases(user).with_only_columns(Case.ref)))
