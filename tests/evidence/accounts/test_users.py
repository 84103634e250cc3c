"""Accounts (evidence.accounts.users) on SQLite and PostgreSQL: adding one (and again),
finding one by email, revoking its tokens (never backwards) and disabling it, each change
on the custody record."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from evidence import migrate
from evidence.accounts import users
from evidence.errors import Conflict, InvalidInput, NotFound
from evidence.models import CustodyEvent, Role, User
from evidence.runtime import Runtime
from evidence.settings import Settings

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ADMIN = "user:admin@force.police.uk"


@pytest.fixture
def rt(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    found = Runtime.build(Settings(data_dir=tmp_path / "data", database_url=database_url))
    migrate.upgrade(found.db.engine)
    try:
        yield found
    finally:
        found.close()


def _entries(rt: Runtime) -> list[tuple[str, dict[str, str], str, dict[str, object]]]:
    with rt.db.sessions() as session:
        rows = session.scalars(select(CustodyEvent).where(CustodyEvent.action.like("user.%")).order_by(CustodyEvent.seq))
        return [(row.action, row.subject, row.actor, row.details) for row in rows]


def test_an_account_is_added_with_its_email_cleaned(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        user = users.add_user(session, "  PC.Smith@Force.Police.UK ", Role.OFFICER)
        user_id = user.id
    with rt.db.sessions() as session:
        stored = session.get_one(User, user_id)
        assert stored.email == "pc.smith@force.police.uk" and stored.role == "officer"
        assert stored.disabled_at is None and stored.tokens_valid_after is None


def test_adding_it_again_returns_the_same_account(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        first = users.add_user(session, "pc@force.police.uk", "officer").id
    with rt.db.transaction() as session:
        assert users.add_user(session, "PC@force.police.uk", Role.OFFICER).id == first


@pytest.mark.parametrize(("email", "role", "message"), [
    ("pc@force.police.uk", "superuser", "role must be one of: officer, reviewer, auditor, admin"),
    ("not an address", "officer", "is not an email address"),
    ("@force.police.uk", "officer", "is not an email address"),
    ("pc@", "officer", "is not an email address"),
    ("a@b@c", "officer", "is not an email address"),
])
def test_what_adding_refuses(rt: Runtime, email: str, role: str, message: str) -> None:
    with rt.db.transaction() as session, pytest.raises(InvalidInput, match=message):
        users.add_user(session, email, role)


def test_an_account_keeps_its_role(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        users.add_user(session, "pc@force.police.uk", "officer")
    with rt.db.transaction() as session, pytest.raises(Conflict, match="already exists with role officer"):
        users.add_user(session, "pc@force.police.uk", "admin")


def test_a_disabled_account_is_not_added_again(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        users.set_disabled(session, users.add_user(session, "pc@force.police.uk", "officer"), True, ADMIN)
    with rt.db.transaction() as session, pytest.raises(Conflict, match="is disabled"):
        users.add_user(session, "pc@force.police.uk", "officer")


def test_an_account_is_found_by_its_email(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        made = users.add_user(session, "pc@force.police.uk", "officer").id
    with rt.db.transaction() as session:
        assert users.user_by_email(session, " PC@force.police.uk").id == made
        with pytest.raises(NotFound, match=re.escape("no account nobody@force.police.uk")):
            users.user_by_email(session, "Nobody@force.police.uk ")


def test_revoking_moves_forward_only_and_is_recorded(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        user = users.add_user(session, "pc@force.police.uk", "officer")
        assert users.revoke_tokens(session, user, ADMIN, T0) == T0
        # A clock stepped back must not bring revoked tokens back to life.
        assert users.revoke_tokens(session, user, ADMIN, T0 - timedelta(hours=1)) == T0
        assert users.revoke_tokens(session, user, ADMIN, T0 + timedelta(seconds=1)) == T0 + timedelta(seconds=1)
    recorded = _entries(rt)
    assert [action for action, *_ in recorded] == ["user.revoked"] * 3
    _, subject, actor, details = recorded[0]
    assert subject == {"user": "pc@force.police.uk"} and actor == ADMIN
    assert details == {"role": "officer", "tokens_valid_after": T0.isoformat()}


def test_disabling_and_enabling_are_recorded_when_they_change_something(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        user = users.add_user(session, "pc@force.police.uk", "auditor")
        assert users.set_disabled(session, user, True, ADMIN) is True
        assert user.disabled_at is not None
        assert users.set_disabled(session, user, True, ADMIN) is False
        assert users.set_disabled(session, user, False, ADMIN) is True
        assert user.disabled_at is None
        assert users.set_disabled(session, user, False, ADMIN) is False
    assert [(action, details) for action, _, _, details in _entries(rt)] == [
        ("user.disabled", {"role": "auditor"}), ("user.enabled", {"role": "auditor"})]
