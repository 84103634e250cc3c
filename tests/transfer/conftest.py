"""Servers for the tus tests, one of each kind per database for the whole package: starting
a server and adding users through the CLI costs seconds, so tests share them and keep
apart by using their own uploads (and their own cases where a test changes one)."""

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


@pytest.fixture(scope="package", params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="package")
def site(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    roles = {OFFICER: "officer", COLLEAGUE: "officer", "cps@cps.gov.uk": "reviewer",
             "auditor@force.police.uk": "auditor", LEAVER: "officer", MOVER: "officer", ADMIN: "admin"}
    cases = {"second": [OFFICER], "foreign": [COLLEAGUE], "leaver": [LEAVER], "mover": [MOVER]}
    yield from start_site(tmp_path_factory.mktemp("main"), database, {}, roles, cases)


@pytest.fixture(scope="package")
def limited(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server with a tiny maximum upload size and uploads that expire in about two seconds."""
    env = {"EVIDENCE_MAX_UPLOAD_SIZE": str(LIMIT), "EVIDENCE_UPLOAD_EXPIRY_HOURS": str(EXPIRY_HOURS)}
    yield from start_site(tmp_path_factory.mktemp("limited"), database, env, {OFFICER: "officer"})


@pytest.fixture(scope="package")
def brief(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server whose unfinished uploads live at most a few seconds, however busy."""
    env = {"EVIDENCE_UPLOAD_EXPIRY_HOURS": str(EXPIRY_HOURS),
           "EVIDENCE_UPLOAD_MAX_LIFETIME_HOURS": str(LIFETIME_HOURS)}
    yield from start_site(tmp_path_factory.mktemp("brief"), database, env, {OFFICER: "officer"})
