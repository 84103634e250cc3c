"""The Celery application: one factory, configured from the evidence settings.

Follows Celery's own guidance for work that must not be lost or done twice: late
acknowledgement (tasks are idempotent), requeue when a worker dies mid-task, prefetch of
one, a separate queue for long jobs, and time limits on everything.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery
from kombu import Queue
from sqlalchemy import select

from evidence.models import Item, ItemState
from evidence.runtime import Runtime
from evidence.settings import Settings
from transcode import attempts, lease
from transcode.steps import INGEST, QUEUES, Step

# The periodic fixity audit (transcode.audits), on a queue of its own so that production can
# give it its own worker; the embedded worker takes it with the others.
FIXITY_TASK = "evidence.fixity_audit"
FIXITY_QUEUE = "fixity"


class EvidenceCelery(Celery):
    """A Celery app that carries the settings and, per process, the runtime built from them
    (built on first use, so each forked worker child opens its own connections)."""

    settings: Settings
    _runtime: Runtime | None = None

    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = Runtime.build(self.settings)
        return self._runtime


def make_celery(settings: Settings) -> EvidenceCelery:
    broker = settings.effective_broker_url
    embedded = broker.startswith("sqla+")
    if embedded:
        broker = broker[len("sqla+") :]  # the transport is named below instead
    app = EvidenceCelery("evidence", broker=broker, set_as_current=True)
    app.settings = settings
    limit = settings.task_time_limit_seconds
    config: dict[str, Any] = dict(
        task_queues=[Queue(name) for name in (*QUEUES, FIXITY_QUEUE)],
        task_default_queue=INGEST,
        # Each step's queue (the task attribute Celery deprecates: routes are the way).
        task_routes={**{step.task: {"queue": step.queue} for step in Step}, FIXITY_TASK: {"queue": FIXITY_QUEUE}},
        # What beat sends (`evidence worker --beat`: one per deployment). A run that waited a
        # whole interval in the queue is dropped: the next is already on its way.
        beat_schedule={"fixity-audit": {"task": FIXITY_TASK, "schedule": settings.fixity_interval_seconds,
                                        "options": {"expires": settings.fixity_interval_seconds}}},
        beat_schedule_filename=str(settings.data_path / "celerybeat-schedule"),
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_time_limit=limit,
        task_soft_time_limit=max(limit - 60, 30),
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # A copy of a task still running is dropped by the item's lease (transcode.lease);
            # see the setting for how long this is and why.
            "visibility_timeout": settings.broker_visibility_timeout_seconds,
            # Redis: look for tasks of dead workers every few seconds (at most every 10 s), not
            # kombu's default of every 10th sweep of 10 s, which adds up to 100 s to the timeout.
            "unacked_restore_interval": min(10, max(1, settings.broker_visibility_timeout_seconds // 2)),
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
        worker_concurrency=settings.worker_concurrency,
        include=["transcode.tasks", "transcode.audits"],
    )
    if embedded:
        # The embedded broker is a SQLite file shared by the server and its worker. Kombu
        # hands this transport's options to create_engine, so only engine options go here:
        # wait for the file's lock rather than fail at once.
        config["broker_transport"] = "transcode.broker:SQLiteTransport"
        config["broker_transport_options"] = {"connect_args": {"timeout": 30}}
        settings.data_path.mkdir(parents=True, exist_ok=True)
    app.conf.update(config)
    return app


def declare_queues(app: Celery) -> None:
    """Create the broker's queues (and, on the embedded SQLite broker, its tables) once, before
    the embedded worker and its beat start: the two processes would otherwise both create them
    as they start, and kombu guards that only within one process."""
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in app.conf.task_queues:
            queue.bind(channel).declare()


def start_pipeline(app: Celery, item_id: str) -> None:
    """Queue the first step for an item. Safe to call twice: every step is idempotent."""
    app.send_task(Step.HASH_ORIGINAL.task, args=[item_id], queue=Step.HASH_ORIGINAL.queue)


def requeue_stalled(app: Celery, rt: Runtime, older_than_seconds: float, done: set[str]) -> list[str]:
    """Queue again what no worker will otherwise pick up: the items whose worker died mid-step
    (:func:`requeue_orphaned`), and those still ``received`` well after their upload finished
    (a lost hand-off).

    The ``received`` ones once per process: behind a long backlog an item also waits in
    ``received``, and repeating would flood the queue with duplicates. An item being hashed
    (it shows progress) is in hand, not stalled; one started too often is failed instead."""
    orphaned = requeue_orphaned(app, rt)
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
    with rt.db.sessions() as session:
        stalled = [
            item_id
            for item_id in session.scalars(
                select(Item.id).where(
                    Item.state == ItemState.RECEIVED, Item.created_at < cutoff, Item.progress.is_(None)
                )
            )
            if item_id not in done
        ]
    done.update(stalled)
    allowed = attempts.may_restart(rt, stalled)
    for item_id in allowed:
        start_pipeline(app, item_id)
    return [*orphaned, *allowed]


def requeue_orphaned(app: Celery, rt: Runtime) -> list[str]:
    """Queue again, from its first step, each item whose worker's lease ran out mid-step (the
    worker died). Steps already done are skipped, so it carries on where the dead one stopped.
    Its redelivered message may come first and take the step over instead; then the lease is
    live again and this finds nothing. The lease is freed as the item is queued, so it is
    queued once per death; one started too often is failed instead."""
    requeued = [item_id for item_id in lease.expired(rt) if lease.free_expired(rt, item_id)]
    for done, item_id in enumerate(requeued):
        try:
            start_pipeline(app, item_id)
        except Exception:
            # The queue is down (say): these were freed but not queued; found again next round.
            lease.expire_freed(rt, requeued[done:])
            raise
    return requeued


def resume_interrupted(app: Celery, rt: Runtime) -> list[str]:
    """Queue again every item left mid-way. For the embedded mode, whose SQLite broker does
    not give back a task that a killed worker was running: its worker starts with the
    server, so at start nothing can legitimately be in progress."""
    with rt.db.sessions() as session:
        found = list(session.scalars(select(Item.id).where(Item.state.in_(attempts.ACTIVE))))
    # Their leases name runs of the worker that stopped with the last server: none is live.
    lease.free_all(rt, found)
    # An item interrupted every time it was started (it may be what kills the worker) is
    # failed here rather than started once more on every restart.
    allowed = attempts.may_restart(rt, found)
    for item_id in allowed:
        start_pipeline(app, item_id)
    return allowed


def sweep_work_dirs(settings: Settings) -> int:
    """Remove working folders left by attempts killed mid-task (older than any live task)."""
    cutoff = time.time() - settings.task_time_limit_seconds
    removed = 0
    for folder in settings.effective_tmp_dir.glob("work-*"):
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed
