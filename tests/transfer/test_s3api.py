"""transfer.s3api.BotoS3: the narrow S3 interface of the S3 store, against a real S3
endpoint (tests/support/s3.py): each call does what the store relies on, and every
failure comes out as one of the two errors the store handles."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from tests.support.proxy import Proxy
from tests.support.s3 import S3Bucket, free_port, make_client, new_bucket
from transfer.s3api import BotoS3, NoSuchUpload, Part, S3Unavailable

pytestmark = pytest.mark.s3

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def bucket() -> S3Bucket:
    return new_bucket()


@pytest.fixture(scope="module")
def api(bucket: S3Bucket) -> Iterator[BotoS3]:
    client = bucket.client()
    yield BotoS3(client, bucket.bucket)
    client.close()


def read(api: BotoS3, key: str, length: int | None = None) -> bytes:
    body = api.get_object(key, length)
    try:
        return body.read()
    finally:
        body.close()


def test_objects_are_put_sized_read_and_listed(api: BotoS3) -> None:
    api.put_object("objects/a", b"hello world", 11)
    api.put_object("objects/b", io.BytesIO(b"xyz"), 3)
    assert api.head_object("objects/a") == 11
    assert api.head_object("objects/missing") is None
    assert read(api, "objects/a") == b"hello world"
    assert read(api, "objects/a", 5) == b"hello"  # the first bytes only: a pending object's prefix
    assert sorted(api.list_keys("objects/")) == ["objects/a", "objects/b"]
    api.delete_object("objects/b")
    assert api.list_keys("objects/") == ["objects/a"]


def test_a_multipart_upload_is_made_of_its_parts(api: BotoS3) -> None:
    upload_id = api.create_multipart_upload("multi/object")
    assert [(s.key, s.upload_id) for s in api.list_multipart_uploads("multi/")] == [("multi/object", upload_id)]
    first = api.upload_part("multi/object", upload_id, 1, io.BytesIO(b"a" * 5 * MiB), 5 * MiB)
    last = api.upload_part("multi/object", upload_id, 2, io.BytesIO(b"b" * 10), 10)
    assert first["etag"] and last["etag"]
    parts = [Part(n=1, size=5 * MiB, **first), Part(n=2, size=10, **last)]
    api.complete_multipart_upload("multi/object", upload_id, parts)
    assert api.head_object("multi/object") == 5 * MiB + 10
    assert read(api, "multi/object")[-11:] == b"a" + b"b" * 10
    assert api.list_multipart_uploads("multi/") == []
    # The same completion again (its first answer was lost): S3 and Ceph's gateway answer
    # it again; an implementation that says NoSuchUpload instead makes the store look at
    # the object. Either way, no error the store would give up on.
    try:
        api.complete_multipart_upload("multi/object", upload_id, parts)
    except NoSuchUpload:
        pass
    with pytest.raises(NoSuchUpload):
        api.abort_multipart_upload("multi/object", upload_id)


def test_deleting_versions_takes_every_version_of_that_key_alone(api: BotoS3, bucket: S3Bucket) -> None:
    for content in (b"one", b"two"):
        api.put_object("versions/p1", content, 3)
    api.put_object("versions/p10", b"neighbour", 9)  # shares the prefix: must stay
    api.delete_versions("versions/p1")
    client = bucket.client()
    try:
        listed = client.list_object_versions(Bucket=bucket.bucket, Prefix="versions/")
    finally:
        client.close()
    left = {entry["Key"] for entry in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]}
    assert left == {"versions/p10"}


def test_a_refusal_and_an_unreachable_endpoint_are_both_unavailable(bucket: S3Bucket) -> None:
    client = bucket.client()
    try:
        with pytest.raises(S3Unavailable, match="refused"):
            BotoS3(client, "no-such-bucket-" + bucket.bucket[-12:]).put_object("k", b"x", 1)
    finally:
        client.close()
    nowhere = make_client(f"http://127.0.0.1:{free_port()}", bucket.access_key, bucket.secret_key,
                          retries={"max_attempts": 1}, connect_timeout=1)
    try:
        with pytest.raises(S3Unavailable, match="unreachable"):
            BotoS3(nowhere, bucket.bucket).head_object("k")
        body_error = BotoS3(nowhere, bucket.bucket)
        with pytest.raises(S3Unavailable):
            body_error.get_object("k")
    finally:
        nowhere.close()


def test_a_part_damaged_on_the_way_is_refused_not_stored(bucket: S3Bucket) -> None:
    """A byte changed in transit makes the part refused, so an upload cannot complete with
    it. Over plain HTTP the request's SigV4 signature covers the payload's SHA-256, which the
    gateway checks (it checks no x-amz-checksum-* header); over HTTPS, TLS does the same."""
    host, port = bucket.endpoint.removeprefix("http://").rsplit(":", 1)
    with Proxy(host, int(port), flip_byte_at=3 * MiB) as proxy:
        client = bucket.client(proxy.url, retries={"max_attempts": 1, "mode": "standard"})
        try:
            api = BotoS3(client, bucket.bucket)
            upload_id = api.create_multipart_upload("damaged/object")
            with pytest.raises(S3Unavailable):
                api.upload_part("damaged/object", upload_id, 1, io.BytesIO(b"c" * 5 * MiB), 5 * MiB)
            api.abort_multipart_upload("damaged/object", upload_id)
        finally:
            client.close()
    assert BotoS3(bucket.client(), bucket.bucket).head_object("damaged/object") is None
