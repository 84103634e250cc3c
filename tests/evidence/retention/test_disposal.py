"""A case from its outcome through a legal hold, its release and a four-eyes disposal, on the
local vault, on SQLite and PostgreSQL: every step on the record, each refusal, and nothing of
another item touched, even one with the same bytes."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from evidence import cases, migrate
from evidence.accounts import users as accounts
from evidence.custody import statement
from evidence.custody.report import build
from evidence.errors import Conflict, Forbidden
from evidence.models import CustodyEvent, Derivative, Item, ItemState, User, utcnow
from evidence.retention import disposal, holds, state
from evidence.retention.due import due
from evidence.retention.policy import Event
from evidence.runtime import Runtime
from evidence.settings import Settings
from evidence.vault.local import LocalVault
from tests.evidence.retention.stored import stored_item

CASE = "OP-RETAIN"
BYTES = b"the same footage, twice" * 100


@pytest.fixture
def rt(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    runtime = Runtime.build(Settings(data_dir=tmp_path / "data", database_url=database_url))
    migrate.upgrade(runtime.db.engine)
    runtime.vault.ensure_ready()
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def world(rt: Runtime) -> dict[str, str]:
    return make_world(rt)


def make_world(rt: Runtime) -> dict[str, str]:
    """Two admins, an officer, the case with two items of identical bytes."""
    with rt.db.transaction() as session:
        made = {name: accounts.add_user(session, f"{name}@force.police.uk", role).id
                for name, role in (("first", "admin"), ("second", "admin"), ("pc", "officer"))}
        case = cases.create_case(session, CASE, None, "user:first@force.police.uk")
        officer = session.get_one(User, made["pc"])
        cases.assign(session, case, officer, "user:first@force.police.uk")
        made["gone"] = stored_item(session, rt.vault, case, officer, BYTES, "a.mp4").id
        made["kept"] = stored_item(session, rt.vault, case, officer, BYTES, "b.mp4").id
    return made


def act(rt: Runtime, who: str, world: dict[str, str], what: Any) -> Any:
    """``what(session, user, actor)`` in one transaction, as ``who``."""
    with rt.db.transaction() as session:
        user = session.get_one(User, world[who])
        return what(session, user, f"user:{user.email}")


def outcome(rt: Runtime, world: dict[str, str], event: Event, on: date, release: date | None = None) -> None:
    act(rt, "pc", world, lambda s, u, a: state.record_outcome(
        s, cases.get_case(s, CASE), event, on, release, state.periods_of(rt.settings), a))


def propose(rt: Runtime, world: dict[str, str], who: str, item: str) -> Any:
    return act(rt, who, world, lambda s, u, a: disposal.propose(s, s.get_one(Item, item), u, a, "retention ended",
                                                                utcnow().date()))


def approve(rt: Runtime, world: dict[str, str], who: str, item: str) -> dict[str, Any]:
    """As the commands approve: the decision in one transaction, the removal in the next."""
    found: dict[str, Any] | None = act(rt, who, world, lambda s, u, a: disposal.approve(
        s, rt.vault, s.get_one(Item, item), u, a, utcnow().date()))
    if found is None:
        found = act(rt, who, world, lambda s, u, a: disposal.carry_out(s, rt.vault, item, a))
    assert found is not None
    return found


def entries(rt: Runtime) -> list[CustodyEvent]:
    with rt.db.sessions() as session:
        return list(session.scalars(select(CustodyEvent).where(CustodyEvent.case_ref == CASE)
                                    .order_by(CustodyEvent.seq)))


def test_from_outcome_through_hold_and_release_to_a_four_eyes_disposal(rt: Runtime, world: dict[str, str]) -> None:
    vault = rt.vault
    assert isinstance(vault, LocalVault)
    gone, kept = world["gone"], world["kept"]
    with rt.db.sessions() as session:
        keys = {item.id: item.storage_key for item in session.scalars(select(Item))}
    outcome(rt, world, Event.NFA, date(2020, 1, 6))
    with rt.db.sessions() as session:
        rows = due(session, utcnow().date())
    assert [(r["case"], r["review_on"], r["item"]) for r in rows] == [(CASE, "2021-01-05", gone), (CASE, "2021-01-05", kept)]

    act(rt, "first", world, lambda s, u, a: holds.hold(s, vault, cases.get_case(s, CASE), "complaint pending", a))
    with rt.db.sessions() as session:
        assert due(session, utcnow().date()) == []  # held: nothing to review
    with pytest.raises(Conflict, match="under a legal hold"):
        propose(rt, world, "first", gone)
    act(rt, "second", world, lambda s, u, a: holds.release(s, vault, cases.get_case(s, CASE), a))

    propose(rt, world, "first", gone)
    with pytest.raises(Conflict, match=re.escape("already proposed by user:first@force.police.uk")):
        propose(rt, world, "second", gone)
    with pytest.raises(Forbidden, match="four eyes"):
        approve(rt, world, "first", gone)
    assert (vault.root / keys[gone]).exists()  # a refusal removes nothing

    result = approve(rt, world, "second", gone)
    assert result["original_removed"] and result["working_copies_removed"] == 2
    assert not (vault.root / keys[gone]).exists() and not (vault.root / "derivatives" / gone).exists()
    # The other item, same bytes and same case, is whole: its original and every working copy.
    assert hashlib.sha256((vault.root / keys[kept]).read_bytes()).digest() == hashlib.sha256(BYTES).digest()
    assert len([p for p in (vault.root / "derivatives" / kept).rglob("*") if p.is_file()]) == 4
    with rt.db.sessions() as session:
        assert session.get_one(Item, gone).state == ItemState.DISPOSED  # the row stays
        assert session.get_one(Item, kept).state == ItemState.READY
        assert list(session.scalars(select(Derivative.item_id).distinct())) == [kept]
        assert [r["item"] for r in due(session, utcnow().date())] == [kept]

    with pytest.raises(Conflict, match="already been disposed of"):
        approve(rt, world, "first", gone)
    with pytest.raises(Conflict, match="already been disposed of"):
        propose(rt, world, "second", gone)

    recorded = [(e.action, e.actor, e.item_id) for e in entries(rt) if e.action.startswith(("case.o", "case.h", "case.r",
                                                                                            "disposal", "item.d"))]
    assert recorded == [
        ("case.outcome", "user:pc@force.police.uk", None),
        ("case.held", "user:first@force.police.uk", None),
        ("case.released", "user:second@force.police.uk", None),
        ("disposal.proposed", "user:first@force.police.uk", gone),
        ("item.disposed", "user:second@force.police.uk", gone),
    ]
    disposed = entries(rt)[-1].details
    assert disposed["sha256"] == hashlib.sha256(BYTES).hexdigest() and disposed["size"] == len(BYTES)
    assert disposed["proposed_by"] == "user:first@force.police.uk" and disposed["approved_by"] == "user:second@force.police.uk"
    assert disposed["reason"] == "retention ended" and disposed["original_removed"] is True
    assert sorted(copy["kind"] for copy in disposed["working_copies"]) == ["pages", "proxy"]
    assert "local vault has no legal holds" in entries(rt)[-4].details["storage"]

    # The disposed item's custody report still resolves it, every step in words.
    with rt.db.transaction() as session:
        report = build(session, rt.ledger_keys, gone, "user:first@force.police.uk")
    said = [(line.event, line.outcome) for line in statement.lines(report)]
    assert ("Case outcome recorded by pc@force.police.uk: no further action on 2020-01-06", "Review date 2021-01-05") in said
    assert ("Legal hold placed on case OP-RETAIN by first@force.police.uk: complaint pending", "Disposal blocked") in said
    assert ("Legal hold on case OP-RETAIN released by second@force.police.uk", "Disposal possible after review") in said
    assert ("Disposal proposed by first@force.police.uk: retention ended", "Awaits another admin's approval") in said
    assert (f"Disposal approved by second@force.police.uk, proposed by first@force.police.uk (retention ended): original"
            f" of {len(BYTES):,} bytes, SHA-256 {hashlib.sha256(BYTES).hexdigest()}; 2 working copies removed",
            "Original removed") in said


@pytest.mark.parametrize(("events", "said"), [
    ([(Event.NFA, "today")], "may not be reviewed for disposal before"),
    ([(Event.CHARGED, "2020-01-01")], "no review date (outcome: charged)"),
    ([], "no review date (outcome: pending)"),
    ([(Event.CONVICTED, "2020-01-01"), (Event.APPEAL_OPEN, "2020-02-01")], "outcome: convicted, appeal open"),
])
def test_no_disposal_before_the_review_date(rt: Runtime, world: dict[str, str], events: list[tuple[Event, str]],
                                            said: str) -> None:
    for event, on in events:
        outcome(rt, world, event, utcnow().date() if on == "today" else date.fromisoformat(on))
    with pytest.raises(Conflict, match=re.escape(said)):
        propose(rt, world, "first", world["gone"])
    assert [e.action for e in entries(rt)][-1] != "disposal.proposed"


def test_a_hold_placed_after_the_proposal_stops_the_approval(rt: Runtime, world: dict[str, str]) -> None:
    outcome(rt, world, Event.CONVICTED, date(2020, 1, 6), date(2021, 3, 1))
    with rt.db.sessions() as session:
        assert state.view(cases.get_case(session, CASE), state.retention_of(session, cases.get_case(session, CASE)))[
            "review_on"] == "2021-03-01"
    propose(rt, world, "first", world["gone"])
    act(rt, "first", world, lambda s, u, a: holds.hold(s, rt.vault, cases.get_case(s, CASE), "appeal out of time", a))
    with pytest.raises(Conflict, match="under a legal hold"):
        approve(rt, world, "second", world["gone"])
    with pytest.raises(Conflict, match="already held"):
        act(rt, "second", world, lambda s, u, a: holds.hold(s, rt.vault, cases.get_case(s, CASE), "again", a))
    act(rt, "second", world, lambda s, u, a: holds.release(s, rt.vault, cases.get_case(s, CASE), a))
    with pytest.raises(Conflict, match="not held"):
        act(rt, "second", world, lambda s, u, a: holds.release(s, rt.vault, cases.get_case(s, CASE), a))
    assert approve(rt, world, "second", world["gone"])["original_removed"]


def test_an_outcome_in_the_future_is_refused(rt: Runtime, world: dict[str, str]) -> None:
    from evidence.errors import InvalidInput

    with pytest.raises(InvalidInput, match="in the future"):
        outcome(rt, world, Event.NFA, utcnow().date() + timedelta(days=1))


def test_an_original_missing_from_storage_does_not_stop_a_hold(rt: Runtime, world: dict[str, str]) -> None:
    vault = rt.vault
    assert isinstance(vault, LocalVault)
    with rt.db.sessions() as session:
        (vault.root / session.get_one(Item, world["gone"]).storage_key).unlink()  # behind the server's back
    act(rt, "first", world, lambda s, u, a: holds.hold(s, vault, cases.get_case(s, CASE), "review", a))
    said = entries(rt)[-1].details["storage"]
    assert said == f"none: the local vault has no legal holds; the hold is kept in the database; not found in storage: {world['gone']}"


def test_a_hold_placed_while_an_approval_runs_stops_it_or_waits_for_it(tmp_path: Path, postgres_url: str) -> None:
    """PostgreSQL: the approval locks the case's retention row, so a hold being placed at that
    moment either comes first (and the approval, waiting on it, is refused) or after."""
    runtime = Runtime.build(Settings(data_dir=tmp_path / "data", database_url=postgres_url))
    migrate.upgrade(runtime.db.engine)
    runtime.vault.ensure_ready()
    try:
        world_ids = make_world(runtime)
        outcome(runtime, world_ids, Event.NFA, date(2020, 1, 6))
        propose(runtime, world_ids, "first", world_ids["gone"])
        refused: list[BaseException] = []
        with runtime.db.transaction() as session:
            case = cases.get_case(session, CASE)
            state.retention_of(session, case, lock=True)  # the hold has the row...
            waiting = threading.Thread(target=lambda: _catch(refused, lambda: approve(runtime, world_ids, "second",
                                                                                       world_ids["gone"])))
            waiting.start()
            waiting.join(1.0)
            assert waiting.is_alive()  # ...so the approval waits
            holds.hold(session, runtime.vault, case, "late order", "user:first@force.police.uk")
        waiting.join(20)
        assert len(refused) == 1 and "under a legal hold (late order)" in str(refused[0])
        with runtime.db.sessions() as session:
            assert session.get_one(Item, world_ids["gone"]).state == ItemState.READY
    finally:
        runtime.close()


def _catch(into: list[BaseException], call: Any) -> None:
    try:
        call()
    except Exception as error:  # the thread's outcome, for the test to read
        into.append(error)


def test_storage_failing_after_the_approval_leaves_a_disposal_that_approving_again_carries_on(
        rt: Runtime, world: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The decision is committed before anything leaves storage: the storage failing (or the
    process dying) then leaves the item disposed of, its approval on the row and its original
    still stored, with no `item.disposed` entry yet; approving again finishes it and records it.
    Before, the files went inside the decision's transaction and a failed commit left an
    original gone with nothing on the record."""
    vault = rt.vault
    assert isinstance(vault, LocalVault)
    gone = world["gone"]
    with rt.db.sessions() as session:
        key = session.get_one(Item, gone).storage_key
    outcome(rt, world, Event.NFA, date(2020, 1, 6))
    propose(rt, world, "first", gone)
    real = vault.remove_working_copies

    def storage_down(item_id: str) -> int:
        raise OSError("storage unreachable")

    monkeypatch.setattr(vault, "remove_working_copies", storage_down)
    with pytest.raises(OSError, match="unreachable"):
        approve(rt, world, "second", gone)
    with rt.db.sessions() as session:
        assert session.get_one(Item, gone).state == ItemState.DISPOSED  # nothing of it is served from now
        assert session.scalar(select(Derivative.id).where(Derivative.item_id == gone)) is not None
    assert (vault.root / key).exists()
    assert "item.disposed" not in [e.action for e in entries(rt)]

    monkeypatch.setattr(vault, "remove_working_copies", real)
    with pytest.raises(Forbidden, match="four eyes"):
        approve(rt, world, "first", gone)  # carrying on is still another admin's act
    result = approve(rt, world, "second", gone)
    assert result["original_removed"] and result["working_copies_removed"] == 2
    assert not (vault.root / key).exists()
    [disposed] = [e for e in entries(rt) if e.action == "item.disposed"]
    assert disposed.details["approved_by"] == "user:second@force.police.uk" and disposed.details["original_removed"]
