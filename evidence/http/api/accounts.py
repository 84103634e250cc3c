"""/api/v1/users and /api/v1/assignments: accounts and who works on which case (admins).

Every route authenticates its caller on every request (``role(...)``): an admin whose
tokens were revoked, or whose account was disabled, is refused at the next request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence import cases
from evidence.accounts import access, users
from evidence.errors import NotFound
from evidence.http.api.body import Body
from evidence.http.deps import Db, role, runtime
from evidence.http.views import AssignmentView, NewUserView, UserView, user_view
from evidence.models import Role, User
from evidence.runtime import Runtime

router = APIRouter(prefix="/api/v1")
Admin = Annotated[User, Depends(role(Role.ADMIN))]
Assigner = Annotated[User, Depends(role(*cases.ASSIGNERS))]


class NewUser(Body):
    email: str = Field(max_length=320)
    role: Role


class UserChange(Body):
    role: Role | None = None
    disabled: bool | None = None


class NewAssignment(Body):
    case: str = Field(max_length=64)
    email: str = Field(max_length=320)


@router.get("/users", summary="List accounts (admin)")
def list_users(db: Db, _: Admin) -> list[UserView]:
    return [user_view(u) for u in db.scalars(select(User).order_by(User.email))]


@router.post("/users", status_code=201, summary="Add an account and issue a local bearer token (admin)")
def post_user(body: NewUser, db: Db, _: Admin, rt: Annotated[Runtime, Depends(runtime)]) -> NewUserView:
    user = users.add_user(db, body.email, body.role)
    token = rt.signer.issue(user)
    db.commit()
    return NewUserView(**dict(user_view(user)), token=token)


@router.patch("/users/{user_id}", summary="Change an account's role, or disable or enable it (admin)")
def patch_user(user_id: str, body: UserChange, db: Db, admin: Admin) -> UserView:
    user = _user(db, user_id)
    if body.role is not None:
        # For an identity-provider account the next token's role wins again.
        user.role = body.role.value
    if body.disabled is not None:
        users.set_disabled(db, user, body.disabled, access.actor_of(admin))
    db.commit()
    return user_view(user)


@router.post("/users/{user_id}/revoke-tokens",
             summary="Revoke every token issued to an account until now, local and identity provider's (admin)")
def revoke_tokens(user_id: str, db: Db, admin: Admin) -> UserView:
    user = _user(db, user_id)
    users.revoke_tokens(db, user, access.actor_of(admin))
    db.commit()
    return user_view(user)


def _user(db: Session, user_id: str) -> User:
    user = db.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("user not found")
    return user


@router.get("/assignments", summary="Officers assigned to a case (admin)")
def list_assignments(case: str, db: Db, _: Assigner) -> list[UserView]:
    return [user_view(u) for u in cases.assignees(db, cases.get_case(db, case))]


@router.post("/assignments", status_code=201, summary="Assign an officer to a case (admin)")
def post_assignment(body: NewAssignment, db: Db, admin: Assigner) -> AssignmentView:
    found = cases.get_case(db, body.case)
    officer = cases.officer_account(db, body.email)
    cases.assign(db, found, officer, access.actor_of(admin))
    db.commit()
    return AssignmentView(case=found.ref, officer=user_view(officer))


@router.delete("/assignments", status_code=204, response_class=Response, summary="Take an officer off a case (admin)")
def delete_assignment(case: str, email: Annotated[str, Query(max_length=320)], db: Db, admin: Assigner) -> Response:
    found = cases.get_case(db, case)
    officer = db.scalar(select(User).where(User.email == email.strip().lower()))
    if officer is None or not cases.unassign(db, found, officer, access.actor_of(admin)):
        raise NotFound(f"{email} is not assigned to case {case}")
    db.commit()
    return Response(status_code=204)
