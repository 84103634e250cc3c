"""Request-scoped dependencies: the runtime, a database session, and who is asking."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from evidence import access
from evidence.models import User
from evidence.runtime import Runtime


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def session(rt: Runtime = Depends(runtime)) -> Iterator[Session]:
    with rt.db.sessions() as db_session:
        yield db_session


def role(*roles: str) -> Callable[..., User]:
    """A dependency that admits a valid bearer token of one of ``roles``."""

    def current_user(request: Request, rt: Runtime = Depends(runtime), db: Session = Depends(session)) -> User:
        user = access.authenticate(db, rt.signer, request.headers.get("authorization"))
        return access.require_role(user, *roles)

    return current_user
