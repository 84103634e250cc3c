"""Who acts: every command that acts on evidence names a person by their bearer token.

On the server host as through ``--server``, the token is checked exactly as the API checks it
(:class:`~evidence.accounts.access.Authenticator`: signature, expiry, a disabled account, a
revoked token), then the API's role and case rules (:mod:`evidence.cases`) apply, and the
ledger names the person as the API does (``user:<email>``). So the custody record reads the
same whichever way an act came, and an officer shares only within their own cases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import click
from sqlalchemy.orm import Session

from evidence.accounts.access import require_role
from evidence.errors import InvalidInput, Unauthorized
from evidence.models import Role, User
from evidence.runtime import Runtime

F = TypeVar("F", bound=Callable[..., object])

def token_option(command: F) -> F:
    return click.option("--token", envvar="EVIDENCE_TOKEN", default=None,
                        help="Your bearer token: the custody record names who acts [env EVIDENCE_TOKEN]")(command)


def given(token: str | None) -> str:
    """The token, or a refusal saying why one is needed (on one line of a terminal)."""
    if not token or not token.strip():
        raise InvalidInput("give --token or set EVIDENCE_TOKEN: the custody record names who acts")
    return token.strip()


@contextmanager
def acting(rt: Runtime, token: str | None, *roles: Role) -> Iterator[tuple[Session, User]]:
    """A session and the person ``token`` names, holding one of ``roles``; what the block
    does commits with it, as an API request's work does, or not at all."""
    presented = given(token)
    with rt.db.sessions() as session:
        try:
            user = rt.auth.authenticate(session, f"Bearer {presented}")
        except Unauthorized as error:
            raise Unauthorized(f"the token was refused: {error.message}") from None
        yield session, require_role(user, *roles)
        session.commit()
