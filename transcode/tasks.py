"""Thin Celery tasks: each takes an item id, re-reads the item and runs one pipeline step.

Every task goes through :func:`step`, the project-wide decorator: keyword-only options with
typed defaults (a misspelt option is a TypeError at import, not a silently ignored
setting), the task's name from its :class:`~transcode.steps.Step` (a function not named after
a step is a ValueError at import; its queue is routed by the app), late acknowledgement, retries with back-off
for transient failures only, and a failure handler that settles the item: whatever ends a
task without settling its item (retries exhausted, the time limit, an error no step
expected) fails the item with a plain reason, so nothing is left ``processing`` for ever.

Each run holds the item's lease (:mod:`transcode.lease`) for as long as its step runs. A
delivery that is not needed (a live worker holds the item, or the item is
settled) and a run whose step was taken over are acknowledged without going on: Celery's
``Ignore``, which also keeps a chain's later steps from being queued a second time. So a step
queues what follows it only once its lease is given up (it returns the follow-up rather than
sending it; a chain's later links are sent by Celery after the task returns): sent from inside
the lease, the next step could reach a worker on the other queue while the lease was still
held, be taken for a duplicate and dropped, and the item would stall.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from celery import Task, shared_task
from celery.exceptions import Ignore

from evidence.runtime import Runtime
from transcode import lease, pipeline
from transcode.app import EvidenceCelery
from transcode.errors import TRANSIENT, describe
from transcode.failing import fail
from transcode.fence import Lease, LeaseLost
from transcode.steps import Step

log = logging.getLogger(__name__)


class ItemTask(Task[[str], None]):
    """A task whose one argument is an item id."""

    def runtime(self) -> Runtime:
        """The worker process's runtime, built from the settings its app was made with."""
        app = self.app
        if not isinstance(app, EvidenceCelery):
            raise TypeError(f"{self.name} is bound to a Celery app without the evidence settings: use make_celery()")
        return app.runtime()

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
            fail(self.runtime(), item_id, reason)
        except Exception:  # the database itself may be what failed: the next start settles it
            log.exception("could not record the failure of item %s (%s)", item_id, reason)


# A step returns what must be queued after it (None when nothing): sent by the wrapper once
# the step's lease has been given up.
FollowUp = Callable[[], object]
StepTask = Callable[[ItemTask, str], FollowUp | None]


def step(*, max_retries: int = 8, starts: bool = False) -> Callable[[StepTask], ItemTask]:
    """Register a function named after a :class:`Step` as that step's task.

    ``starts``: the task begins an item's processing, so every delivery of it counts as a
    start (a retry after a transient error does not). Taking over the step of a worker that
    died (its lease ran out) counts as a start too: an item that kills its worker each time
    cannot come back for ever. A copy delivered while a live worker holds the item is
    dropped and counts for nothing."""

    def register(function: StepTask) -> ItemTask:
        which = Step(function.__name__)

        @functools.wraps(function)
        def leased(self: ItemTask, item_id: str) -> None:
            rt = self.runtime()
            run = Lease(item_id, which)
            outcome = lease.claim(rt, run, counts_as_start=starts and self.request.retries == 0)
            if outcome.claim is lease.Claim.HELD:
                log.info("%s for item %s dropped: %s holds its %s step until %s", which.task, item_id, outcome.holder,
                         outcome.step, outcome.until)
                raise Ignore()
            if outcome.claim in (lease.Claim.SETTLED, lease.Claim.EXHAUSTED):
                raise Ignore()
            if outcome.holder:  # a dead run's: what it left in its working folder is not to be used
                removed = lease.remove_work_of(rt.settings.effective_tmp_dir, outcome.holder)
                log.warning("%s for item %s takes over from %s, whose lease on its %s step ran out%s"
                            " (%d working folder(s) it left removed)", which.task, item_id, outcome.holder, outcome.step,
                            f" at {outcome.until}" if outcome.until else "", removed)
            try:
                with lease.kept(rt, run):
                    follow_up = function(self, item_id)
            except LeaseLost as lost:
                log.warning("%s for item %s stops, recording nothing: %s", which.task, item_id, lost)
                raise Ignore() from None
            if follow_up is not None:
                follow_up()

        return shared_task(
            name=which.task,
            base=ItemTask,
            bind=True,
            acks_late=True,
            reject_on_worker_lost=True,
            autoretry_for=TRANSIENT,
            retry_backoff=2,
            retry_backoff_max=300,
            retry_jitter=True,
            max_retries=max_retries,
        )(leased)

    return register


@step(starts=True)
def hash_original(self: ItemTask, item_id: str) -> FollowUp | None:
    if not pipeline.hash_original(self.runtime(), item_id):
        return None
    following = Step.PROBE_ORIGINAL
    return functools.partial(self.app.send_task, following.task, args=[item_id], queue=following.queue)


@step()
def probe_original(self: ItemTask, item_id: str) -> FollowUp | None:
    steps = pipeline.probe_original(self.runtime(), item_id)
    if steps is None:
        return None
    signatures = [
        self.app.signature(name.task, args=[item_id], queue=name.queue, immutable=True)
        for name in [*steps, Step.FINISH_ITEM]
    ]
    # A chain, not a task waiting on tasks: each step is its own message, acknowledged
    # when done, so a worker lost mid-transcode costs only that step.
    chain = signatures[0]
    for signature in signatures[1:]:
        chain = chain | signature
    return chain.apply_async


@step()
def validate_media(self: ItemTask, item_id: str) -> None:
    pipeline.validate_media(self.runtime(), item_id)


@step()
def make_proxy(self: ItemTask, item_id: str) -> None:
    pipeline.make_proxy(self.runtime(), item_id)


@step()
def make_stills(self: ItemTask, item_id: str) -> None:
    pipeline.make_stills(self.runtime(), item_id)


@step()
def make_hls(self: ItemTask, item_id: str) -> None:
    pipeline.make_hls(self.runtime(), item_id)


@step()
def make_thumbnail(self: ItemTask, item_id: str) -> None:
    pipeline.make_thumbnail(self.runtime(), item_id)


@step()
def make_manifest(self: ItemTask, item_id: str) -> None:
    pipeline.make_manifest(self.runtime(), item_id)


@step()
def make_view(self: ItemTask, item_id: str) -> None:
    pipeline.make_view(self.runtime(), item_id)


@step()
def make_audio(self: ItemTask, item_id: str) -> None:
    pipeline.make_audio(self.runtime(), item_id)


@step()
def make_text(self: ItemTask, item_id: str) -> None:
    pipeline.make_text(self.runtime(), item_id)


@step()
def make_previews(self: ItemTask, item_id: str) -> None:
    pipeline.make_previews(self.runtime(), item_id)


@step()
def finish_item(self: ItemTask, item_id: str) -> None:
    pipeline.finish_item(self.runtime(), item_id)


@step()
def make_pages(self: ItemTask, item_id: str) -> None:
    pipeline.make_pages(self.runtime(), item_id)
