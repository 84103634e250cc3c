"""The composition root (evidence.http.app) on a real socket: liveness and readiness, the
one error shape with its RFC 6750 challenge, the documentation pages, and the background
upkeep signing checkpoints with nobody asking."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fastapi import FastAPI

from evidence.custody import ledger
from evidence.http.app import create_app
from evidence.settings import Settings
from tests.support.inprocess import serving


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[FastAPI, str]]:
    app = create_app(Settings(data_dir=tmp_path / "data", checkpoint_interval_seconds=0.2))
    with serving(app) as url:
        yield app, url


def test_alive_and_ready(site: tuple[FastAPI, str]) -> None:
    _, url = site
    assert requests.get(f"{url}/healthz", timeout=10).json() == {"status": "ok"}
    ready = requests.get(f"{url}/readyz", timeout=10)
    # No broker is named (the embedded one is a file of the data dir): two dependencies.
    assert ready.status_code == 200 and ready.json() == {
        "status": "ready",
        "dependencies": {"database": {"status": "ok", "reason": None}, "storage": {"status": "ok", "reason": None}},
    }
    assert ready.headers["cache-control"] == "no-store"


def test_not_ready_when_the_storage_is_gone(site: tuple[FastAPI, str]) -> None:
    app, url = site
    root = Path(app.state.runtime.settings.effective_storage_url.removeprefix("file://"))
    shutil.rmtree(root)
    root.write_bytes(b"")  # a file where the vault's folder should be: it cannot be made again
    try:
        answer = requests.get(f"{url}/readyz", timeout=10)
        assert answer.status_code == 503
        # The dependency and the kind of error only: nothing of paths or hosts.
        assert answer.json() == {
            "status": "unavailable",
            "dependencies": {"database": {"status": "ok", "reason": None},
                             "storage": {"status": "unavailable", "reason": "FileExistsError"}},
        }
        assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
    finally:
        root.unlink()


def test_errors_are_one_shape_and_401_names_its_scheme(site: tuple[FastAPI, str]) -> None:
    _, url = site
    refused = requests.get(f"{url}/api/v1/cases", timeout=10)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="evidence"'
    assert set(refused.json()) == {"error"}
    forged = requests.get(f"{url}/api/v1/cases", headers={"Authorization": "Bearer not-a-token"}, timeout=10)
    assert forged.status_code == 401 and forged.json() == {"error": "invalid token"}


def test_the_documentation_is_served(site: tuple[FastAPI, str]) -> None:
    _, url = site
    docs = requests.get(f"{url}/docs", timeout=10)
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    spec = requests.get(f"{url}/openapi.json", timeout=10).json()
    assert spec["info"] == {"title": "Evidence transfer", "version": "0.1.0"}
    # The reviewer's pages are not part of the API.
    assert not any(path.startswith("/s/") for path in spec["paths"])


def test_checkpoints_are_signed_in_the_background(site: tuple[FastAPI, str]) -> None:
    app, _ = site
    rt = app.state.runtime
    deadline = time.monotonic() + 20
    while True:
        with rt.db.sessions() as session:
            found = ledger.latest_checkpoint(session)
        if found is not None:
            break
        assert time.monotonic() < deadline, "no checkpoint signed"
        time.sleep(0.1)
    assert found.note.startswith(rt.ledger_keys.origin)
