"""Which failures are retried, and how each is told to an officer: real failures from a database,
an S3 endpoint and a socket that cannot be reached (a closed port on this machine), each message
carrying the host it tried, which the plain words must leave out."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from evidence.vault import VaultUnavailable, open_vault
from transcode.errors import NOT_THE_STEPS, TRANSIENT, MediaFailure, describe


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # free again once closed: nothing listens there


def caught(action: Callable[[], object]) -> Exception:
    with pytest.raises(Exception) as failure:  # each test checks what it caught
        action()
    return failure.value


def test_an_unreachable_database_is_retried_and_named_without_its_host() -> None:
    engine = create_engine(f"postgresql+psycopg://evidence:s3cret@127.0.0.1:{closed_port()}/evidence")
    try:
        error = caught(lambda: engine.connect())
    finally:
        engine.dispose()
    assert isinstance(error, OperationalError) and "127.0.0.1" in str(error)
    assert isinstance(error, TRANSIENT)
    assert describe(error) == "the database could not be reached"


def test_unreachable_storage_is_retried_and_named_without_its_endpoint(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    vault = open_vault(
        f"s3://evidence?endpoint_url={endpoint}&region=eu-west-2", retention_days=1, access_key="key",
        secret_key="secret", tmp_dir=tmp_path,
    )
    error = caught(lambda: vault.stat("originals/0123456789abcdef0123456789abcdef"))
    # The vault's own message leaves the endpoint out already (its log has it); the SDK's below does not.
    assert isinstance(error, VaultUnavailable) and endpoint not in str(error)
    assert isinstance(error, TRANSIENT)
    assert describe(error) == "the storage could not be reached"

    # The SDK's own error, where a step calls boto3 outside the vault.
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="eu-west-2", aws_access_key_id="key", aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    error = caught(lambda: client.list_buckets())
    assert isinstance(error, BotoCoreError) and endpoint in str(error)
    assert isinstance(error, TRANSIENT)
    assert describe(error) == "the storage could not be reached"


def test_a_refused_connection_or_a_timeout_is_retried() -> None:
    error = caught(lambda: socket.create_connection(("127.0.0.1", closed_port()), timeout=2))
    assert isinstance(error, ConnectionRefusedError) and isinstance(error, TRANSIENT)
    assert describe(error) == "a connection failed or timed out"
    assert isinstance(TimeoutError("read timed out"), TRANSIENT)
    assert describe(TimeoutError("10.1.2.3 timed out")) == "a connection failed or timed out"


def test_the_file_itself_is_never_retried_and_its_reason_is_told_as_it_is() -> None:
    failure = MediaFailure("no video frame could be decoded (Invalid data found when processing input)")
    assert not isinstance(failure, TRANSIENT) and not isinstance(failure, NOT_THE_STEPS)
    assert describe(failure) == "no video frame could be decoded (Invalid data found when processing input)"


def test_the_time_limit_is_left_to_the_task_and_not_retried() -> None:
    # Retrying a step that ran out of time would only run out of time again.
    limit = SoftTimeLimitExceeded()
    assert isinstance(limit, NOT_THE_STEPS) and not isinstance(limit, TRANSIENT)
    assert describe(limit) == "it took longer than the task time limit"


def test_an_unexpected_error_is_named_by_its_kind_only() -> None:
    error = KeyError("/srv/evidence/vault/originals/0123 codec_context")
    said = describe(error)
    assert said == "an unexpected error (KeyError); the worker's log has the details"
    assert "/srv" not in said and "originals" not in said
    assert not isinstance(error, NOT_THE_STEPS)
