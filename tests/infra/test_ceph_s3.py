"""infra/ceph-s3.sh, the tests' S3 endpoint: a cluster it starts serves S3 with the keys it
prints, and once stopped (by ``stop``, or by its watcher when the owning process ends)
nothing of it is left running, listening or on disk, so the next test run starts clean."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.support import s3

pytestmark = pytest.mark.s3


def start(watch_pid: int | None = None) -> s3.Gateway:
    if not s3.SCRIPT.exists():
        pytest.fail(f"{s3.SCRIPT} is missing")
    try:
        return s3.Gateway.start(watch_pid)
    except s3.GatewayFailed as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(error))


def daemons(state: Path) -> list[int]:
    """Processes whose command line names this cluster's state folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            zombie = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if str(state).encode() in cmdline and not zombie:
            found.append(int(entry.name))
    return found


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until_gone(state: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while daemons(state) or state.exists():
        assert time.monotonic() < deadline, f"still there after {timeout} s: {daemons(state)}"
        time.sleep(0.2)


def test_a_started_cluster_serves_s3_and_stop_leaves_nothing_behind() -> None:
    gateway = start()
    try:
        port = int(gateway.endpoint.url.rsplit(":", 1)[1])
        assert gateway.endpoint.url == f"http://127.0.0.1:{port}"
        assert len(daemons(gateway.state)) >= 4  # monitor, manager, OSD, gateway
        client = s3.make_client(gateway.endpoint.url, gateway.endpoint.access_key, gateway.endpoint.secret_key)
        client.create_bucket(Bucket="probe", CreateBucketConfiguration={"LocationConstraint": s3.REGION})
        client.put_object(Bucket="probe", Key="k", Body=b"v")
        assert client.get_object(Bucket="probe", Key="k")["Body"].read() == b"v"
        client.close()
        # The keys are this run's own: nothing else gets in.
        stranger = s3.make_client(gateway.endpoint.url, "AKIAEXAMPLE", "not-the-secret", retries={"max_attempts": 1})
        with pytest.raises(ClientError, match=r"InvalidAccessKeyId|AccessDenied|SignatureDoesNotMatch"):
            stranger.list_buckets()
        stranger.close()
    finally:
        gateway.stop()
    assert not gateway.state.exists()
    assert daemons(gateway.state) == []
    assert not listening(port)


def test_the_cluster_stops_by_itself_when_its_owner_ends() -> None:
    owner = subprocess.Popen(["sleep", "600"])
    try:
        gateway = start(watch_pid=owner.pid)
        assert daemons(gateway.state)
    finally:
        owner.kill()
        owner.wait()
    wait_until_gone(gateway.state, timeout=15)
