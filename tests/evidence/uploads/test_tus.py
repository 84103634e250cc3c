"""evidence.uploads.tus.build_tus: the tus server as the application runs it, on SQLite and
PostgreSQL: its store from the vault, locks that fit the database, limits from settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from evidence.runtime import Runtime
from evidence.settings import Settings
from evidence.uploads.hooks import UploadHooks
from evidence.uploads.locks import PostgresLocker
from evidence.uploads.registry import UploadRegistry
from evidence.uploads.tus import build_tus
from transfer.filestore import FileStore
from transfer.lock import LocalLocker


@pytest.fixture
def rt(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, max_upload_size=5000,
                        upload_expiry_hours=2, upload_max_lifetime_hours=30, max_concat_partials=7,
                        lock_timeout_seconds=3)
    runtime = Runtime.build(settings)
    try:
        yield runtime
    finally:
        runtime.close()


def test_the_server_is_built_from_the_settings(rt: Runtime, database_url: str) -> None:
    tus, hooks = build_tus(rt)
    assert isinstance(tus.store, FileStore) and tus.store.root == rt.settings.data_path / "vault"
    assert isinstance(tus.registry, UploadRegistry) and tus.registry.db is rt.db
    assert isinstance(hooks, UploadHooks) and tus.hooks is hooks and hooks.registry is tus.registry
    config = tus.config
    assert (config.max_size, config.expiry, config.max_lifetime, config.max_partials) == (
        5000, timedelta(hours=2), timedelta(hours=30), 7)
    assert config.tmp_dir == rt.settings.effective_tmp_dir
    # The file store can do every extension; expiry is on.
    assert set(tus.extensions) == {"creation", "creation-with-upload", "checksum", "expiration",
                                   "creation-defer-length", "termination", "concatenation"}
    # Locks that every API process shares: advisory locks on PostgreSQL, a folder beside SQLite.
    if database_url:
        assert isinstance(tus.locker, PostgresLocker)
        assert tus.locker.engine is rt.db.lock_engine and tus.locker.timeout == 3
    else:
        assert isinstance(tus.locker, LocalLocker)
        assert tus.locker.directory == rt.settings.data_path / "locks" and tus.locker.timeout == 3
