"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, as ``make_celery`` sets it
up, polled often enough that a chain of short steps does not wait a second between each one."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import pytest
from kombu.simple import SimpleQueue
from kombu.transport.sqlalchemy import Transport

from evidence.settings import Settings
from transcode.app import declare_queues, make_celery
from transcode.broker import SQLiteTransport
from transcode.steps import INGEST

# kombu's SQLAlchemy transport declares its models with `noload`, deprecated in SQLAlchemy 2.1.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")


def test_the_embedded_app_uses_it(tmp_path: Path) -> None:
    app = make_celery(Settings(data_dir=tmp_path / "data"))
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, SQLiteTransport)
    assert SQLiteTransport.polling_interval < Transport.polling_interval


def test_a_waiting_worker_gets_each_message_within_a_fraction_of_a_second(tmp_path: Path) -> None:
    """What a step waits for its successor on an idle embedded worker: the time from one
    process queueing a message to another connection's blocked consumer holding it."""
    app = make_celery(Settings(data_dir=tmp_path / "data"))
    count = 8
    sent: dict[int, float] = {}
    got: dict[int, float] = {}
    ready = threading.Event()

    def consume() -> None:
        with app.connection_for_read() as connection:
            queue = SimpleQueue(connection, app.amqp.queues[INGEST], no_ack=True)
            try:
                ready.set()
                for _ in range(count):
                    message = queue.get(timeout=30)
                    got[message.payload[0][0]] = time.monotonic()
            finally:
                queue.close()

    consumer = threading.Thread(target=consume)
    consumer.start()
    assert ready.wait(30)
    for n in range(count):
        time.sleep(0.23)  # out of step with the polling, so the waits sample its whole cycle
        sent[n] = time.monotonic()
        app.send_task("evidence.finish_item", args=[n], queue=INGEST)
    consumer.join(60)
    assert sorted(got) == list(range(count))
    waits = [got[n] - sent[n] for n in range(count)]
    # Polled every 0.1 s: about 0.05 s on average. kombu's default (1 s) averages 0.5 s.
    assert statistics.median(waits) < 0.3, waits


def _declare_at_once(data_dir: str, start: float, queues: list[str]) -> str:
    """In a process of its own: wait for the common moment, then declare each queue; the
    error's name if one fails."""
    app = make_celery(Settings(data_dir=Path(data_dir)))
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        time.sleep(max(0.0, start - time.time()))
        try:
            for name in queues:
                channel.queue_declare(name)
        except Exception as error:  # reported to the test, which fails with it
            return f"{type(error).__name__}: {error}"
    return ""


def test_processes_declaring_the_same_new_queues_at_once_all_succeed(tmp_path: Path) -> None:
    """The embedded worker and its beat (two processes) declare the same new queues as they
    start; kombu guards its get-or-create by a lock of one process only, and the loser failed on
    the queue name's UNIQUE constraint, which stopped the worker for good (seen in CI). (The
    server also declares every queue before it starts them: transcode.app.declare_queues.)"""
    import multiprocessing

    data = tmp_path / "data"
    declare_queues(make_celery(Settings(data_dir=data)))  # the broker's tables made, as `evidence serve` does first
    queues = [f"race-{n}" for n in range(30)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        start = time.time() + 3  # every process started and connected by then
        errors = pool.starmap(_declare_at_once, [(str(data), start, queues)] * 4)
    assert errors == ["", "", "", ""]
