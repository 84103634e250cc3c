"""Cases and who may see them (evidence.cases) on SQLite and PostgreSQL: creating one,
assigning officers, what each role sees, and a case out of reach reading exactly like one
that does not exist."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from evidence import cases, migrate
from evidence.accounts import users
from evidence.errors import Conflict, InvalidInput, NotFound
from evidence.models import Case, CustodyEvent, Role, User
from evidence.runtime import Runtime
from evidence.settings import Settings

ACTOR = "operator:test"


@pytest.fixture
def rt(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    found = Runtime.build(Settings(data_dir=tmp_path / "data", database_url=database_url))
    migrate.upgrade(found.db.engine)
    try:
        yield found
    finally:
        found.close()


def _people(rt: Runtime) -> dict[str, str]:
    """One account of each role, and a second officer; their ids by name."""
    with rt.db.transaction() as session:
        made = {role.value: users.add_user(session, f"{role}@force.police.uk", role) for role in Role}
        made["colleague"] = users.add_user(session, "colleague@force.police.uk", Role.OFFICER)
        return {name: user.id for name, user in made.items()}


def _actions(rt: Runtime) -> list[tuple[str, dict[str, str], dict[str, object]]]:
    with rt.db.sessions() as session:
        return [(e.action, e.subject, e.details) for e in session.scalars(select(CustodyEvent).order_by(CustodyEvent.seq))]


def test_a_case_is_created_and_recorded(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        case = cases.create_case(session, "OP-1/2024 a.b_c", "Burglary", ACTOR)
        assert case.ref == "OP-1/2024 a.b_c" and case.created_by == ACTOR
    assert _actions(rt) == [("case.created", {"case": "OP-1/2024 a.b_c"}, {"title": "Burglary"})]


@pytest.mark.parametrize("ref", ["", " OP-1", "-OP", "OP<1>", "OP\n1", "x" * 65, "OP-1\x00"])
def test_a_reference_is_letters_digits_and_a_few_marks(rt: Runtime, ref: str) -> None:
    with rt.db.transaction() as session, pytest.raises(InvalidInput, match="a case reference is 1-64 characters"):
        cases.create_case(session, ref, None, ACTOR)


def test_a_reference_is_used_once(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        cases.create_case(session, "OP-1", None, ACTOR)
    with rt.db.transaction() as session, pytest.raises(Conflict, match="case OP-1 already exists"):
        cases.create_case(session, "OP-1", None, ACTOR)


def test_an_officer_who_creates_a_case_is_assigned_to_it(rt: Runtime) -> None:
    ids = _people(rt)
    with rt.db.transaction() as session:
        officer, admin = session.get_one(User, ids["officer"]), session.get_one(User, ids["admin"])
        mine = cases.create_case(session, "OP-MINE", None, ACTOR, creator=officer)
        theirs = cases.create_case(session, "OP-ADMIN", None, ACTOR, creator=admin)
        assert [u.email for u in cases.assignees(session, mine)] == ["officer@force.police.uk"]
        assert cases.assignees(session, theirs) == []


def test_assigning_and_taking_off_are_recorded_once(rt: Runtime) -> None:
    ids = _people(rt)
    with rt.db.transaction() as session:
        case = cases.create_case(session, "OP-1", None, ACTOR)
        officer = session.get_one(User, ids["officer"])
        assert cases.assign(session, case, officer, ACTOR) is True
        assert cases.assign(session, case, officer, ACTOR) is False
        assert cases.unassign(session, case, officer, ACTOR) is True
        assert cases.unassign(session, case, officer, ACTOR) is False
    assert [(a, d) for a, _, d in _actions(rt)[-2:]] == [
        ("case.assigned", {"officer": "officer@force.police.uk"}),
        ("case.unassigned", {"officer": "officer@force.police.uk"}),
    ]


def test_an_officer_account_is_found_or_registered_and_only_officers(rt: Runtime) -> None:
    ids = _people(rt)
    with rt.db.transaction() as session:
        assert cases.officer_account(session, " Officer@force.police.uk").id == ids["officer"]
        new = cases.officer_account(session, "new@force.police.uk")
        assert new.role == "officer" and new.id not in ids.values()
        with pytest.raises(InvalidInput, match=re.escape("auditor@force.police.uk is auditor; only officers")):
            cases.officer_account(session, "auditor@force.police.uk")


def test_each_role_sees_what_it_may(rt: Runtime) -> None:
    ids = _people(rt)
    with rt.db.transaction() as session:
        one, two = cases.create_case(session, "OP-1", None, ACTOR), cases.create_case(session, "OP-2", None, ACTOR)
        cases.assign(session, one, session.get_one(User, ids["officer"]), ACTOR)
    with rt.db.sessions() as session:
        seen = {}
        for name, user_id in ids.items():
            user = session.get_one(User, user_id)
            seen[name] = sorted(c.ref for c in session.scalars(cases.visible_cases(user).order_by(Case.ref)))
            assert [cases.may_see(session, user, c) for c in (one, two)] == [r in seen[name] for r in ("OP-1", "OP-2")]
        assert seen == {"officer": ["OP-1"], "colleague": [], "reviewer": [], "auditor": ["OP-1", "OP-2"],
                        "admin": ["OP-1", "OP-2"]}


def test_a_case_out_of_reach_reads_like_one_that_does_not_exist(rt: Runtime) -> None:
    ids = _people(rt)
    with rt.db.transaction() as session:
        cases.create_case(session, "OP-SECRET", None, ACTOR)
    with rt.db.sessions() as session:
        officer = session.get_one(User, ids["officer"])
        messages = []
        for ref in ("OP-SECRET", "OP-NOWHERE"):
            with pytest.raises(NotFound) as refused:
                cases.case_for(session, officer, ref)
            messages.append(refused.value.message.replace(ref, "<ref>"))
        assert messages[0] == messages[1] == "case <ref> not found among the cases you are assigned to"
        admin = session.get_one(User, ids["admin"])
        assert cases.case_for(session, admin, "OP-SECRET").ref == "OP-SECRET"
        with pytest.raises(NotFound, match="case OP-NOWHERE does not exist"):
            cases.case_for(session, admin, "OP-NOWHERE")
        with pytest.raises(NotFound, match="case OP-NOWHERE does not exist"):
            cases.get_case(session, "OP-NOWHERE")


def test_a_refusal_shows_at_most_64_characters_of_the_reference(rt: Runtime) -> None:
    ids = _people(rt)
    with rt.db.sessions() as session:
        officer = session.get_one(User, ids["officer"])
        assert cases.not_found_message(officer, "x" * 1000) == f"case {'x' * 64} not found among the cases you are assigned to"
