"""The link_access table on SQLite and PostgreSQL: first request of a window, counting the
rest, uses, closing windows into the ledger exactly once (again if a late request came), and
forgetting old rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from evidence import migrate
from evidence.links import record as link_record
from evidence.links.window import USE, window_of
from evidence.models import Case, CustodyEvent, Item, Link, LinkAccess, Upload, User
from evidence.runtime import Runtime
from evidence.settings import Settings

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
VIEWER = "203.0.113.7"


@pytest.fixture
def shared(tmp_path: Path, database_url: str) -> Iterator[tuple[Runtime, str, str]]:
    rt = Runtime.build(Settings(data_dir=tmp_path / "data", database_url=database_url))
    migrate.upgrade(rt.db.engine)
    try:
        with rt.db.transaction() as session:
            officer, case = User(email="pc@force.police.uk", role="officer"), Case(ref="OP-1", created_by="x")
            session.add_all([officer, case])
            session.flush()
            session.add(Upload(id="1" * 32, owner_id=officer.id, case_id=case.id, storage_key="k"))
            session.flush()
            item = Item(case_id=case.id, upload_id="1" * 32, officer_id=officer.id, filename="f", size=1000,
                        storage_key="k")
            session.add(item)
            session.flush()
            link = Link(case_id=case.id, scope="items", item_ids=[item.id], recipient="r@cps.gov.uk",
                        permission="download", expires_at=T0 + timedelta(days=1), created_by="x", kid="k")
            session.add(link)
            session.flush()
            ids = link.id, item.id
        yield rt, *ids
    finally:
        rt.close()


def _count(rt: Runtime, link_id: str, item_id: str, at: datetime, sent: tuple[int, int]) -> bool:
    with rt.db.transaction() as session:
        return link_record.tally(session, link_id, VIEWER, f"download:{item_id}", item_id, window_of(at, 60), at,
                                 "curl/8", sent)


def test_a_window_is_recorded_once_then_summarised_once(shared: tuple[Runtime, str, str]) -> None:
    rt, link_id, item_id = shared
    assert _count(rt, link_id, item_id, T0, (500, 999)) is True
    assert _count(rt, link_id, item_id, T0 + timedelta(seconds=5), (0, 499)) is False
    assert _count(rt, link_id, item_id, T0 + timedelta(seconds=70), (0, 9)) is True  # the next window
    with rt.db.sessions() as session:
        row = session.scalars(select(LinkAccess).order_by(LinkAccess.window_start)).first()
        assert row is not None and row.requests == 2 and row.ranges == [[0, 999]] and row.bytes_sent == 1000
    grace = timedelta(seconds=2)
    assert link_record.close_windows(rt.db, T0 + timedelta(seconds=61), grace) == 0  # still in its grace
    assert link_record.close_windows(rt.db, T0 + timedelta(seconds=65), grace) == 1
    assert link_record.close_windows(rt.db, T0 + timedelta(seconds=66), grace) == 0  # never twice
    assert _count(rt, link_id, item_id, T0 + timedelta(seconds=59), (0, 0)) is False  # committed late
    assert link_record.close_windows(rt.db, T0 + timedelta(seconds=67), grace) == 1  # told of as well
    with rt.db.sessions() as session:
        summaries = [e.details for e in session.scalars(select(CustodyEvent).order_by(CustodyEvent.seq))]
    assert [(d["requests"], d["ranges"], d["whole_file"]) for d in summaries] == [(2, [[0, 999]], True),
                                                                                (3, [[0, 999]], True)]
    # Rows go once old and the ledger tells of all their requests; a later window stays.
    assert link_record.prune(rt.db, T0 + timedelta(hours=2, seconds=90), timedelta(hours=2)) == 1
    with rt.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(LinkAccess)) == 1


def test_a_viewers_use_is_claimed_once(shared: tuple[Runtime, str, str]) -> None:
    rt, link_id, _ = shared
    window = window_of(T0, 3600)
    with rt.db.transaction() as session:
        assert not link_record.has_use(session, link_id, VIEWER, T0 - timedelta(hours=1))
        assert link_record.claim_use(session, link_id, VIEWER, window, T0, "a") is True
    with rt.db.transaction() as session:
        assert link_record.claim_use(session, link_id, VIEWER, window, T0, "b") is False
        assert link_record.has_use(session, link_id, VIEWER, T0 - timedelta(minutes=59))
        assert not link_record.has_use(session, link_id, "198.51.100.1", T0 - timedelta(minutes=59))
        assert not link_record.has_use(session, link_id, VIEWER, T0 + timedelta(seconds=1))  # older than a session
        assert session.scalar(select(LinkAccess.key)) == USE
    # A use is never summarised into the ledger.
    assert link_record.close_windows(rt.db, T0 + timedelta(days=1), timedelta(seconds=2)) == 0
