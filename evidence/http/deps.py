"""Request-scoped dependencies: the runtime, a database session, and who is asking.

Routes take them as annotated parameters (``db: Db``, ``user: Annotated[User, Depends(role(...))]``),
FastAPI's own idiom, so no call sits in a default value. (No ``from __future__ import
annotations`` here: FastAPI reads :class:`RoleCheck`'s parameters from an instance, which
has no module globals to resolve string annotations in.)"""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from evidence.accounts import access
from evidence.links.gate import Gate
from evidence.models import Role, User
from evidence.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def link_gate(request: Request) -> Gate:
    gate: Gate = request.app.state.link_gate
    return gate


def session(rt: Annotated[Runtime, Depends(runtime)]) -> Iterator[Session]:
    with rt.db.sessions() as db_session:
        yield db_session


Db = Annotated[Session, Depends(session)]


class RoleCheck:
    """A dependency that admits a valid bearer token (local or the identity provider's) of
    one of ``roles``. The roles stay readable on it (``.roles``), so a test can hold every
    route's declared roles against what it does."""

    def __init__(self, *roles: Role) -> None:
        self.roles = roles

    def __call__(self, request: Request, rt: Annotated[Runtime, Depends(runtime)], db: Db) -> User:
        user = rt.auth.authenticate(db, request.headers.get("authorization"))
        return access.require_role(user, *self.roles)


def role(*roles: Role) -> RoleCheck:
    return RoleCheck(*roles)
