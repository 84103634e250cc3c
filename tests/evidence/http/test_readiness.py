"""/readyz's checks (evidence.http.readiness): run at once, each within its time, each
reported by name with a short reason; and which exceptions mean a dependency is down
(evidence.http.outage), taken from real failed connections."""

from __future__ import annotations

import asyncio
import time

import boto3
import pytest
import redis
from botocore.config import Config
from celery import Celery
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from evidence.http.outage import outage_of
from evidence.http.readiness import check_all
from tests.support.s3 import free_port


def _raise(error: Exception) -> None:
    raise error


def test_checks_run_at_once_and_a_slow_one_is_cut_short() -> None:
    async def timed() -> tuple[float, dict[str, object]]:
        started = time.monotonic()
        found = await check_all({
            "database": lambda: time.sleep(0.5),
            "storage": lambda: time.sleep(4),  # hangs: reported after the timeout, not waited for
            "broker": lambda: _raise(ConnectionRefusedError()),
        }, timeout=1.0)
        return time.monotonic() - started, found.as_json()

    elapsed, found = asyncio.run(timed())
    assert elapsed < 2.5  # not 0.5 + 1 + ...: at once
    assert found == {"status": "unavailable", "dependencies": {
        "database": {"status": "ok", "reason": None},
        "storage": {"status": "unavailable", "reason": "no answer within 1 s"},
        "broker": {"status": "unavailable", "reason": "ConnectionRefusedError"},
    }}


def test_all_ok_is_ready() -> None:
    found = asyncio.run(check_all({"database": lambda: None, "storage": lambda: None}))
    assert found.as_json() == {"status": "ready", "dependencies": {
        "database": {"status": "ok", "reason": None}, "storage": {"status": "ok", "reason": None}}}


def _failure(action: object) -> BaseException:
    with pytest.raises(Exception) as caught:
        action()  # type: ignore[operator]
    return caught.value


def test_refused_connections_name_their_dependency() -> None:
    closed = free_port()  # nothing listens there
    database = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{closed}/x", connect_args={"connect_timeout": 2})
    refused = _failure(database.connect)
    assert outage_of(refused).dependency == "database"  # type: ignore[union-attr]
    try:  # found through what it was raised from, too
        raise RuntimeError("while recording the upload") from refused
    except RuntimeError as wrapped:
        assert outage_of(wrapped).dependency == "database"  # type: ignore[union-attr]
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{closed}", region_name="eu-west-2",
                      aws_access_key_id="x", aws_secret_access_key="y",
                      config=Config(retries={"max_attempts": 1}, connect_timeout=2))
    assert outage_of(_failure(lambda: s3.head_bucket(Bucket="b"))).dependency == "storage"  # type: ignore[union-attr]
    cache = redis.Redis(port=closed, socket_connect_timeout=2)
    assert outage_of(_failure(cache.ping)).dependency == "broker"  # type: ignore[union-attr]
    queue = Celery(broker=f"redis://127.0.0.1:{closed}/0")

    def publish() -> None:
        with queue.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)

    assert outage_of(_failure(publish)).dependency == "broker"  # type: ignore[union-attr]


def test_a_refusal_or_a_bug_is_not_an_outage() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
    with engine.begin() as connection:
        error = _failure(lambda: connection.execute(text("INSERT INTO t VALUES (1)")))
    assert isinstance(error, IntegrityError) and outage_of(error) is None
    assert outage_of(ValueError("x")) is None
    assert outage_of(ConnectionError("a plain one names no dependency")) is None
