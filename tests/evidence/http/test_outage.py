"""Dependencies going down under a real ``evidence serve``: a PostgreSQL restarted, an S3
gateway stopped for ten seconds, a Redis restarted, each during uploads. Every request
meanwhile gets 503 with ``Retry-After`` (never a traceback), ``/readyz`` names what is down,
uploads carry on to the exact bytes once it is back, and nobody has to restart anything.

The databases and the Redis here are the test's own (tests/evidence/http/throwaway.py), the
S3 endpoint is Ceph's gateway behind a proxy the test stops and starts again."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from tests.conftest import s3_env
from tests.evidence.http.throwaway import ThrowawayPostgres, ThrowawayRedis
from tests.support import s3
from tests.support.files import random_file, sha256_of
from tests.support.proxy import Proxy
from tests.support.server import EVIDENCE, Server, sign_in

TUS = {"Tus-Resumable": "1.0.0"}




def readiness(server: Server) -> tuple[int, dict[str, Any]]:
    started = time.monotonic()
    answer = requests.get(f"{server.url}/readyz", timeout=30)
    # Each check has a few seconds at most, and they run at once.
    assert time.monotonic() - started < 6
    return answer.status_code, answer.json()


def states(found: dict[str, Any]) -> dict[str, str]:
    return {name: check["status"] for name, check in found["dependencies"].items()}


def assert_unavailable(answer: requests.Response, dependency: str) -> None:
    assert answer.status_code == 503, (answer.status_code, answer.text[:500])
    assert answer.headers["retry-after"] == "5"
    assert "Traceback" not in answer.text
    if answer.headers.get("content-type", "").startswith("application/json"):
        assert dependency in answer.json()["error"]


def tus_creation(token: str, case: str) -> dict[str, str]:
    return {**TUS, "Authorization": f"Bearer {token}", "Upload-Length": "10",
            "Upload-Metadata": "filename ZS5iaW4=,case " + base64.b64encode(case.encode()).decode()}


class BackgroundUpload:
    """``evidence upload`` in its own process, through a slow proxy so that it is still
    sending when the test takes a dependency away."""

    def __init__(self, server: Server, source: Path, case: str, token: str, rate: float) -> None:
        self.proxy = Proxy("127.0.0.1", server.port, upstream_rate=rate)
        self.proxy.start()
        self.process = subprocess.Popen(
            [EVIDENCE, "upload", str(source), "--case", case, "--server", self.proxy.url, "--token", token,
             "--chunk-size", "5MiB", "--retries", "12"],
            env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_for_bytes(self, count: int) -> None:
        deadline = time.monotonic() + 60
        while self.proxy.upstream_bytes < count:
            assert self.process.poll() is None, self.process.communicate()
            assert time.monotonic() < deadline, "the upload did not get going"
            time.sleep(0.05)

    def result(self) -> str:
        out, err = self.process.communicate(timeout=300)
        assert self.process.returncode == 0, err
        return out

    def __enter__(self) -> BackgroundUpload:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()
        self.proxy.stop()


def test_a_restarted_postgresql_is_503_meanwhile_and_recovered_from_on_the_next_request(
        make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with ThrowawayPostgres() as postgres:
        server = make_server({"EVIDENCE_DATABASE_URL": postgres.url})
        token = server.token()
        case = server.case()
        first = tmp_path / "first.bin"
        random_file(first, 100_000)
        server.cli("upload", str(first), "--case", case, "--server", server.url, "--token", token)
        item_id = server.cli("items", "list", "--case", case, token=token).stdout.split()[0]
        link = server.cli("share", "--case", case, "--to", "cps@cps.gov.uk", "--expires", "1d",
                          "--download", token=token).stdout.strip()
        browser = sign_in(server, token)
        bearer = {"Authorization": f"Bearer {token}"}
        assert readiness(server) == (200, {"status": "ready", "dependencies": {
            "database": {"status": "ok", "reason": None}, "storage": {"status": "ok", "reason": None}}})

        # An upload under way when the database goes: it waits, retries, and finishes.
        source = tmp_path / "CCTV export.bin"
        digest = random_file(source, 24 * 1024 * 1024)
        with BackgroundUpload(server, source, case, token, rate=4e6) as upload:
            upload.wait_for_bytes(6 * 1024 * 1024)
            mark = server.log.stat().st_size
            postgres.stop()
            try:
                api = requests.get(f"{server.url}/api/v1/items/{item_id}", headers=bearer, timeout=30)
                assert_unavailable(api, "database")
                tus = requests.post(f"{server.url}/files/", headers=tus_creation(token, case), timeout=30)
                assert_unavailable(tus, "database")
                assert tus.headers["tus-resumable"] == "1.0.0"
                head = requests.head(f"{server.url}/files/{'0' * 32}", headers={**TUS, **bearer}, timeout=30)
                assert_unavailable(head, "database")
                officer_page = browser.get(f"{server.url}/app/", headers={"Accept": "text/html"}, timeout=30)
                assert_unavailable(officer_page, "database")
                assert "Temporarily unavailable" in officer_page.text
                reviewer = requests.get(link, headers={"Accept": "text/html"}, timeout=30)
                assert_unavailable(reviewer, "database")
                assert "Temporarily unavailable" in reviewer.text
                code, found = readiness(server)
                assert code == 503 and found["status"] == "unavailable"
                assert states(found) == {"database": "unavailable", "storage": "ok"}
                assert found["dependencies"]["database"]["reason"]
                # The upload meets the outage: its PATCHes get 503 and wait.
                deadline = time.monotonic() + 30
                while not re.search(r'"PATCH /files/\w+ HTTP/1.1" 503', server.log.read_bytes()[mark:].decode(errors="replace")):
                    assert time.monotonic() < deadline, "no PATCH of the upload met the outage"
                    time.sleep(0.1)
            finally:
                postgres.start()

            # No operator: the very next request works (the pool replaces the dead connections).
            again = requests.get(f"{server.url}/api/v1/items/{item_id}", headers=bearer, timeout=30)
            assert again.status_code == 200, again.text
            assert readiness(server)[0] == 200
            assert browser.get(f"{server.url}/app/", timeout=30).status_code == 200
            assert requests.get(link, timeout=30).status_code == 200
            new_item, printed = upload.result().split()[:2]
            assert printed == digest
            item = json.loads(server.cli("items", "show", new_item, "--json", token=token).stdout)
            assert item["size"] == source.stat().st_size and item["client_sha256"] == digest
            # Exactly the bytes sent, once; nothing half-written beside them.
            stored = sorted(sha256_of(p) for p in (server.data_dir / "vault" / "originals").iterdir())
            assert stored == sorted([sha256_of(first), digest])
        server.stop()


def test_the_s3_gateway_stopped_for_ten_seconds(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bucket = s3.new_bucket()
    endpoint = bucket.endpoint.removeprefix("http://")
    host, port = endpoint.rsplit(":", 1)
    gateway = Proxy(host, int(port))
    gateway.start()
    try:
        server = make_server(s3_env(bucket, gateway.url))
        token = server.token()
        case = server.case()
        first = tmp_path / "first.bin"
        random_file(first, 100_000)
        item_id = server.cli("upload", str(first), "--case", case, "--server", server.url,
                             "--token", token).stdout.split()[0]
        link = server.cli("share", "--case", case, "--to", "cps@cps.gov.uk", "--expires", "1d",
                          "--download", token=token).stdout.strip()
        assert states(readiness(server)[1]) == {"database": "ok", "storage": "ok"}

        source = tmp_path / "phone extraction.bin"
        digest = random_file(source, 30 * 1024 * 1024)
        with BackgroundUpload(server, source, case, token, rate=4e6) as upload:
            upload.wait_for_bytes(6 * 1024 * 1024)
            gateway.stop()
            stopped = time.monotonic()
            try:
                tus = requests.post(f"{server.url}/files/", headers=tus_creation(token, case), timeout=60)
                assert_unavailable(tus, "storage")
                assert tus.headers["tus-resumable"] == "1.0.0"
                original = f"{link}/items/{item_id}/original"
                download = requests.get(original, timeout=60)
                assert_unavailable(download, "storage")
                page = requests.get(original, headers={"Accept": "text/html"}, timeout=60)
                assert_unavailable(page, "storage")
                assert "Temporarily unavailable" in page.text
                code, found = readiness(server)
                assert code == 503 and states(found) == {"database": "ok", "storage": "unavailable"}
                time.sleep(max(0.0, 10 - (time.monotonic() - stopped)))
            finally:
                gateway.start()

            assert readiness(server)[0] == 200
            whole = requests.get(f"{link}/items/{item_id}/original", timeout=60)
            assert whole.status_code == 200 and whole.content == first.read_bytes()
            new_item, printed = upload.result().split()[:2]
            assert printed == digest
            client = bucket.client()
            listed = client.list_objects_v2(Bucket=bucket.bucket, Prefix="originals/")["Contents"]
            stored = sorted(_sha256(client.get_object(Bucket=bucket.bucket, Key=o["Key"])["Body"]) for o in listed)
            assert stored == sorted([sha256_of(first), digest])
            assert json.loads(server.cli("items", "show", new_item, "--json", token=token).stdout)["client_sha256"] == digest
        server.stop()
    finally:
        gateway.stop()


def test_a_restarted_redis_loses_no_upload(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with ThrowawayRedis() as broker:
        server = make_server({"EVIDENCE_BROKER_URL": broker.url, "EVIDENCE_EMBEDDED_WORKER": "true",
                              "EVIDENCE_REQUEUE_AFTER_SECONDS": "1"})
        token = server.token()
        case = server.case()
        assert states(readiness(server)[1]) == {"database": "ok", "storage": "ok", "broker": "ok"}
        broker.stop()
        code, found = readiness(server)
        assert code == 503 and states(found) == {"database": "ok", "storage": "ok", "broker": "unavailable"}

        # The upload completes though its hand-off to the workers fails: the item is recorded.
        source = tmp_path / "statement.pdf"
        digest = random_file(source, 2 * 1024 * 1024)
        started = time.monotonic()
        mark = server.log.stat().st_size
        item_id = server.cli("upload", str(source), "--case", case, "--server", server.url,
                             "--token", token, timeout=60).stdout.split()[0]
        assert time.monotonic() - started < 30
        item = json.loads(server.cli("items", "show", item_id, "--json", token=token).stdout)
        assert item["state"] == "received" and item["client_sha256"] == digest
        # The upkeep (every 0.5 s here) tries to queue it again meanwhile, and fails.
        deadline = time.monotonic() + 30
        while "background upkeep waits: broker is down" not in server.log.read_bytes()[mark:].decode(errors="replace"):
            assert time.monotonic() < deadline, "the upkeep never tried the queue while it was down"
            time.sleep(0.1)
        broker.start()

        # Nobody restarts anything: the upkeep queues it again and the worker takes it.
        settled = server.settled_item(item_id, timeout=120)
        assert settled["state"] == "ready", settled
        assert settled["hashes"]["sha256"] == digest
        assert readiness(server)[0] == 200
        server.stop()


def _sha256(body: Any) -> str:
    digest = hashlib.sha256()
    while block := body.read(1024 * 1024):
        digest.update(block)
    return digest.hexdigest()
