"""Fixtures shared by the whole suite: databases, S3 buckets and running servers."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

from tests.support import postgres, s3
from tests.support.server import Server

# Hypothesis profiles, for every property-based test. ``ci`` (the default) is reproducible:
# examples are derived from each test's own source (``derandomize``), nothing is read from
# or written to an example database, and there is no per-example deadline (the machine is
# shared; a slow example is not a failure). ``explore`` is for a person hunting for new
# failures: a fresh random seed on every run. Choose with ``HYPOTHESIS_PROFILE=explore``.
# Hypothesis keeps caches (Unicode tables) under ./.hypothesis by default: keep the working
# tree clean.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "evidence-fuzz-hypothesis")

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore",
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each database test runs on SQLite (the embedded mode) and on PostgreSQL."""
    if request.param == "sqlite":
        yield ""  # the default: a file in the data dir
        return
    url = postgres.create_database()
    try:
        yield url
    finally:
        postgres.drop_database(url)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = postgres.create_database()
    try:
        yield url
    finally:
        postgres.drop_database(url)


@pytest.fixture
def bucket() -> s3.S3Bucket:
    return s3.new_bucket()


def s3_env(found: s3.S3Bucket, endpoint: str | None = None) -> dict[str, str]:
    return {
        "EVIDENCE_STORAGE_URL": f"s3://{found.bucket}?endpoint_url={endpoint or found.endpoint}&region={s3.REGION}",
        "EVIDENCE_S3_ACCESS_KEY": found.access_key,
        "EVIDENCE_S3_SECRET_KEY": found.secret_key,
    }


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    """Start servers with given settings; all are stopped at the end of the test."""
    started: list[Server] = []

    def make(env: dict[str, str] | None = None, root: Path | None = None, start: bool = True) -> Server:
        server = Server(root or tmp_path, env)
        started.append(server)
        return server.start() if start else server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server, database_url: str) -> Server:  # type: ignore[no-untyped-def]
    """A server on the local file store, on SQLite and on PostgreSQL."""
    return make_server({"EVIDENCE_DATABASE_URL": database_url} if database_url else {})
