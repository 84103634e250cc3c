"""A custody ledger in a migrated database, on SQLite and PostgreSQL, for the ledger and verify tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evidence import migrate
from evidence.runtime import Runtime
from evidence.settings import Settings
from tests.evidence.custody.ledgers import checkpoint, record


@pytest.fixture
def rt(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    runtime = Runtime.build(Settings(data_dir=tmp_path / "data", database_url=database_url))
    migrate.upgrade(runtime.db.engine)
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def log(rt: Runtime) -> Runtime:
    """40 entries: 37 recorded, with checkpoints at 11 and 25 and at the end (40)."""
    record(rt, 10)
    checkpoint(rt)
    record(rt, 13, 10)
    checkpoint(rt)
    record(rt, 14, 23)
    checkpoint(rt)
    return rt
