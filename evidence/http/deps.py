"""Request-scoped dependencies: the runtime, a database session, and who is asking."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from evidence.accounts import access
from evidence.models import User
from evidence.runtime import Runtime


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def session(rt: Runtime = Depends(runtime)) -> Iterator[Session]:
    with rt.db.sessions() as db_session:
        yield db_session


def role(*roles: str) -> Callable[..., User]:
    """A dependency that admits a valid bearer token (local or the identity provider's) of
    one of ``roles``. The roles stay readable on it (``.roles``), so a test can hold every
    route's declared roles against what it does."""

    def current_user(request: Request, rt: Runtime = Depends(runtime), db: Session = Depends(session)) -> User:
        user = rt.auth.authenticate(db, request.headers.get("authorization"))
        return access.require_role(user, *roles)

    current_user.roles = roles  # type: ignore[attr-defined]
    return current_user
