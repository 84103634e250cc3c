"""Servers for the tus tests, one of each kind per database and store, shared by every
module that asks for them: starting a server and adding users costs seconds, so tests
share them and keep apart by using their own uploads (and their own cases where a test
changes one).

``store`` is the one switch between the file store and the S3 store (a fresh bucket on
the endpoint of tests/support/s3.py). The protocol suite (tests/transfer/protocol/) runs
on both; a module that looks at files pins it with
``pytest.mark.parametrize("store", ["file"], indirect=True)``.

Session scope, not package scope: tests/transfer/protocol/ is a package of its own, and
package-scoped servers would be started again for it. Tests that take the same database
and store are run together, and a server is stopped when the next kind starts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.transfer.site import (
    ADMIN,
    COLLEAGUE,
    EXPIRY_HOURS,
    LEAVER,
    LIFETIME_HOURS,
    LIMIT,
    MOVER,
    OFFICER,
    Site,
    start_site,
)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session", params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def site(database: str, store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    roles = {OFFICER: "officer", COLLEAGUE: "officer", "cps@cps.gov.uk": "reviewer",
             "auditor@force.police.uk": "auditor", LEAVER: "officer", MOVER: "officer", ADMIN: "admin"}
    cases = {"second": [OFFICER], "foreign": [COLLEAGUE], "leaver": [LEAVER], "mover": [MOVER]}
    yield from start_site(tmp_path_factory.mktemp("main"), database, store, {}, roles, cases)


@pytest.fixture(scope="session")
def limited(database: str, store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server with a tiny maximum upload size and uploads that expire in about two seconds."""
    env = {"EVIDENCE_MAX_UPLOAD_SIZE": str(LIMIT), "EVIDENCE_UPLOAD_EXPIRY_HOURS": str(EXPIRY_HOURS)}
    yield from start_site(tmp_path_factory.mktemp("limited"), database, store, env, {OFFICER: "officer"})


@pytest.fixture(scope="session")
def brief(database: str, store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server whose unfinished uploads live at most a few seconds, however busy."""
    env = {"EVIDENCE_UPLOAD_EXPIRY_HOURS": str(EXPIRY_HOURS),
           "EVIDENCE_UPLOAD_MAX_LIFETIME_HOURS": str(LIFETIME_HOURS)}
    yield from start_site(tmp_path_factory.mktemp("brief"), database, store, env, {OFFICER: "officer"})
