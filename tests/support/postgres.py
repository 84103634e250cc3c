"""Fresh PostgreSQL databases for tests, on the server at 127.0.0.1:5432 (trust auth).

On a machine without that server, tests that need it skip with a loud reason, except
under CI (``CI=true``), where a missing PostgreSQL is a failure.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest

ADMIN_URL = os.environ.get("EVIDENCE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin() -> psycopg.Connection:
    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)


def require_postgres() -> None:
    try:
        _admin().close()
    except psycopg.OperationalError as error:
        message = f"PostgreSQL is not reachable at {ADMIN_URL}: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip("SKIPPING POSTGRES TESTS: " + message)


def create_database() -> str:
    """A new empty database; returns its SQLAlchemy URL."""
    require_postgres()
    name = f"evidence_test_{uuid.uuid4().hex[:16]}"
    with _admin() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with _admin() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
