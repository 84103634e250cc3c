"""PostgreSQL restarted, Redis restarted, the S3 gateway stopped for 10 s: each while officers
upload and workers process. Meanwhile requests fail cleanly (503 with Retry-After, never a
500 or a hang), ``/readyz`` names what is down, and nothing half-written is reported
complete. Afterwards everything recovers without an operator."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import pytest
import requests

from tests.support.media import make_clip
from tests.support.topology import Topology
from tests.topology.clients import MiB, assert_recovered, random_file, upload_many, wait_until
from tests.topology.readiness import DEPENDENCIES, down, readyz

RATE = 512 * 1024  # per upload: each of them takes about eight seconds without the outage


def _outage(topology: Topology, dependency: str) -> tuple[Callable[[], None], Callable[[], None], float]:
    """(take it down, bring it back, seconds down) for one dependency."""
    if dependency == "database":
        return topology.postgres.stop, lambda: topology.postgres.start(topology.postgres_ready, 60), 5
    if dependency == "broker":
        return topology.redis.stop, lambda: topology.redis.start(topology.redis_ready, 30), 5
    return topology.stop_gateway, topology.start_gateway, 10


def _create_upload(topology: Topology) -> requests.Response:
    metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}"
                        for k, v in {"filename": "during.bin", "case": topology.case}.items())
    return requests.post(f"{topology.url}/files/", timeout=60, headers={
        "Authorization": f"Bearer {topology.officer}", "Tus-Resumable": "1.0.0",
        "Upload-Length": str(MiB), "Upload-Metadata": metadata,
    })


@pytest.mark.parametrize("dependency", DEPENDENCIES)
def test_a_dependency_down_during_uploads_and_processing(topology: Topology, sources: Path, dependency: str) -> None:
    take_down, bring_back, seconds = _outage(topology, dependency)
    # Processing under way: a clip whose working copies take a few seconds to make.
    clip = make_clip(sources / f"cam {dependency}.avi", 4)
    out = topology.cli("upload", str(clip), "--case", topology.case, "--server", topology.url,
                       "--token", topology.officer).stdout
    [clip_item] = [line.split()[0] for line in out.splitlines()]
    files = [random_file(sources, f"{dependency}-{n}.bin", 4 * MiB) for n in range(6)]
    seen: dict[str, object] = {}

    def outage(futures: list[Future[str]]) -> None:
        time.sleep(1.5)
        assert not any(future.done() for future in futures), "an upload ended before the outage"
        take_down()
        began = time.monotonic()
        try:
            wait_until(f"/readyz to report the {dependency} down",
                       lambda: _reports_down(topology, dependency, seen), timeout=seconds)
            if dependency != "broker":  # storing an upload needs the database and the storage, not the queue
                refused = _create_upload(topology)
                seen["create"] = (refused.status_code, refused.headers.get("Retry-After"), refused.text)
            if dependency == "database":  # and so does every API answer
                listed = requests.get(f"{topology.url}/api/v1/items?case={topology.case}", timeout=60,
                                      headers={"Authorization": f"Bearer {topology.officer}"})
                seen["list"] = (listed.status_code, listed.headers.get("Retry-After"), listed.text)
            time.sleep(max(0.0, seconds - (time.monotonic() - began)))
        finally:
            bring_back()

    uploaded = upload_many(topology, files, RATE, outage)
    status, body = seen["readyz"]  # type: ignore[misc]
    assert status == 503 and down(body) == {dependency}, (status, body)
    if dependency != "broker":
        status, retry_after, text = seen["create"]  # type: ignore[misc]
        assert status == 503 and retry_after and int(retry_after) > 0, (status, retry_after, text)
    if dependency == "database":
        status, retry_after, text = seen["list"]  # type: ignore[misc]
        assert status == 503 and retry_after and int(retry_after) > 0, (status, retry_after, text)
    wait_until("/readyz to report ready again", lambda: readyz(topology.url)[0] == 200, timeout=60)
    uploaded[clip] = clip_item
    assert_recovered(topology, uploaded, timeout=240)


def _reports_down(topology: Topology, dependency: str, seen: dict[str, object]) -> bool:
    status, body = readyz(topology.url)
    seen["readyz"] = (status, body)
    return status == 503 and dependency in down(body)
