"""The Celery tasks as a worker runs them: registered under the names queued messages carry,
each start of an item counted (and a takeover from a dead worker too), a copy delivered while a
live worker holds the item dropped, the next steps queued on the real embedded broker as a
chain, and every way a task can end settling its item.

A task runs here as the worker's tracer runs it: its request (retries, delivery info) pushed on
the task, then its body called; the broker and the database are real."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.exceptions import Ignore
from sqlalchemy.exc import OperationalError

from evidence.custody.actions import Action
from evidence.models import Item, ItemState, utcnow
from evidence.runtime import Runtime
from evidence.settings import Settings
from tests.transcode.conftest import MakeItem, actions, item, messages, queued
from transcode import pipeline, tasks
from transcode.app import EvidenceCelery, make_celery
from transcode.attempts import exhausted_reason
from transcode.errors import TRANSIENT
from transcode.steps import INGEST, TRANSCODE, Step
from transcode.tasks import ItemTask, step

# kombu's SQLAlchemy transport declares its models with `noload`, deprecated in SQLAlchemy 2.1.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")
HASHED = {"sha256": "ab" * 32}
DEAD = "worker-7.force.internal:4242:0123456789abcdef"  # a worker gone without a word


def lease_of(seconds_left: float, holder: str = DEAD) -> dict[str, Any]:
    """An item's lease columns: held by ``holder``, ending ``seconds_left`` from now."""
    return {"lease_holder": holder, "lease_step": Step.MAKE_PROXY.value,
            "lease_expires_at": utcnow() + timedelta(seconds=seconds_left)}


def task(app: Celery, which: Step) -> ItemTask:
    found = app.tasks[which.task]
    assert isinstance(found, ItemTask)
    return found


def run(app: EvidenceCelery, which: Step, item_id: str, *, retries: int = 0, redelivered: bool = False) -> None:
    """Run the task's body under the request a worker would give it."""
    runner = task(app, which)
    runner.push_request(args=[item_id], retries=retries, delivery_info={"redelivered": redelivered})
    try:
        runner.run(item_id)
    finally:
        runner.pop_request()


def test_every_step_is_a_task_under_its_name_routed_to_its_queue(app: EvidenceCelery) -> None:
    assert sorted(name for name in app.tasks if name.startswith("evidence.")) == sorted(s.task for s in Step)
    for which in Step:
        registered = task(app, which)
        assert app.amqp.router.route({}, which.task)["queue"].name == which.queue, which
        assert registered.acks_late and registered.reject_on_worker_lost
        assert tuple(registered.autoretry_for) == TRANSIENT  # type: ignore[attr-defined]  # likewise
        assert registered.max_retries == 8


def test_a_task_not_named_after_a_step_or_a_misspelt_option_fails_at_import() -> None:
    def make_poster(self: ItemTask, item_id: str) -> None:  # not a step: the stills step makes posters
        raise AssertionError("never registered, never run")

    with pytest.raises(ValueError, match="'make_poster' is not a valid Step"):
        step()(make_poster)
    with pytest.raises(TypeError, match="queue"):
        step(queue=TRANSCODE)  # type: ignore[call-arg]  # the misspelling is the test


def test_the_first_step_counts_a_start_and_queues_the_probe(app: EvidenceCelery, make_item: MakeItem) -> None:
    item_id = make_item(ItemState.PROCESSING, hashes=HASHED)  # hashed already: nothing read again
    rt = app.runtime()
    run(app, Step.HASH_ORIGINAL, item_id)
    assert item(rt, item_id).attempts == 1
    assert queued(app) == [("evidence.probe_original", [item_id])]

    # A retry after a transient failure is the same start going on, not another.
    run(app, Step.HASH_ORIGINAL, item_id, retries=1)
    assert item(rt, item_id).attempts == 1
    assert queued(app) == [("evidence.probe_original", [item_id])]


