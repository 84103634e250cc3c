"""The web application: composes the API, the tus endpoint and the background jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from evidence import migrate
from evidence.api import cases, uploads
from evidence.errors import EvidenceError
from evidence.locks import PostgresLocker
from evidence.runtime import Runtime
from evidence.settings import Settings
from evidence.uploads import UploadHooks, UploadRegistry
from transfer.handler import TusApp, TusConfig
from transfer.lock import LocalLocker, Locker

log = logging.getLogger(__name__)


def build_tus(rt: Runtime) -> tuple[TusApp, UploadHooks]:
    settings = rt.settings
    registry = UploadRegistry(rt.db, rt.vault)
    hooks = UploadHooks(rt.db, rt.signer, registry)
    locker: Locker
    if rt.db.is_postgres:
        locker = PostgresLocker(rt.db.engine, settings.lock_timeout_seconds)
    else:
        locker = LocalLocker(settings.data_path / "locks", settings.lock_timeout_seconds)
    config = TusConfig(
        max_size=settings.max_upload_size,
        expiry=timedelta(hours=settings.upload_expiry_hours),
        tmp_dir=settings.effective_tmp_dir,
    )
    return TusApp(rt.vault.tus_store(), registry, locker, hooks, config), hooks


def create_app(settings: Settings) -> FastAPI:
    rt = Runtime.build(settings)
    tus, hooks = build_tus(rt)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        migrate.upgrade(rt.db.engine)
        rt.vault.ensure_ready()
        cleaner = asyncio.create_task(_clean_periodically(tus, settings.cleanup_interval_seconds))
        try:
            yield
        finally:
            cleaner.cancel()
            rt.close()

    app = FastAPI(title="Evidence transfer", version="0.1.0", lifespan=lifespan)
    app.state.runtime = rt
    app.state.tus = tus
    app.state.upload_hooks = hooks

    @app.exception_handler(EvidenceError)
    async def _evidence_error(request: Request, error: EvidenceError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status)

    @app.get("/healthz", summary="Liveness (no authentication)")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Database and storage reachable (no authentication)")
    def readyz() -> JSONResponse:
        try:
            with rt.db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            rt.vault.ensure_ready()
        except Exception as error:  # report, don't crash: this is what readiness is for
            return JSONResponse({"status": "unavailable", "error": type(error).__name__}, status_code=503)
        return JSONResponse({"status": "ready"})

    app.include_router(cases.router)
    app.include_router(uploads.router)
    app.mount("/files", tus)
    return app


async def _clean_periodically(tus: TusApp, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            removed = await tus.cleanup_expired()
            if removed:
                log.info("removed %d expired uploads", len(removed))
        except Exception:
            log.exception("expired-upload cleanup failed; will try again")
