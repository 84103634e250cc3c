"""Thin Celery tasks: each takes an item id, re-reads the item and runs one pipeline step.

Every task goes through :func:`step`, the project-wide decorator: keyword-only options with
typed defaults (a misspelt option is a TypeError at import, not a silently ignored
setting), late acknowledgement, retries with back-off for transient failures only, and a
failure handler that settles the item: whatever ends a task without settling its item (retries
exhausted, the time limit, an error no step expected) fails the item with a plain reason, so
nothing is left ``processing`` for ever.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Literal

from celery import Task, shared_task
from celery.canvas import Signature

from transcode import attempts, pipeline
from transcode.app import INGEST, TRANSCODE
from transcode.errors import TRANSIENT, describe
from transcode.failing import fail

log = logging.getLogger(__name__)


class ItemTask(Task):  # type: ignore[misc]
    """A task whose first argument is an item id."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        item_id = args[0] if args else kwargs.get("item_id")
        if not item_id:
            return
        tries = self.request.retries + 1
        if isinstance(exc, TRANSIENT):
            reason = f"processing stopped after {tries} attempt{'s' if tries > 1 else ''}: {describe(exc)}"
        else:
            reason = f"processing stopped: {describe(exc)}"
        try:
            fail(self.app.runtime(), item_id, reason)
        except Exception:  # the database itself may be what failed: the next start settles it
            log.exception("could not record the failure of item %s (%s)", item_id, reason)


def step(
    *, queue: Literal["ingest", "transcode"], max_retries: int = 8, starts: bool = False
) -> Callable[[Callable[..., Any]], Task]:
    """``starts``: the task begins an item's processing, so every delivery of it counts as a
    start (a retry after a transient error does not). Any step delivered again after its
    worker was lost (the broker marks it redelivered) counts as a start too: an item that
    kills its worker each time cannot come back for ever."""

    def register(function: Callable[..., Any]) -> Task:
        @functools.wraps(function)
        def counted(self: Task, item_id: str) -> Any:
            redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
            fresh = starts and self.request.retries == 0
            if (fresh or redelivered) and not attempts.start(_rt(self), item_id):
                return None
            return function(self, item_id)

        return shared_task(  # type: ignore[no-any-return]
            name=f"evidence.{function.__name__}",
            base=ItemTask,
            bind=True,
            queue=queue,
            acks_late=True,
            reject_on_worker_lost=True,
            autoretry_for=TRANSIENT,
            retry_backoff=2,
            retry_backoff_max=300,
            retry_jitter=True,
            max_retries=max_retries,
        )(counted)

    return register


def _rt(task: Task) -> Any:
    return task.app.runtime()


@step(queue=INGEST, starts=True)
def hash_original(self: Task, item_id: str) -> None:
    if pipeline.hash_original(_rt(self), item_id):
        self.app.send_task("evidence.probe_original", args=[item_id], queue=INGEST)


@step(queue=INGEST)
def probe_original(self: Task, item_id: str) -> None:
    steps = pipeline.probe_original(_rt(self), item_id)
    if steps is None:
        return
    signatures: list[Signature] = [
        self.app.signature(f"evidence.{name}", args=[item_id], queue=QUEUE_OF[name], immutable=True)
        for name in [*steps, "finish_item"]
    ]
    # A chain, not a task waiting on tasks: each step is its own message, acknowledged
    # when done, so a worker lost mid-transcode costs only that step.
    chain = signatures[0]
    for signature in signatures[1:]:
        chain = chain | signature
    chain.apply_async()


@step(queue=TRANSCODE)
def validate_media(self: Task, item_id: str) -> None:
    pipeline.validate_media(_rt(self), item_id)


@step(queue=TRANSCODE)
def make_proxy(self: Task, item_id: str) -> None:
    pipeline.make_proxy(_rt(self), item_id)


@step(queue=TRANSCODE)
def make_stills(self: Task, item_id: str) -> None:
    pipeline.make_stills(_rt(self), item_id)


@step(queue=TRANSCODE)
def make_hls(self: Task, item_id: str) -> None:
    pipeline.make_hls(_rt(self), item_id)


@step(queue=INGEST)
def make_thumbnail(self: Task, item_id: str) -> None:
    pipeline.make_thumbnail(_rt(self), item_id)


@step(queue=INGEST)
def make_manifest(self: Task, item_id: str) -> None:
    pipeline.make_manifest(_rt(self), item_id)


@step(queue=INGEST)
def finish_item(self: Task, item_id: str) -> None:
    pipeline.finish_item(_rt(self), item_id)


QUEUE_OF = {
    "validate_media": TRANSCODE,
    "make_proxy": TRANSCODE,
    "make_stills": TRANSCODE,
    "make_hls": TRANSCODE,
    "make_thumbnail": INGEST,
    "make_manifest": INGEST,
    "finish_item": INGEST,
}
