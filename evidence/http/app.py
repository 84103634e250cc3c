"""The web application: composes the API, the tus endpoint and the background jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Literal

import anyio
from celery import Celery
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from evidence import custody
from evidence.accounts import websessions
from evidence.custody import ledger
from evidence.custody.disclosure import Internals
from evidence.http import answers
from evidence.http.access_log import AccessLog, LinkIds
from evidence.http.api import accounts, audit, cases, links, retention, uploads
from evidence.http.lease import AdvisoryLease, FileLease, Lease
from evidence.http.limits import HeaderLimitMiddleware, HeaderLimits
from evidence.http.outage import TusOutageGuard, outage_of
from evidence.http.pages import audit as audit_pages
from evidence.http.pages import cases as case_pages
from evidence.http.pages import docs as docs_pages
from evidence.http.pages import items as item_pages
from evidence.http.pages import login as login_pages
from evidence.http.pages import oidc as oidc_pages
from evidence.http.pages.jobs import VerifyJobs
from evidence.http.readiness import Readiness, check_all
from evidence.http.reviewer import routes as reviewer
from evidence.http.views import View
from evidence.keys import load_or_create_secret
from evidence.links import record as link_record
from evidence.links.gate import Gate
from evidence.links.tokens import InvalidToken, KeyRing, keyring_for
from evidence.models import utcnow
from evidence.runtime import Runtime
from evidence.settings import Settings
from evidence.uploads.tus import build_tus
from evidence.witness import cosign
from transcode.app import make_celery, requeue_stalled, resume_interrupted, start_pipeline
from transfer.handler import TusApp

log = logging.getLogger(__name__)


class Health(View):
    status: Literal["ok"]


# How long a request waits on a task queue that does not answer before the hand-off is
# left to the upkeep's requeue (the upload itself is recorded either way).
BROKER_CONNECT_SECONDS = 3


def create_app(settings: Settings, *, prepare: bool = True) -> FastAPI:
    """The app. ``prepare``: at start, run the migrations, check the storage and (embedded)
    queue again the items the last shutdown interrupted. Off in the processes of ``serve
    --workers N``: the supervisor does it once for all of them, and a process it starts again
    while a dependency is down must come up and say so (503, /readyz), not fail to start
    (which makes uvicorn's supervisor stop them all)."""
    rt = Runtime.build(settings)
    tus, hooks = build_tus(rt)
    celery = make_celery(settings)
    _bound_broker_waits(celery)
    # After the commit that created the item: hand it to the processing pipeline.
    hooks.on_item_received.append(lambda item_id: start_pipeline(celery, item_id))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if prepare:
            rt.upgrade_schema()
            rt.vault.ensure_ready()
            if settings.embedded_worker:
                resumed = await anyio.to_thread.run_sync(resume_interrupted, celery, rt)
                if resumed:
                    log.info("queued %d item(s) interrupted by the last shutdown", len(resumed))
        lease = upkeep_lease(rt)
        maintenance = asyncio.create_task(_maintain(rt, tus, celery, lease))
        try:
            yield
        finally:
            maintenance.cancel()
            lease.release()
            rt.close()

    # /docs is served from local files (evidence.http.pages.docs), never from a CDN; no /redoc.
    app = FastAPI(title="Evidence transfer", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    # Oversized request headers are refused before routing, authentication or the database.
    app.add_middleware(HeaderLimitMiddleware, limits=HeaderLimits.from_settings(settings))
    app.state.runtime = rt
    app.state.tus = tus
    app.state.upload_hooks = hooks
    # Reviewers' links. The clock is an attribute so tests can pass time in.
    # The session-cookie secret sits with the link keys, so every API node shares both.
    link_keys = keyring_for(settings)
    cookie_secret = load_or_create_secret(link_keys.folder / "session.secret")
    app.state.link_gate = Gate(rt, link_keys, cookie_secret, utcnow)
    app.state.cookie_secret = cookie_secret
    # What reviewers' copies of custody reports leave out (evidence.disclosure).
    app.state.internals = Internals.of_server(str(settings.data_path), str(settings.effective_tmp_dir),
                                              settings.effective_storage_url)
    # Outermost: every request is logged, with link tokens replaced by link ids (uvicorn's
    # own access log, which prints tokens, is off in `evidence serve`).
    app.add_middleware(AccessLog, link_of=LinkIds(lambda token: _link_id(link_keys, token)))

    answers.install(app)

    @app.get("/healthz", summary="Liveness (no authentication)")
    def healthz() -> Health:
        return Health(status="ok")

    def database_ping() -> None:
        with rt.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    checks: dict[str, Callable[[], object]] = {"database": database_ping, "storage": rt.vault.ensure_ready}
    if settings.broker_url:  # the embedded broker is a file in the data dir, not a dependency
        checks["broker"] = lambda: _broker_ping(celery)

    @app.get("/readyz", summary="Database, storage and broker reachable (no authentication)", response_model=Readiness,
             responses={503: {"model": Readiness, "description": "A dependency is unavailable: the one named"}})
    async def readyz() -> JSONResponse:
        found = await check_all(checks)
        return JSONResponse(found.as_json(), status_code=200 if found.status == "ready" else 503,
                            headers={"Cache-Control": "no-store"})

    # The reviewers' routes first: a player's Range requests are most of the traffic, and each
    # request is matched against the routes in order.
    app.include_router(reviewer.router)
    app.include_router(cases.router)
    app.include_router(accounts.router)
    app.include_router(uploads.router)
    app.include_router(audit.router)
    app.include_router(links.router)
    app.include_router(retention.router)
    # The officers' and auditors' pages, their style and the built upload client (web/).
    app.state.verify_jobs = VerifyJobs(rt)
    for pages in (login_pages, oidc_pages, case_pages, item_pages, audit_pages, docs_pages):
        app.include_router(pages.router)
    app.mount("/app/static", StaticFiles(packages=[("evidence.http.pages", "static")]), name="static")
    # A dependency down under a tus request is answered the tus way (503, Retry-After).
    app.mount("/files", TusOutageGuard(tus))
    return app


def upkeep_lease(rt: Runtime) -> Lease:
    """One upkeep for all the API processes on this database (:mod:`evidence.http.lease`)."""
    if rt.db.is_postgres:
        return AdvisoryLease(rt.db.lock_engine)
    return FileLease(rt.settings.data_path / "upkeep.lock")


def _bound_broker_waits(celery: Celery) -> None:
    """A request that hands work to a task queue that is down (the completion hook) waits a
    few seconds at most, then the upload completes anyway and the upkeep queues the item
    later. Only this process's copy of the Celery app: a worker's waits are its own."""
    conf = celery.conf
    conf.broker_connection_timeout = BROKER_CONNECT_SECONDS
    conf.task_publish_retry_policy = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
    if str(conf.broker_url or "").startswith(("redis://", "rediss://", "sentinel://")):
        conf.broker_transport_options = {**conf.broker_transport_options,
                                         "socket_connect_timeout": BROKER_CONNECT_SECONDS,
                                         "socket_timeout": BROKER_CONNECT_SECONDS * 2}


def _broker_ping(celery: Celery) -> None:
    with celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_CONNECT_SECONDS)


async def _maintain(rt: Runtime, tus: TusApp, celery: Celery, lease: Lease) -> None:
    """Background upkeep: sign checkpoints; remove expired uploads; queue again any item
    whose hand-off to the pipeline was lost (a crash between commit and enqueue). Done by
    the one process that holds the upkeep lease."""
    settings = rt.settings
    tick = min(settings.checkpoint_interval_seconds, settings.requeue_after_seconds / 2, settings.cleanup_interval_seconds, 60.0)
    next_cleanup = settings.cleanup_interval_seconds
    elapsed = 0.0
    requeued_once: set[str] = set()
    witnesses = _WitnessRounds(rt)
    while True:
        await asyncio.sleep(tick)
        elapsed += tick
        try:
            if not await anyio.to_thread.run_sync(lease.hold):
                continue
            # A signed checkpoint after each batch of appends, at most every few seconds.
            await anyio.to_thread.run_sync(_sign_checkpoint, rt)
            witnesses.start()
            queued_before = set(requeued_once)
            try:
                requeued = await anyio.to_thread.run_sync(
                    requeue_stalled, celery, rt, settings.requeue_after_seconds, requeued_once
                )
            except Exception:
                # The queue is down (say): these items were not handed on; try them next round.
                requeued_once.intersection_update(queued_before)
                raise
            if requeued:
                log.info("queued %d stalled item(s) again", len(requeued))
            if elapsed >= next_cleanup:
                next_cleanup += settings.cleanup_interval_seconds
                removed = await tus.cleanup_expired()
                if removed:
                    log.info("removed %d expired uploads", len(removed))
            # Link-access windows that have ended: one summary entry each where more happened.
            await anyio.to_thread.run_sync(link_record.upkeep, rt.db, settings, utcnow())
            await anyio.to_thread.run_sync(_purge_sessions, rt)
        except Exception as error:
            outage = outage_of(error)
            if outage is None:
                log.exception("background upkeep failed; will try again")
            else:  # expected while it lasts: one line, not a traceback every round
                log.warning("background upkeep waits: %s is down (%s)", outage.dependency, type(error).__name__)


def _purge_sessions(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        websessions.purge(session)


def _link_id(keys: KeyRing, token: str) -> str | None:
    try:
        return keys.verify(token, utcnow()).link_id
    except InvalidToken:
        return None


def _sign_checkpoint(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        if rt.settings.witnesses and not cosign.needs_checkpoint(session):
            return  # only cosignatures are new: a checkpoint for them would be cosigned in turn, for ever
        ledger.sign_checkpoint(session, rt.ledger_keys, custody.system_actor("ledger"))


class _WitnessRounds:
    """Asks the witnesses about the latest checkpoint beside the upkeep, never in its way: a
    round still waiting on a slow witness is left to finish, and the next starts after it."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.rt.settings.witnesses and (self.task is None or self.task.done()):
            self.task = asyncio.create_task(self._round())

    async def _round(self) -> None:
        settings = self.rt.settings
        try:
            await anyio.to_thread.run_sync(
                cosign.ask_all, self.rt.db, settings.witness_list, settings.witness_timeout_seconds)
        except Exception:
            log.exception("asking the witnesses failed; will ask again")
