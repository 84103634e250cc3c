"""The Celery app factory and what the server asks of it: the configuration Celery's guidance
calls for, the first step queued on the real embedded broker, stalled and interrupted items queued
again (once, and never past their attempts), and abandoned working folders swept."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from evidence.custody.actions import Action
from evidence.models import ItemState, utcnow
from evidence.runtime import Runtime
from evidence.settings import Settings
from tests.transcode.conftest import MakeItem, actions, item, queued
from transcode.app import (
    FIXITY_QUEUE,
    FIXITY_TASK,
    EvidenceCelery,
    make_celery,
    requeue_stalled,
    resume_interrupted,
    start_pipeline,
    sweep_work_dirs,
)
from transcode.attempts import exhausted_reason
from transcode.steps import INGEST, TRANSCODE

# kombu's SQLAlchemy transport declares its models with `noload`, deprecated in SQLAlchemy 2.1.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")


def test_configured_for_work_that_must_be_neither_lost_nor_done_twice(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/13", task_time_limit_seconds=3600,
        broker_visibility_timeout_seconds=7200, worker_concurrency=3,
    )
    conf = make_celery(settings).conf
    assert conf.broker_url == "redis://127.0.0.1:6379/13"
    assert [queue.name for queue in conf.task_queues] == [INGEST, TRANSCODE, FIXITY_QUEUE]
    assert conf.task_default_queue == INGEST
    assert conf.task_routes["evidence.make_proxy"] == {"queue": TRANSCODE}
    assert conf.task_routes["evidence.hash_original"] == {"queue": INGEST}
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.task_acks_on_failure_or_timeout
    assert conf.worker_prefetch_multiplier == 1
    assert (conf.task_time_limit, conf.task_soft_time_limit) == (3600, 3540)
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.worker_concurrency == 3
    assert conf.broker_transport_options == {
        "visibility_timeout": 7200, "unacked_restore_interval": 10, "unacked_restore_throttle": 1,
    }
    assert conf.include == ["transcode.tasks", "transcode.audits"]
    # The fixity audit: its own queue, sent by beat every interval, dropped if it waited longer.
    assert conf.task_routes[FIXITY_TASK] == {"queue": FIXITY_QUEUE}
    assert conf.beat_schedule["fixity-audit"] == {"task": FIXITY_TASK, "schedule": 3600,
                                                  "options": {"expires": 3600}}
    assert conf.beat_schedule_filename == str(tmp_path.resolve() / "celerybeat-schedule")


def test_a_short_visibility_timeout_is_looked_after_often_and_a_short_limit_keeps_a_soft_one(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/13", task_time_limit_seconds=60,
        broker_visibility_timeout_seconds=3,
    )
    conf = make_celery(settings).conf
    assert conf.broker_transport_options["unacked_restore_interval"] == 1
    assert (conf.task_time_limit, conf.task_soft_time_limit) == (60, 30)


def test_the_embedded_broker_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "not-yet"
    conf = make_celery(Settings(data_dir=data)).conf
    assert data.is_dir()
    assert conf.broker_url == f"sqlite:///{data / 'broker.db'}"
    assert conf.broker_transport == "transcode.broker:SQLiteTransport"
    # kombu hands these to create_engine: engine options only, a lock waited for.
    assert conf.broker_transport_options == {"connect_args": {"timeout": 30}}


def test_the_app_builds_its_runtime_once_per_process(app: EvidenceCelery) -> None:
    first = app.runtime()
    assert app.runtime() is first
    assert first.settings is app.settings


def test_starting_the_pipeline_queues_the_first_step(app: EvidenceCelery) -> None:
    start_pipeline(app, "0123456789abcdef0123456789abcdef")
    start_pipeline(app, "0123456789abcdef0123456789abcdef")  # twice is harmless: the step is idempotent
    assert queued(app) == [("evidence.hash_original", ["0123456789abcdef0123456789abcdef"])] * 2
    assert queued(app, TRANSCODE) == []


def test_items_received_long_ago_are_queued_again_once(rt: Runtime, app: EvidenceCelery, make_item: MakeItem) -> None:
    long_ago = utcnow() - timedelta(minutes=10)
    lost = make_item(created_at=long_ago)
    just_now = make_item()
    being_hashed = make_item(created_at=long_ago, progress=12.5)
    processing = make_item(ItemState.PROCESSING, created_at=long_ago)
    started_too_often = make_item(created_at=long_ago, attempts=rt.settings.max_processing_attempts)
    done: set[str] = set()

    assert requeue_stalled(app, rt, 300, done) == [lost]
    assert queued(app) == [("evidence.hash_original", [lost])]
    assert item(rt, started_too_often).state == ItemState.FAILED
    assert item(rt, started_too_often).reason == exhausted_reason(rt.settings.max_processing_attempts)
    assert actions(rt, started_too_often) == [Action.ITEM_FAILED]
    untouched = (just_now, being_hashed, processing)
    assert [item(rt, i).state for i in untouched] == [ItemState.RECEIVED, ItemState.RECEIVED, ItemState.PROCESSING]
    assert [actions(rt, i) for i in untouched] == [[], [], []]

    # Behind a long backlog an item waits in `received` too: asking again queues nothing more.
    assert requeue_stalled(app, rt, 300, done) == []
    assert queued(app) == []
    assert lost in done and just_now not in done


def test_at_start_every_item_left_midway_is_queued_again(rt: Runtime, app: EvidenceCelery, make_item: MakeItem) -> None:
    received = make_item()
    processing = make_item(ItemState.PROCESSING, attempts=1)
    ready = make_item(ItemState.READY)
    quarantined = make_item(ItemState.QUARANTINED)
    interrupted_every_time = make_item(ItemState.PROCESSING, attempts=rt.settings.max_processing_attempts)

    assert sorted(resume_interrupted(app, rt)) == sorted([received, processing])
    assert sorted(queued(app)) == sorted([("evidence.hash_original", [received]), ("evidence.hash_original", [processing])])
    assert item(rt, interrupted_every_time).state == ItemState.FAILED
    assert [item(rt, i).state for i in (ready, quarantined)] == [ItemState.READY, ItemState.QUARANTINED]
    # Queuing is not starting: the start is counted when the task runs.
    assert item(rt, processing).attempts == 1


def test_working_folders_of_killed_attempts_are_swept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", task_time_limit_seconds=3600)
    scratch = settings.effective_tmp_dir
    scratch.mkdir(parents=True)
    old = time.time() - 3600 - 60
    abandoned, live, other, a_file = scratch / "work-abc", scratch / "work-def", scratch / "uploads", scratch / "work-x"
    for folder in (abandoned, live, other):
        folder.mkdir()
        (folder / "proxy.mp4").write_bytes(b"partial")
    a_file.write_bytes(b"not a folder")
    for path in (abandoned, other, a_file):
        os.utime(path, (old, old))

    assert sweep_work_dirs(settings) == 1
    assert not abandoned.exists()
    assert live.exists() and other.exists() and a_file.exists()
    assert sweep_work_dirs(settings) == 0
