"""The tus server as this application runs it: its store from the vault, upload state in
the database, locks that fit the database, and the limits from the settings."""

from __future__ import annotations

from datetime import timedelta

from evidence.runtime import Runtime
from evidence.uploads.hooks import UploadHooks
from evidence.uploads.locks import PostgresLocker
from evidence.uploads.registry import UploadRegistry
from transfer.handler import TusApp, TusConfig
from transfer.lock import LocalLocker, Locker


def build_tus(rt: Runtime, sweeper: str | None = None) -> tuple[TusApp, UploadHooks]:
    """``sweeper``: whom the custody record names for removing expired uploads (default: the upload service)."""
    settings = rt.settings
    registry = UploadRegistry(rt.db, rt.vault, sweeper)
    hooks = UploadHooks(rt.db, rt.auth, registry)
    locker: Locker
    if rt.db.is_postgres:
        locker = PostgresLocker(rt.db.lock_engine, settings.lock_timeout_seconds)
    else:
        locker = LocalLocker(settings.data_path / "locks", settings.lock_timeout_seconds)
    config = TusConfig(
        max_size=settings.max_upload_size,
        expiry=timedelta(hours=settings.upload_expiry_hours),
        tmp_dir=settings.effective_tmp_dir,
        max_lifetime=timedelta(hours=settings.upload_max_lifetime_hours),
        max_partials=settings.max_concat_partials,
        checkpoint_bytes=settings.upload_checkpoint_bytes,
    )
    return TusApp(rt.vault.tus_store(), registry, locker, hooks, config), hooks
