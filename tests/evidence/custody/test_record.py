"""custody.record, the one door into the ledger: known actions only (enum members, or their
names while callers still pass strings), details made portable, actors that name no host."""

from __future__ import annotations

import getpass
from typing import Any

import pytest
from sqlalchemy import func, select

from audit import Entry
from evidence import custody
from evidence.custody.actions import Action
from evidence.models import CustodyEvent
from evidence.runtime import Runtime


def entries(rt: Runtime) -> list[CustodyEvent]:
    with rt.db.sessions() as session:
        return list(session.scalars(select(CustodyEvent).order_by(CustodyEvent.seq)))


def test_an_action_is_recorded_by_its_name(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        custody.record(session, Action.CASE_CREATED, {"case": "OP-1"}, "operator:root", {"title": "Halford Road"})
        custody.record(session, "case.assigned", {"case": "OP-1"}, "operator:root", {"officer": "pc@force.police.uk"})
    stored = entries(rt)
    assert [(row.seq, row.action, type(row.action)) for row in stored] == [
        (0, "case.created", str), (1, "case.assigned", str)]
    assert [Entry.decode(row.body).action for row in stored] == ["case.created", "case.assigned"]
    assert stored[0].case_ref == "OP-1" and stored[0].item_id is None


@pytest.mark.parametrize("action", ["case.deleted", "CASE_CREATED", "", "Case.Created"])
def test_an_unknown_action_is_refused_and_nothing_is_written(rt: Runtime, action: str) -> None:
    with rt.db.transaction() as session:
        with pytest.raises(ValueError, match="unknown custody action"):
            custody.record(session, action, {"case": "OP-1"}, "operator:root", {})
        assert session.scalar(select(func.count()).select_from(CustodyEvent)) == 0


def test_floats_in_details_are_recorded_as_their_decimal_text(rt: Runtime) -> None:
    details: dict[Any, Any] = {"duration": 12.5, "streams": [{"fps": 29.97, "index": 0}], "span": (0.1, 2), 3: "three", "ok": True}
    assert custody.portable(details) == {
        "duration": "12.5", "streams": [{"fps": "29.97", "index": 0}], "span": ["0.1", 2], "3": "three", "ok": True}
    with rt.db.transaction() as session:
        custody.record(session, Action.DERIVATIVE_CREATED, {"case": "OP-1", "item": "i" * 32}, "system:worker",
                       details)
    [row] = entries(rt)
    assert Entry.decode(row.body).details == row.details == custody.portable(details)


def test_actors_name_no_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "root")
    assert custody.system_actor("transfer") == "system:transfer"
    assert custody.SERVICE == "operator:service"


def test_the_service_account_names_the_os_user_as_a_detail(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "root")
    with rt.db.transaction() as session:
        custody.record(session, Action.USER_REVOKED, {"user": "pc@force.police.uk"}, custody.SERVICE, {"role": "officer"})
        custody.record(session, Action.USER_ENABLED, {"user": "pc@force.police.uk"}, "user:admin@force.police.uk",
                       {"role": "officer"})
    service, person = entries(rt)
    assert (service.actor, service.details) == ("operator:service", {"role": "officer", "run_by": "operator:root"})
    assert (person.actor, person.details) == ("user:admin@force.police.uk", {"role": "officer"})
    assert Entry.decode(service.body).details == service.details  # in the signed bytes, not beside them
