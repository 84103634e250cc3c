"""A runtime on a real database (SQLite and PostgreSQL) with items in it, and a Celery app on the
embedded broker (a SQLite file) whose queues can be read, for the tests of the modules that keep
an item's account or queue its work: attempts, budget, failing, app, tasks.

Items are written as the upload hook writes them (a case, an officer, a finished upload), in
whatever state a test needs; the originals' bytes are not stored (these modules never read them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu.simple import SimpleQueue
from sqlalchemy import select

from evidence import migrate
from evidence.models import Case, CustodyEvent, Item, ItemState, Role, Upload, User, new_id, utcnow
from evidence.runtime import Runtime
from evidence.settings import Settings
from transcode.app import EvidenceCelery, make_celery
from transcode.steps import INGEST

CASE = "OP-TRANSCODE"
OFFICER = "pc.smith@force.police.uk"

MakeItem = Callable[..., str]


@pytest.fixture
def rt(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    runtime = Runtime.build(Settings(data_dir=tmp_path / "data", database_url=database_url))
    migrate.upgrade(runtime.db.engine)
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def make_item(rt: Runtime) -> MakeItem:
    """``make_item(state=..., **columns)`` adds an item to one case; returns its id."""

    def make(state: ItemState = ItemState.RECEIVED, **columns: Any) -> str:
        with rt.db.transaction() as session:
            case = session.scalar(select(Case).where(Case.ref == CASE))
            officer = session.scalar(select(User).where(User.email == OFFICER))
            if officer is None:
                officer = User(email=OFFICER, role=Role.OFFICER)
                session.add(officer)
            if case is None:
                case = Case(ref=CASE, title="Transcode tests", created_by=f"user:{OFFICER}")
                session.add(case)
            session.flush()
            upload_id = new_id()
            key = f"originals/{upload_id}"
            session.add(
                Upload(id=upload_id, owner_id=officer.id, case_id=case.id, size=1000, offset=1000,
                       storage_key=key, finished_at=utcnow())
            )
            session.flush()
            given = {"filename": "CCTV 01.mp4", "size": 1000, **columns}
            item = Item(case_id=case.id, upload_id=upload_id, officer_id=officer.id, storage_key=key, state=state, **given)
            session.add(item)
            session.flush()
            return item.id

    return make


def item(rt: Runtime, item_id: str) -> Item:
    with rt.db.sessions() as session:
        return session.get_one(Item, item_id)


def actions(rt: Runtime, item_id: str) -> list[str]:
    """The custody actions recorded about the item, in order."""
    with rt.db.sessions() as session:
        return list(
            session.scalars(select(CustodyEvent.action).where(CustodyEvent.item_id == item_id).order_by(CustodyEvent.seq))
        )


@pytest.fixture
def app(rt: Runtime) -> Iterator[EvidenceCelery]:
    """The app a worker of ``rt``'s settings runs, on the embedded broker in its data dir."""
    made = make_celery(rt.settings)
    yield made
    if made._runtime is not None:
        made._runtime.close()


def queued(app: EvidenceCelery, queue: str = INGEST) -> list[tuple[str, list[str]]]:
    """Take every message waiting in ``queue`` of the app's broker: (task name, arguments)."""
    return [(message.headers["task"], message.payload[0]) for message in messages(app, queue)]


def messages(app: EvidenceCelery, queue: str = INGEST) -> list[Any]:
    """Take every message waiting in ``queue`` of the app's broker (kombu messages)."""
    found = []
    with app.connection_for_read() as connection:
        waiting = SimpleQueue(connection, app.amqp.queues[queue], no_ack=True)
        try:
            while True:
                try:
                    found.append(waiting.get(timeout=0.5))
                except waiting.Empty:
                    return found
        finally:
            waiting.close()
