"""Entries are appended when their transaction commits, on SQLite and PostgreSQL: never without the
change they record (a rollback, a failed commit or a rolled-back savepoint leaves no entry and no
gap), all of a transaction's entries together, in order; a checkpoint signed in the transaction
covers what it recorded before; on PostgreSQL the append, the commit and the wait for the WAL flush
go in one message (the head freed before the flush), except in a transaction that signed a
checkpoint or runs on its caller's connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from audit import Entry
from evidence import custody
from evidence.custody import ledger, pending
from evidence.custody import verify as ledger_check
from evidence.custody.actions import Action
from evidence.models import Case, CustodyEvent
from evidence.runtime import Runtime
from tests.evidence.custody.ledgers import ACTOR


def note(session: Session, n: int) -> None:
    custody.record(session, Action.CASE_CREATED, {"case": f"OP-{n}"}, "operator:root", {"title": f"case {n}"})


def stored(rt: Runtime) -> list[tuple[int, str]]:
    with rt.db.sessions() as session:
        rows = session.execute(select(CustodyEvent.seq, CustodyEvent.case_ref).order_by(CustodyEvent.seq))
        return [(seq, case) for seq, case in rows]


def verified(rt: Runtime) -> ledger_check.Result:
    with rt.db.sessions() as session:
        result = ledger_check.verify(session, rt.ledger_keys.verifier, rt.ledger_keys.origin)
    assert result.ok, result.problem
    return result


def test_entries_are_appended_at_commit_together_and_in_order(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        for n in range(3):
            note(session, n)
        assert pending.pending(session) == 3
        assert session.scalar(select(func.count()).select_from(CustodyEvent)) == 0
    assert stored(rt) == [(0, "OP-0"), (1, "OP-1"), (2, "OP-2")]
    with rt.db.sessions() as session:
        assert ledger.size(session) == 3
        assert [Entry.decode(row.body).seq for row in session.scalars(select(CustodyEvent))] == [0, 1, 2]
    verified(rt)


def test_a_rolled_back_transaction_leaves_no_entry_and_no_gap(rt: Runtime) -> None:
    with pytest.raises(RuntimeError, match="changed my mind"), rt.db.transaction() as session:
        note(session, 1)
        raise RuntimeError("changed my mind")
    with rt.db.sessions() as session:  # closed without committing
        note(session, 2)
    with rt.db.sessions() as session:
        note(session, 3)
        session.rollback()
        note(session, 4)  # the same session, a new transaction
        session.commit()
    assert stored(rt) == [(0, "OP-4")]
    verified(rt)


def test_a_change_that_fails_at_commit_takes_its_entry_with_it(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        session.add(Case(ref="OP-DUP", title="first", created_by="operator:root"))
        note(session, 1)
    with pytest.raises(IntegrityError), rt.db.transaction() as session:
        note(session, 2)
        session.add(Case(ref="OP-DUP", title="second", created_by="operator:root"))  # refused when flushed at commit
    with rt.db.transaction() as session:
        note(session, 3)
    assert stored(rt) == [(0, "OP-1"), (1, "OP-3")]
    verified(rt)


def test_an_append_that_fails_at_commit_takes_the_change_with_it(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise OSError("the append failed")

    with monkeypatch.context() as patch:
        patch.setattr(pending, "append", broken)  # SQLite's way, and PostgreSQL's outside a commit
        patch.setattr(pending, "commit_appending", broken)  # PostgreSQL's at commit
        with pytest.raises(OSError, match="the append failed"), rt.db.transaction() as session:
            session.add(Case(ref="OP-LOST", title="x", created_by="operator:root"))
            note(session, 1)
    with rt.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 0  # no change without its entry
    with rt.db.transaction() as session:
        note(session, 2)
    assert stored(rt) == [(0, "OP-2")]
    verified(rt)


def test_savepoints_keep_or_drop_what_was_recorded_inside_them(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        note(session, 1)
        with pytest.raises(RuntimeError), session.begin_nested():
            note(session, 2)
            with session.begin_nested():
                note(session, 3)
            raise RuntimeError("roll back to the outer savepoint")
        with session.begin_nested():
            note(session, 4)
        note(session, 5)
    assert stored(rt) == [(0, "OP-1"), (1, "OP-4"), (2, "OP-5")]
    verified(rt)


def test_a_released_savepoint_hands_its_entries_to_the_one_around_it(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        outer = session.begin_nested()
        inner = session.begin_nested()
        note(session, 1)
        inner.commit()
        assert pending.pending(session) == 1
        outer.rollback()  # takes the entry with it
        assert pending.pending(session) == 0
        note(session, 2)
    assert stored(rt) == [(0, "OP-2")]
    verified(rt)


def test_a_commit_with_a_savepoint_still_open_carries_every_entry(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        note(session, 1)
        session.begin_nested()  # never closed: the commit releases it
        note(session, 2)
    assert stored(rt) == [(0, "OP-1"), (1, "OP-2")]
    verified(rt)


def test_a_checkpoint_covers_what_its_transaction_recorded_before_it(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        note(session, 1)
        note(session, 2)
        signed = ledger.sign_checkpoint(session, rt.ledger_keys, ACTOR)
        assert signed is not None and signed.size == 3
        note(session, 3)  # after the checkpoint's own entry
    assert stored(rt) == [(0, "OP-1"), (1, "OP-2"), (2, None), (3, "OP-3")]
    assert verified(rt).checkpoints == 1


def test_entries_recorded_while_the_session_flushes_at_commit_are_carried(rt: Runtime) -> None:
    with rt.db.sessions() as session:
        @event.listens_for(session, "before_flush")
        def late(flushing: Session, *_: Any) -> None:
            if not pending.pending(flushing):
                note(flushing, 2)

        session.add(Case(ref="OP-FLUSHED", title="x", created_by="operator:root"))
        session.commit()
    assert stored(rt) == [(0, "OP-2")]


def test_a_checkpoint_inside_a_savepoint_does_not_take_entries_recorded_outside_it(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        note(session, 1)
        with pytest.raises(pending.OutsideSavepoint), session.begin_nested():
            ledger.sign_checkpoint(session, rt.ledger_keys, ACTOR)
        with session.begin_nested():
            note(session, 2)
    with rt.db.transaction() as session, session.begin_nested():
        note(session, 3)
        ledger.sign_checkpoint(session, rt.ledger_keys, ACTOR)
    assert stored(rt) == [(0, "OP-1"), (1, "OP-2"), (2, "OP-3"), (3, None)]
    verified(rt)


# -- the commit's durability on PostgreSQL ---------------------------------------------------


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def log(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", log)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", log)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_on_postgres_the_append_commit_and_flush_wait_are_one_message(rt: Runtime) -> None:
    engine = rt.db.engine
    waited: list[str] = []
    flushed: list[bool] = []

    def message_answered(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "pg_logical_emit_message" in statement:
            while cursor.nextset():  # to the last statement's result: where the WAL message went
                pass
            waited.append(str(cursor.fetchone()[0]))

    def committed(session: Session) -> None:  # once the commit has returned
        with engine.connect() as other:
            flushed.append(other.scalar(text("SELECT pg_current_wal_flush_lsn() >= CAST(:lsn AS pg_lsn)"),
                                        {"lsn": waited[-1]}))

    event.listen(engine, "after_cursor_execute", message_answered)
    event.listen(Session, "after_commit", committed)
    try:
        with statements(engine) as seen, rt.db.transaction() as session:
            note(session, 1)
    finally:
        event.remove(Session, "after_commit", committed)
        event.remove(engine, "after_cursor_execute", message_answered)
    assert len(seen) == 2 and "pg_current_wal_flush_lsn" in seen[1]  # the transaction sent one message
    begin, call, commit, wait = (part.strip() for part in seen[0].split(";"))
    assert begin == "BEGIN"  # it had sent nothing before, so its BEGIN goes in the message too
    assert call.startswith("SELECT new_size FROM custody_append(NULL, true,")  # true: release early
    assert commit == "COMMIT"
    assert wait.startswith("SELECT pg_logical_emit_message(true")  # the wait, after the commit
    assert flushed == [True]  # the commit did not return before the message after it was on disk
    assert stored(rt) == [(0, "OP-1")]
    with statements(engine) as seen, rt.db.transaction() as session:
        session.add(Case(ref="OP-2", title="x", created_by="operator:root"))
        note(session, 2)
    assert seen[-1].startswith("SELECT new_size FROM custody_append(NULL, true,")  # begun with the INSERT
    assert seen[-1].count(";") == 2
    assert stored(rt) == [(0, "OP-1"), (1, "OP-2")]
    verified(rt)


@pytest.mark.parametrize("text_value", ["it's", "back\\slash \\x00 E'\\''", "50% %s %(x)s", "é ü 日本 \U0001F600",
                                        "semi; COMMIT; DROP TABLE custody_events; --", "$$ $q$ \" \\\" NULL"])
def test_any_text_is_stored_as_recorded(rt: Runtime, text_value: str) -> None:
    """On PostgreSQL the commit writes the values into its message's text: whatever the strings
    hold, the entry stored is the one recorded."""
    subject = {"case": text_value, "item": text_value[:32]}
    details = {"note": text_value, text_value: [text_value, None, 1]}
    with rt.db.transaction() as session:
        custody.record(session, Action.CASE_CREATED, subject, f"user:{text_value}", details)
    with rt.db.sessions() as session:
        row = session.scalars(select(CustodyEvent)).one()
        entry = Entry.decode(row.body)
    assert (entry.subject, entry.details, entry.actor) == (subject, details, f"user:{text_value}")
    assert (row.subject, row.details, row.actor, row.case_ref, row.item_id) == (
        subject, details, f"user:{text_value}", text_value, text_value[:32])
    verified(rt)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_on_postgres_a_failed_append_message_leaves_its_connection_as_it_found_it(rt: Runtime) -> None:
    """A transaction begun in the append's message, which fails there: nothing is kept, and the
    pooled connection (the only one) goes on beginning transactions of its own."""
    engine = create_engine(rt.db.engine.url, pool_size=1, max_overflow=0)
    sessions = sessionmaker(engine)
    try:
        with sessions.begin() as session:
            for n in range(3):
                note(session, n)
        with engine.begin() as connection:  # a border that no longer matches the size (3)
            connection.execute(text("UPDATE ledger_head SET frontier = '[]'"))
        with pytest.raises(DBAPIError, match="border does not match"), sessions.begin() as session:
            note(session, 3)  # leaf 3 would complete (0, 2), missing from the border
        with engine.connect() as connection:
            assert connection.connection.driver_connection.autocommit is False  # type: ignore[union-attr]
            connection.execute(text("INSERT INTO cases (id, ref, title, created_by, created_at) VALUES ('c1', 'OP-X', 'x', 'o', now())"))
            connection.rollback()
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(Case)) == 0
    finally:
        engine.dispose()
    assert stored(rt) == [(0, "OP-0"), (1, "OP-1"), (2, "OP-2")]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_on_postgres_an_early_release_append_does_not_wait_for_the_flush_at_its_commit(rt: Runtime) -> None:
    """What frees the head before the flush: custody_append(..., release_early) turns
    synchronous_commit off for its own transaction only."""
    with rt.db.engine.connect() as connection:
        connection.execute(text("SELECT custody_append(NULL, true, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}')"))
        assert connection.scalar(text("SHOW synchronous_commit")) == "off"
        connection.rollback()
        assert connection.scalar(text("SHOW synchronous_commit")) == "on"
        connection.execute(text("SELECT custody_append(NULL, false, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}')"))
        assert connection.scalar(text("SHOW synchronous_commit")) == "on"
        connection.rollback()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_on_postgres_a_transaction_that_signs_a_checkpoint_commits_synchronously(rt: Runtime) -> None:
    with statements(rt.db.engine) as seen, rt.db.transaction() as session:
        note(session, 1)
        ledger.sign_checkpoint(session, rt.ledger_keys, ACTOR)
        note(session, 2)  # appended at commit, still without releasing early
    assert not any("custody_append(NULL, true" in s or "pg_logical_emit_message" in s for s in seen)
    assert sum("custody_append(" in s for s in seen) == 3  # its entries, the checkpoint's, the later entry
    assert stored(rt) == [(0, "OP-1"), (1, None), (2, "OP-2")]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_on_postgres_a_session_on_a_callers_connection_commits_synchronously(rt: Runtime) -> None:
    """Its caller commits the connection, so the session could not wait for the flush afterwards."""
    with statements(rt.db.engine) as seen, rt.db.engine.connect() as connection:
        connection.begin()  # the caller's transaction, which the session joins and does not end
        with Session(bind=connection) as session:
            note(session, 1)
            session.flush()
        connection.commit()
    assert not any("custody_append(NULL, true" in s or "pg_logical_emit_message" in s for s in seen)
    assert any(s.startswith("SELECT new_size, new_frontier FROM custody_append(") for s in seen)
    assert stored(rt) == [(0, "OP-1")]
