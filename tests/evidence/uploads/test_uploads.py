"""What the application does when an upload completes: the item, its custody events, and
the hook that hands the item id on (to the processing pipeline) after the commit."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from tusclient.client import TusClient

from evidence import cases
from evidence.accounts import users
from evidence.http.app import create_app
from evidence.models import CustodyEvent, Item
from evidence.settings import Settings
from tests.support.files import random_file
from tests.support.inprocess import serving

# The pipeline hook hands items to the embedded broker (kombu's SQLAlchemy transport), whose
# models use `noload`, deprecated in SQLAlchemy 2.1. As an error it would leave SQLAlchemy's
# mappers half-configured for every later test in the process.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")

@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


def test_completion_creates_item_records_custody_then_calls_hook(settings: Settings, tmp_path: Path) -> None:
    app = create_app(settings)
    rt = app.state.runtime
    seen: list[tuple[str, str]] = []

    def on_item(item_id: str) -> None:
        # Called after the commit: a new session must already see the item.
        with rt.db.sessions() as session:
            seen.append((item_id, session.get_one(Item, item_id).state))

    app.state.upload_hooks.on_item_received.append(on_item)
    source = tmp_path / "interview.wav"
    random_file(source, 3 * 1024 * 1024 + 7)

    with serving(app) as url:
        with rt.db.transaction() as session:
            user = users.add_user(session, "dc.jones@force.police.uk", "officer")
            case = cases.create_case(session, "OP-KESTREL", None, "operator:test@host")
            cases.assign(session, case, user, "operator:test@host")
            token = rt.signer.issue(user)
        with open(source, "rb") as stream:
            uploader = TusClient(f"{url}/files/", headers={"Authorization": f"Bearer {token}"}).uploader(
                file_stream=stream, chunk_size=1024 * 1024, metadata={"filename": source.name, "case": "OP-KESTREL"}
            )
            uploader.upload()

        with rt.db.sessions() as session:
            [item] = session.scalars(select(Item)).all()
            events = session.scalars(select(CustodyEvent).order_by(CustodyEvent.seq))
            actions = [e.action for e in events if e.action != "checkpoint.signed"]
    assert seen == [(item.id, "received")]
    assert item.filename == "interview.wav" and item.size == source.stat().st_size
    assert actions == ["case.created", "case.assigned", "upload.created", "upload.completed", "original.stored"]