def test_the_next_step_is_queued_only_once_the_lease_is_given_up(
    app: EvidenceCelery, make_item: MakeItem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sent while the lease was still held, the next step could reach a worker on the other
    queue first, be taken for a duplicate of a live run and dropped: the item would stall."""
    item_id = make_item(ItemState.PROCESSING, hashes=HASHED)
    rt = app.runtime()
    seen: list[str | None] = []
    send = app.send_task

    def send_and_look(*args: Any, **kwargs: Any) -> Any:
        seen.append(item(rt, item_id).lease_holder)
        return send(*args, **kwargs)

    monkeypatch.setattr(app, "send_task", send_and_look)
    run(app, Step.HASH_ORIGINAL, item_id)
    assert queued(app) == [("evidence.probe_original", [item_id])]
    assert seen == [None]


def test_taking_over_the_step_of_a_dead_worker_counts_as_a_start(app: EvidenceCelery, make_item: MakeItem) -> None:
    item_id = make_item(ItemState.PROCESSING, hashes=HASHED, attempts=1, **lease_of(-1))
    rt = app.runtime()
    run(app, Step.FINISH_ITEM, item_id, redelivered=True)
    done = item(rt, item_id)
    assert (done.attempts, done.state) == (2, ItemState.READY)
    assert (done.lease_holder, done.lease_step, done.lease_expires_at) == (None, None, None)  # given up at the end

    # Delivered again with the lease free (its run finished, or died before taking it), a
    # later step is part of the start that queued it, whether or not the broker says redelivered.
    for redelivered in (False, True):
        second = make_item(ItemState.PROCESSING, hashes=HASHED, attempts=1)
        run(app, Step.FINISH_ITEM, second, redelivered=redelivered)
        assert (item(rt, second).attempts, item(rt, second).state) == (1, ItemState.READY)


def test_a_copy_delivered_while_a_live_worker_holds_the_item_is_dropped(
    app: EvidenceCelery, make_item: MakeItem, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis redelivers a task still running once its visibility timeout passes: the copy is
    acknowledged (Ignore) and does nothing, not even count a start or queue the next step."""
    live = "worker-1.force.internal:1000:fedcba9876543210"
    item_id = make_item(ItemState.PROCESSING, hashes=HASHED, attempts=1, **lease_of(30, live))
    rt = app.runtime()
    with caplog.at_level(logging.INFO, logger="transcode.tasks"), pytest.raises(Ignore):
        run(app, Step.HASH_ORIGINAL, item_id, redelivered=True)
    held = item(rt, item_id)
    assert (held.attempts, held.state, held.lease_holder) == (1, ItemState.PROCESSING, live)
    assert queued(app) == []
    assert f"evidence.hash_original for item {item_id} dropped: {live} holds its make_proxy step" in caplog.text


def test_a_run_whose_step_was_taken_over_commits_nothing(
    app: EvidenceCelery, make_item: MakeItem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lease passes to another worker while this run is still at work (it stalled past its
    lease): its result, here the item made ready, is not committed, and the task ends quietly
    (acknowledged, its chain not carried on), leaving the lease to the new holder."""
    item_id = make_item(ItemState.PROCESSING, hashes=HASHED, attempts=1)
    rt = app.runtime()
    other = "worker-2.force.internal:77:aaaaaaaaaaaaaaaa"
    finish = pipeline.finish_item

    def stalled_then_finish(runtime: Runtime, which: str) -> None:
        with rt.db.transaction() as session:  # meanwhile, the step is taken over
            session.get_one(Item, which).lease_holder = other
        finish(runtime, which)

    monkeypatch.setattr(pipeline, "finish_item", stalled_then_finish)
    with pytest.raises(Ignore):
        run(app, Step.FINISH_ITEM, item_id)
    assert (item(rt, item_id).state, item(rt, item_id).lease_holder) == (ItemState.PROCESSING, other)
    assert actions(rt, item_id) == []


def test_an_item_whose_worker_dies_every_time_is_failed_not_run_again(app: EvidenceCelery, make_item: MakeItem) -> None:
    limit = app.settings.max_processing_attempts
    item_id = make_item(ItemState.PROCESSING, hashes=HASHED, attempts=limit, **lease_of(-1))
    rt = app.runtime()
    with pytest.raises(Ignore):
        run(app, Step.MAKE_PROXY, item_id, redelivered=True)
    assert item(rt, item_id).state == ItemState.FAILED
    assert item(rt, item_id).reason == exhausted_reason(limit)
    assert item(rt, item_id).lease_holder is None
    with pytest.raises(Ignore):
        run(app, Step.HASH_ORIGINAL, item_id, redelivered=True)
    assert queued(app) == []
    assert actions(rt, item_id) == [Action.ITEM_FAILED]


def chain_of(message: Any) -> list[tuple[str, str]]:
    """The steps a message carries after its own, in the order they will run: (task, queue)."""
    following = message.payload[2]["chain"] or []
    return [(signature["task"], signature["options"]["queue"]) for signature in reversed(following)]


@pytest.mark.parametrize(
    ("kind", "duration", "first", "then"),
    [
        # A reviewer's working copy first (the image's view, the audio's AAC), as with video.
        ("image", None, (Step.MAKE_VIEW, INGEST), [Step.MAKE_THUMBNAIL]),
        ("archive", None, (Step.MAKE_MANIFEST, INGEST), [Step.MAKE_PREVIEWS]),
        ("audio", 30.0, (Step.MAKE_AUDIO, TRANSCODE), [Step.VALIDATE_MEDIA]),
        ("text", None, (Step.MAKE_TEXT, INGEST), []),
        # The proxy first: it is what a reviewer waits for (the full-decode validation follows).
        ("video", 30.0, (Step.MAKE_PROXY, TRANSCODE), [Step.VALIDATE_MEDIA, Step.MAKE_STILLS]),
        ("video", 3600.0, (Step.MAKE_PROXY, TRANSCODE), [Step.VALIDATE_MEDIA, Step.MAKE_STILLS, Step.MAKE_HLS]),
    ],
)
def test_the_probe_queues_what_the_file_needs_as_a_chain(
    app: EvidenceCelery, make_item: MakeItem, kind: str, duration: float | None, first: tuple[Step, str], then: list[Step]
) -> None:
    media = {"duration": duration} if duration else {}
    item_id = make_item(ItemState.PROCESSING, hashes=HASHED, kind=kind, media=media)  # probed already
    run(app, Step.PROBE_ORIGINAL, item_id)
    step_, queue = first
    [message] = messages(app, queue)
    assert (message.headers["task"], message.payload[0]) == (step_.task, [item_id])
    assert chain_of(message) == [(s.task, s.queue) for s in [*then, Step.FINISH_ITEM]]
    assert messages(app, INGEST if queue == TRANSCODE else TRANSCODE) == []


def test_nothing_is_queued_for_a_file_kept_as_it_is_but_its_finish(app: EvidenceCelery, make_item: MakeItem) -> None:
    item_id = make_item(ItemState.PROCESSING, hashes=HASHED, kind="other")  # a PDF gets its pages made
    run(app, Step.PROBE_ORIGINAL, item_id)
    [message] = messages(app)
    assert message.headers["task"] == "evidence.finish_item" and chain_of(message) == []


def test_the_probe_of_a_settled_item_queues_nothing(app: EvidenceCelery, make_item: MakeItem) -> None:
    item_id = make_item(ItemState.FAILED, hashes=HASHED, kind="video")
    with pytest.raises(Ignore):  # acknowledged, and no chain carried on
        run(app, Step.PROBE_ORIGINAL, item_id)
    assert messages(app) == [] and messages(app, TRANSCODE) == []


def test_a_task_that_gave_up_fails_its_item_with_a_plain_reason(app: EvidenceCelery, make_item: MakeItem) -> None:
    rt = app.runtime()
    after_retries, unexpected, by_keyword, ready = (
        make_item(ItemState.PROCESSING), make_item(ItemState.PROCESSING), make_item(ItemState.PROCESSING),
        make_item(ItemState.READY),
    )
    database_down = OperationalError("SELECT 1", {}, ConnectionRefusedError("db.internal:5432 refused"))
    proxy = task(app, Step.MAKE_PROXY)
    proxy.push_request(retries=2)
    try:
        proxy.on_failure(database_down, "task-1", (after_retries,), {}, None)
    finally:
        proxy.pop_request()
    proxy.on_failure(KeyError("codec_context"), "task-2", (unexpected,), {}, None)
    proxy.on_failure(KeyError("codec_context"), "task-3", (), {"item_id": by_keyword}, None)
    proxy.on_failure(database_down, "task-4", (ready,), {}, None)
    proxy.on_failure(database_down, "task-5", (), {}, None)  # no item named: nothing to settle

    assert item(rt, after_retries).reason == "processing stopped after 3 attempts: the database could not be reached"
    assert item(rt, unexpected).reason == (
        "processing stopped: an unexpected error (KeyError); the worker's log has the details"
    )
    assert item(rt, by_keyword).state == ItemState.FAILED
    assert item(rt, ready).state == ItemState.READY and actions(rt, ready) == []


@pytest.fixture
def unreachable(tmp_path: Path) -> Iterator[EvidenceCelery]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(data_dir=tmp_path / "data", database_url=f"postgresql://evidence@127.0.0.1:{port}/evidence")
    made = make_celery(settings)
    yield made
    made.runtime().close()


def test_when_the_failure_cannot_be_recorded_the_worker_logs_it_and_goes_on(
    unreachable: EvidenceCelery, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="transcode.tasks"):
        task(unreachable, Step.MAKE_PROXY).on_failure(TimeoutError(), "task-1", ("0" * 32,), {}, None)
    [logged] = caplog.records
    assert logged.getMessage() == (
        f"could not record the failure of item {'0' * 32} (processing stopped after 1 attempt: a connection failed or timed out)"
    )
    assert logged.exc_info is not None and isinstance(logged.exc_info[1], OperationalError)


def test_under_an_app_without_the_settings_a_task_says_so(tmp_path: Path) -> None:
    plain = Celery("plain", set_as_current=False)
    with pytest.raises(TypeError, match=r"evidence\.finish_item is bound to a Celery app without the evidence settings"):
        task(plain, Step.FINISH_ITEM).runtime()


def test_the_module_level_tasks_are_those_the_app_runs(app: EvidenceCelery) -> None:
    assert tasks.finish_item.name == "evidence.finish_item"
    assert app.tasks["evidence.finish_item"] is tasks.finish_item._get_current_object()  # type: ignore[attr-defined]
