"""Leases on an item's processing step, on SQLite and PostgreSQL: taking, holding, renewing and
giving up a lease; a copy of a task finding it held; a dead holder's lease taken over and
counted; the upkeep freeing and queuing what dead workers held; a run that lost its lease
committing nothing. Real databases, a real heartbeat thread, real files in the vault."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from evidence.custody.actions import Action
from evidence.models import Derivative, DerivativeKind, Item, ItemState, utcnow
from evidence.runtime import Runtime
from tests.transcode.conftest import MakeItem, actions, item, queued
from transcode import fence, lease, pipeline
from transcode.app import EvidenceCelery, make_celery, requeue_stalled, resume_interrupted
from transcode.attempts import exhausted_reason
from transcode.failing import fail
from transcode.fence import Lease, LeaseLost
from transcode.lease import Claim
from transcode.steps import Step

# kombu's SQLAlchemy transport (the embedded broker) declares its models with `noload`,
# deprecated in SQLAlchemy 2.1.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")
DEAD = "worker-7.force.internal:4242:0123456789abcdef"
PROXY = Step.MAKE_PROXY.value


def set_lease(rt: Runtime, item_id: str, holder: str | None, seconds_left: float | None) -> None:
    with rt.db.transaction() as session:
        row = session.get_one(Item, item_id)
        row.lease_holder, row.lease_step = holder, PROXY if holder else None
        row.lease_expires_at = None if seconds_left is None else utcnow() + timedelta(seconds=seconds_left)


def test_a_free_lease_is_taken_and_then_held_against_every_other_run(rt: Runtime, make_item: MakeItem) -> None:
    item_id = make_item(ItemState.PROCESSING, attempts=1)
    first, second = Lease(item_id, PROXY), Lease(item_id, PROXY)
    before = utcnow()
    assert lease.claim(rt, first, counts_as_start=False).claim is Claim.TAKEN
    row = item(rt, item_id)
    assert (row.lease_holder, row.lease_step, row.attempts) == (first.holder, PROXY, 1)
    assert row.lease_expires_at is not None
    assert before + timedelta(seconds=rt.settings.lease_seconds - 5) < row.lease_expires_at
    assert row.lease_expires_at <= utcnow() + timedelta(seconds=rt.settings.lease_seconds + 5)

    # A copy of the task, even one counting as a start, finds it held and changes nothing.
    held = lease.claim(rt, second, counts_as_start=True)
    assert (held.claim, held.holder, held.step, held.until) == (Claim.HELD, first.holder, PROXY, row.lease_expires_at)
    assert item(rt, item_id).attempts == 1 and item(rt, item_id).lease_holder == first.holder

    # Given up at the end of the step: the next step's run takes it, without counting a start.
    lease.release(rt, second)  # not its lease: nothing happens
    assert item(rt, item_id).lease_holder == first.holder
    lease.release(rt, first)
    assert (item(rt, item_id).lease_holder, item(rt, item_id).lease_expires_at) == (None, None)
    assert lease.claim(rt, second, counts_as_start=False).claim is Claim.TAKEN
    assert item(rt, item_id).attempts == 1


def test_the_lease_of_a_dead_worker_is_taken_over_and_counted(rt: Runtime, make_item: MakeItem) -> None:
    item_id = make_item(ItemState.PROCESSING, attempts=1)
    set_lease(rt, item_id, DEAD, -1)
    run = Lease(item_id, Step.MAKE_STILLS.value)
    outcome = lease.claim(rt, run, counts_as_start=False)
    assert (outcome.claim, outcome.holder, outcome.step) == (Claim.TAKEN_OVER, DEAD, PROXY)
    row = item(rt, item_id)
    assert (row.lease_holder, row.lease_step, row.attempts) == (run.holder, Step.MAKE_STILLS.value, 2)

    # The first step taking over counts once, not once as a start and again as a takeover.
    other = make_item(ItemState.RECEIVED, attempts=1)
    set_lease(rt, other, DEAD, -1)
    assert lease.claim(rt, Lease(other, "hash_original"), counts_as_start=True).claim is Claim.TAKEN_OVER
    assert item(rt, other).attempts == 2


def test_an_item_started_too_often_is_failed_instead_of_taken(rt: Runtime, make_item: MakeItem) -> None:
    limit = rt.settings.max_processing_attempts
    item_id = make_item(ItemState.PROCESSING, attempts=limit)
    set_lease(rt, item_id, DEAD, -1)
    assert lease.claim(rt, Lease(item_id, PROXY), counts_as_start=False).claim is Claim.EXHAUSTED
    row = item(rt, item_id)
    assert (row.state, row.reason, row.lease_holder) == (ItemState.FAILED, exhausted_reason(limit), None)
    assert actions(rt, item_id) == [Action.ITEM_FAILED]
    assert lease.claim(rt, Lease(item_id, PROXY), counts_as_start=True).claim is Claim.SETTLED
    assert lease.claim(rt, Lease("0" * 32, PROXY), counts_as_start=True).claim is Claim.SETTLED


def test_runs_racing_for_one_item_get_one_lease(rt: Runtime, make_item: MakeItem) -> None:
    """Copies of one task reach several workers at once: the row lock lets exactly one through."""
    item_id = make_item(ItemState.PROCESSING, attempts=1)
    set_lease(rt, item_id, DEAD, -1)
    barrier = threading.Barrier(6)
    outcomes: list[Claim] = []

    def worker() -> None:
        barrier.wait()
        outcomes.append(lease.claim(rt, Lease(item_id, PROXY), counts_as_start=False).claim)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.value for o in outcomes) == sorted([Claim.TAKEN_OVER.value] + [Claim.HELD.value] * 5)
    assert item(rt, item_id).attempts == 2


@pytest.fixture
def quick(rt: Runtime) -> Runtime:
    # Short, yet three beats long: a beat late on a loaded machine does not lose it.
    rt.settings = rt.settings.model_copy(update={"lease_seconds": 3})
    return rt


def test_a_kept_lease_is_renewed_while_its_step_runs_and_given_up_after(quick: Runtime, make_item: MakeItem) -> None:
    item_id = make_item(ItemState.PROCESSING, attempts=1)
    run = Lease(item_id, PROXY)
    assert lease.claim(quick, run, counts_as_start=False).claim is Claim.TAKEN
    first_end = item(quick, item_id).lease_expires_at
    assert first_end is not None
    with lease.kept(quick, run):
        assert fence.current() is run
        time.sleep(2 * quick.settings.lease_seconds)  # past the first end: only beats keep it
        renewed = item(quick, item_id).lease_expires_at
        assert renewed is not None and renewed > first_end + timedelta(seconds=quick.settings.lease_seconds)
        assert renewed > utcnow()
        # Still its own: another run finds it held.
        assert lease.claim(quick, Lease(item_id, PROXY), counts_as_start=False).claim is Claim.HELD
        fence.check()  # not lost
    assert fence.current() is None
    assert item(quick, item_id).lease_holder is None


def test_a_run_whose_lease_was_taken_over_commits_nothing(quick: Runtime, make_item: MakeItem, tmp_path: Path) -> None:
    """The run stalled past its lease (a long pause, a network split) and another worker took
    the step over: its heartbeat finds out, and none of its results is recorded."""
    item_id = make_item(ItemState.PROCESSING, attempts=1)
    run = Lease(item_id, PROXY)
    lease.claim(quick, run, counts_as_start=False)
    made = tmp_path / "proxy.mp4"
    made.write_bytes(b"a working copy made by the run that lost its lease")
    with lease.kept(quick, run):
        set_lease(quick, item_id, "worker-2.force.internal:77:aaaaaaaaaaaaaaaa", 60)  # taken over
        # Before its heartbeat has noticed: the commit itself checks.
        with pytest.raises(LeaseLost):
            pipeline._store_derivative(quick, item_id, DerivativeKind.PROXY, made, "proxy.mp4", "video/mp4", {})
        with pytest.raises(LeaseLost):
            pipeline.finish_item(quick, item_id)
        with pytest.raises(LeaseLost):
            fail(quick, item_id, "a failure the loser must not record")
        # After: it stops before storing anything more.
        with pytest.raises(LeaseLost):
            fence.check()
    with quick.db.sessions() as session:
        assert session.query(Derivative).filter_by(item_id=item_id).count() == 0
    row = item(quick, item_id)
    assert (row.state, row.lease_holder) == (ItemState.PROCESSING, "worker-2.force.internal:77:aaaaaaaaaaaaaaaa")
    assert actions(quick, item_id) == []

    # The heartbeat alone finds out too, and flags the run so that it stops at its next check.
    second = make_item(ItemState.PROCESSING, attempts=1)
    run = Lease(second, PROXY)
    lease.claim(quick, run, counts_as_start=False)
    with lease.kept(quick, run):
        set_lease(quick, second, "worker-3.force.internal:88:bbbbbbbbbbbbbbbb", 60)
        assert run.lost.wait(3 * quick.settings.lease_seconds)
        with pytest.raises(LeaseLost):
            fence.check()


def test_the_upkeep_queues_again_each_item_whose_worker_died_once(
    rt: Runtime, app: EvidenceCelery, make_item: MakeItem
) -> None:
    dead, live, between_steps, ready, exhausted = (
        make_item(ItemState.PROCESSING, attempts=1), make_item(ItemState.PROCESSING, attempts=1),
        make_item(ItemState.PROCESSING, attempts=1), make_item(ItemState.READY, attempts=1),
        make_item(ItemState.PROCESSING, attempts=rt.settings.max_processing_attempts),
    )
    set_lease(rt, dead, DEAD, -1)
    set_lease(rt, live, "worker-1.force.internal:1:cccccccccccccccc", 60)
    set_lease(rt, ready, DEAD, -1)  # settled since: nothing to do
    set_lease(rt, exhausted, DEAD, -1)
    assert sorted(lease.expired(rt)) == sorted([dead, exhausted])

    assert requeue_stalled(app, rt, 300, set()) == [dead]
    assert queued(app) == [("evidence.hash_original", [dead])]
    # Freed, still naming the dead holder (for its leftovers); not counted until the task runs.
    row = item(rt, dead)
    assert (row.lease_holder, row.lease_expires_at, row.attempts) == (DEAD, None, 1)
    assert (item(rt, exhausted).state, item(rt, exhausted).reason) == (ItemState.FAILED, exhausted_reason(3))
    assert [item(rt, i).lease_holder for i in (live, between_steps)] == [
        "worker-1.force.internal:1:cccccccccccccccc", None]

    # Once per death: the next round finds nothing.
    assert requeue_stalled(app, rt, 300, set()) == []
    assert queued(app) == []

    # The queued first step takes it as a start, naming the dead run so its folders can go.
    run = Lease(dead, "hash_original")
    outcome = lease.claim(rt, run, counts_as_start=True)
    assert (outcome.claim, outcome.holder) == (Claim.TAKEN, DEAD)
    assert item(rt, dead).attempts == 2 and item(rt, dead).lease_holder == run.holder


def test_an_item_the_upkeep_could_not_queue_is_found_again_next_round(
    rt: Runtime, app: EvidenceCelery, make_item: MakeItem
) -> None:
    item_id = make_item(ItemState.PROCESSING, attempts=1)
    set_lease(rt, item_id, DEAD, -1)
    down = make_celery(rt.settings.model_copy(update={"broker_url": f"redis://127.0.0.1:{closed_port()}/0"}))
    down.conf.broker_connection_timeout = 1
    down.conf.broker_connection_max_retries = 0
    down.conf.task_publish_retry = False
    with pytest.raises(Exception):  # noqa: B017 (whatever kombu raises for a refused connection)
        requeue_stalled(down, rt, 300, set())
    row = item(rt, item_id)
    assert row.lease_holder == DEAD and row.lease_expires_at is not None and row.attempts == 1
    # The queue is back: queued now, once.
    assert requeue_stalled(app, rt, 300, set()) == [item_id]
    assert queued(app) == [("evidence.hash_original", [item_id])]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_redelivered_copy_that_came_first_leaves_the_upkeep_nothing(
    rt: Runtime, app: EvidenceCelery, make_item: MakeItem
) -> None:
    item_id = make_item(ItemState.PROCESSING, attempts=1)
    set_lease(rt, item_id, DEAD, -1)
    assert lease.claim(rt, Lease(item_id, PROXY), counts_as_start=False).claim is Claim.TAKEN_OVER
    assert requeue_stalled(app, rt, 300, set()) == []
    assert queued(app) == [] and item(rt, item_id).attempts == 2


def test_at_start_the_embedded_worker_frees_every_lease(rt: Runtime, app: EvidenceCelery, make_item: MakeItem) -> None:
    """The embedded worker stops with its server: at the next start no run can be live."""
    item_id = make_item(ItemState.PROCESSING, attempts=1)
    set_lease(rt, item_id, DEAD, 60)
    assert resume_interrupted(app, rt) == [item_id]
    assert item(rt, item_id).lease_holder is None
    assert lease.claim(rt, Lease(item_id, "hash_original"), counts_as_start=True).claim is Claim.TAKEN


def test_a_dead_runs_working_folders_are_removed_and_no_other(tmp_path: Path) -> None:
    dead_tag, live_tag = fence.tag_of(DEAD), "1111111111111111"
    folders = [tmp_path / f"work-{dead_tag}-x1", tmp_path / f"work-{dead_tag}-x2", tmp_path / f"work-{live_tag}-y"]
    for folder in folders:
        folder.mkdir()
        (folder / "proxy.mp4").write_bytes(b"partial")
    (tmp_path / "work-legacy").mkdir()
    assert lease.remove_work_of(tmp_path, DEAD) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"work-{live_tag}-y", "work-legacy"]


def test_a_runs_working_folder_carries_its_tag(rt: Runtime, make_item: MakeItem) -> None:
    run = Lease(make_item(ItemState.PROCESSING), PROXY)
    assert fence.work_prefix() == "work-"
    with fence.entered(run), pipeline._workdir(rt) as work:
        assert work.name.startswith(f"work-{run.tag}-")
