"""The models' own logic: times always aware and in UTC, and the enums the record, the API
and the pages name states, roles and working copies by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.exc import StatementError

from evidence import migrate
from evidence.db import Database
from evidence.models import ITEM_STATES, ROLES, Case, DerivativeKind, ItemState, Role


def test_times_go_in_aware_and_come_out_in_utc(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")  # SQLite keeps no zone of its own
    migrate.upgrade(db.engine)
    try:
        paris = datetime(2026, 3, 1, 13, 30, tzinfo=timezone(timedelta(hours=1)))
        with db.transaction() as session:
            session.add(Case(id="c" * 32, ref="OP-TIME", created_by="operator:test", created_at=paris))
        with db.sessions() as session:
            stored = session.get_one(Case, "c" * 32).created_at
        assert stored == paris and stored.tzinfo == UTC and stored.hour == 12
        with pytest.raises(StatementError, match="naive datetime"), db.transaction() as session:
            session.add(Case(id="d" * 32, ref="OP-NAIVE", created_by="operator:test", created_at=datetime(2026, 3, 1)))
    finally:
        db.dispose()


def test_the_names_are_the_contracts() -> None:
    # DESIGN.md: item states, roles and derivative kinds as users, the API and the pages see them.
    assert [str(s) for s in ItemState] == ["uploading", "received", "processing", "ready", "failed", "quarantined",
                                           "disposed"]
    assert [str(r) for r in Role] == ["officer", "reviewer", "auditor", "admin"]
    assert {"proxy", "poster", "contact_sheet", "probe", "manifest", "hls", "thumbnail", "view", "audio", "text", "pages",
            "previews"} == {str(k) for k in DerivativeKind}
    assert ITEM_STATES == tuple(ItemState) and ROLES == tuple(Role)
    assert f"{ItemState.READY}" == "ready" and ItemState("failed") is ItemState.FAILED


def test_settled_states_are_those_nothing_more_happens_to() -> None:
    assert {s for s in ItemState if s.settled} == {ItemState.READY, ItemState.FAILED, ItemState.QUARANTINED,
                                                   ItemState.DISPOSED}
