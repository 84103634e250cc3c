"""An S3 endpoint for tests: the one named by EVIDENCE_TEST_S3_ENDPOINT (with
EVIDENCE_TEST_S3_ACCESS_KEY / _SECRET_KEY), else moto's server started once per test
process on a free port and stopped when the process exits.

moto is a stand-in with known gaps: it does not check presigned signatures or expiry, does
not apply Object Lock headers given at multipart creation, and does not check checksum
headers. Tests must not rely on those behaviours.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

REGION = "eu-west-2"


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

    def client(self, endpoint: str | None = None, **config: Any) -> Any:
        """A client on this bucket's endpoint (or another URL, such as a proxy in front of it)."""
        return make_client(endpoint or self.endpoint, self.access_key, self.secret_key, **config)


def make_client(url: str, access_key: str, secret_key: str, **config: Any) -> Any:
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


def _wait_for(host: str, port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto's server exited with status {process.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto's server did not answer on {host}:{port} within {timeout}s")


class _Moto:
    def __init__(self) -> None:
        port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for("127.0.0.1", port, self.process)
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_endpoint: S3Endpoint | None = None


def endpoint() -> S3Endpoint:
    """The session's S3 endpoint, started on first use."""
    global _endpoint
    if _endpoint is None:
        url = os.environ.get("EVIDENCE_TEST_S3_ENDPOINT")
        if url:
            _endpoint = S3Endpoint(
                url,
                os.environ.get("EVIDENCE_TEST_S3_ACCESS_KEY", ""),
                os.environ.get("EVIDENCE_TEST_S3_SECRET_KEY", ""),
            )
        else:
            moto = _Moto()
            atexit.register(moto.stop)
            # moto accepts any credentials.
            _endpoint = S3Endpoint(moto.url, "testing", "testing")
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
