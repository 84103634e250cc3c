"""An S3 endpoint for tests: the one named by EVIDENCE_TEST_S3_ENDPOINT (with
EVIDENCE_TEST_S3_ACCESS_KEY / _SECRET_KEY), else Ceph's RADOS Gateway on a throwaway
single-node cluster (``infra/ceph-s3.sh``), started on first use, once per test process,
and stopped when the process exits (or, if it is killed, by the script's own watcher).

The gateway is a real S3 implementation: it verifies SigV4 signatures and presigned URLs
(expiry included), enforces Object Lock compliance retention and checks ``Content-MD5``. It
does not check ``x-amz-checksum-*`` headers and does not apply Object Lock headers given at
multipart creation: tests must not rely on either.

Where the gateway cannot start (Debian's ceph packages missing, no root to install them),
the S3 tests are skipped with the reason; under CI (``CI=true``) that is a failure instead.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

import boto3
import pytest
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION: Final = "eu-west-2"
SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "ceph-s3.sh"
START_TIMEOUT = 180.0


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class S3Bucket:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str

    def client(self, endpoint: str | None = None, **config: Any) -> S3Client:
        """A client on this bucket's endpoint (or another URL, such as a proxy in front of it)."""
        return make_client(endpoint or self.endpoint, self.access_key, self.secret_key, **config)


def make_client(url: str, access_key: str, secret_key: str, **config: Any) -> S3Client:
    options: dict[str, Any] = {
        "signature_version": "s3v4",
        "s3": {"addressing_style": "path"},
        "retries": {"max_attempts": 3, "mode": "standard"},
        "connect_timeout": 5,
        "read_timeout": 30,
    }
    options.update(config)
    return boto3.session.Session().client(
        "s3", endpoint_url=url, region_name=REGION, aws_access_key_id=access_key,
        aws_secret_access_key=secret_key, config=Config(**options),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class GatewayFailed(RuntimeError):
    pass


class Gateway:
    """A single-node Ceph cluster and its gateway, all state in a temporary folder."""

    def __init__(self, state: Path, endpoint: S3Endpoint) -> None:
        self.state = state
        self.endpoint = endpoint

    @classmethod
    def start(cls, watch_pid: int | None = None) -> Gateway:
        """Starts one; with ``watch_pid``, it also stops by itself once that process ends."""
        state = Path(tempfile.mkdtemp(prefix="evidence-ceph-"))
        command = [str(SCRIPT), "start", str(state)]
        if watch_pid is not None:
            command += ["--watch", str(watch_pid)]
        env = {**os.environ, "PYTHON": sys.executable, "EVIDENCE_TEST_S3_REGION": REGION}
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT, env=env, check=False)
        except subprocess.TimeoutExpired:
            _run_stop(state)
            raise GatewayFailed(f"Ceph's gateway did not start within {START_TIMEOUT:.0f} s") from None
        if done.returncode != 0:
            _run_stop(state)
            raise GatewayFailed(f"Ceph's gateway did not start:\n{done.stderr.strip()}")
        values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
        return cls(
            state,
            S3Endpoint(
                values["EVIDENCE_TEST_S3_ENDPOINT"],
                values["EVIDENCE_TEST_S3_ACCESS_KEY"],
                values["EVIDENCE_TEST_S3_SECRET_KEY"],
            ),
        )

    def stop(self) -> None:
        _run_stop(self.state)


def _run_stop(state: Path) -> None:
    subprocess.run([str(SCRIPT), "stop", str(state)], capture_output=True, timeout=60, check=False)


_endpoint: S3Endpoint | None = None
_failure: str | None = None


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def endpoint() -> S3Endpoint:
    """The session's S3 endpoint, started on first use (skips or fails the test if it cannot be)."""
    global _endpoint, _failure
    if _endpoint is not None:
        return _endpoint
    if _failure is not None:
        _unavailable(_failure)
    url = os.environ.get("EVIDENCE_TEST_S3_ENDPOINT")
    if url:
        _endpoint = S3Endpoint(
            url,
            os.environ.get("EVIDENCE_TEST_S3_ACCESS_KEY", ""),
            os.environ.get("EVIDENCE_TEST_S3_SECRET_KEY", ""),
        )
        return _endpoint
    try:
        try:
            gateway = Gateway.start(watch_pid=os.getpid())
        except GatewayFailed:
            # Once more: its free ports are chosen before they are bound, and another
            # process may have taken one in between.
            gateway = Gateway.start(watch_pid=os.getpid())
    except (GatewayFailed, OSError) as error:
        _failure = f"no S3 endpoint for the tests: {error} (infra/test-services.sh installs Ceph's packages)"
        _unavailable(_failure)
    atexit.register(gateway.stop)
    _endpoint = gateway.endpoint
    return _endpoint


def new_bucket(object_lock: bool = True) -> S3Bucket:
    """A fresh, uniquely named bucket (with Object Lock unless told otherwise)."""
    found = endpoint()
    name = f"evidence-test-{uuid.uuid4().hex[:20]}"
    client = make_client(found.url, found.access_key, found.secret_key)
    try:
        client.create_bucket(
            Bucket=name,
            ObjectLockEnabledForBucket=object_lock,
            CreateBucketConfiguration={"LocationConstraint": REGION},
        )
    finally:
        client.close()
    return S3Bucket(found.url, name, found.access_key, found.secret_key)
