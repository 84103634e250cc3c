"""`evidence audit fixity` on an S3 vault with Object Lock (Ceph's gateway), read through the
``minio`` SDK: an untouched bucket passes with its retention in place; what Object Lock lets
anyone with the bucket's keys do behind the server's back (write a new version over an original,
hide it behind a delete marker) is caught; what it refuses (deleting the locked version) is
refused by the gateway."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import s3_env
from tests.evidence.fixity.conftest import Stored
from tests.support.files import random_file
from tests.support.s3 import S3Bucket

pytestmark = pytest.mark.s3


@pytest.fixture
def on_s3(make_server, bucket: S3Bucket, tmp_path: Path) -> Stored:  # type: ignore[no-untyped-def]
    server = make_server({**s3_env(bucket), "EVIDENCE_EMBEDDED_WORKER": "true"})
    case = server.case("OP-S3FIX")
    source = tmp_path / "extract.bin"
    random_file(source, 3_000_000, seed=5)
    out = server.cli("upload", str(source), "--case", case, "--server", server.url, "--token", server.token())
    item = out.stdout.split()[0]
    server.settled_item(item)
    return Stored(server, item, item)


def test_an_untouched_bucket_passes_read_by_the_second_client(on_s3: Stored, bucket: S3Bucket) -> None:
    done = on_s3.fixity("--all")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "read with minio-py 7." in done.stdout
    [entry] = on_s3.entries("fixity.checked")
    assert entry.details["reader"].startswith("minio-py ") and entry.details["storage"] == {"backend": "s3"}
    assert entry.details["objects"]["originals"] == 1 and entry.details["objects"]["failed"] == 0
    assert on_s3.item(on_s3.blob)["fixity"]["state"] == "ok"


def test_a_new_version_over_an_original_is_caught_with_its_missing_retention(on_s3: Stored, bucket: S3Bucket) -> None:
    key = on_s3.row(on_s3.blob).storage_key
    client = bucket.client()
    # Object Lock keeps the locked version, but a versioned bucket takes a new one over it:
    # that is what readers (reviewers, tools) now get under the key.
    client.put_object(Bucket=bucket.bucket, Key=key, Body=b"not the footage")
    done = on_s3.fixity("--all")
    assert done.returncode == 1 and f"FAILED {on_s3.blob}" in done.stdout.splitlines()
    found = {e.details["problem"]: e.details for e in on_s3.entries("fixity.failed")}
    assert set(found) == {"differs", "retention shorter than policy"}
    assert found["differs"]["found"] == {"sha256": hashlib.sha256(b"not the footage").hexdigest(), "size": 15}
    assert found["retention shorter than policy"]["found"] == {"mode": "none", "retain_until": None}
    assert found["retention shorter than policy"]["expected"]["mode"] == "COMPLIANCE"
    assert on_s3.item(on_s3.blob)["fixity"]["state"] == "failed"


def test_a_deleted_original_is_missing_and_its_locked_version_cannot_go(on_s3: Stored, bucket: S3Bucket) -> None:
    key = on_s3.row(on_s3.blob).storage_key
    client = bucket.client()
    [locked] = client.list_object_versions(Bucket=bucket.bucket, Prefix=key)["Versions"]
    with pytest.raises(ClientError) as refused:  # compliance retention: not even the bucket's owner
        client.delete_object(Bucket=bucket.bucket, Key=key, VersionId=locked["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    client.delete_object(Bucket=bucket.bucket, Key=key)  # allowed: a delete marker hides it
    done = on_s3.fixity("--all")
    assert done.returncode == 1 and f"FAILED {on_s3.blob}" in done.stdout
    [failed] = on_s3.entries("fixity.failed")
    assert (failed.details["object"], failed.details["problem"]) == ("original", "missing")
