"""What the storage itself guarantees, tried for real against the S3 endpoint (Ceph's
gateway unless EVIDENCE_TEST_S3_ENDPOINT names another): nobody holding the bucket's keys
can shorten or lift a sealed original's retention, delete its locked version or change its
bytes; presigned URLs stop working when they expire or are altered; a body that does not
match its Content-MD5 is not stored.

Each refusal is paired with the same request done properly, which succeeds: a test fails on a
store that lets the forbidden request through, not merely on one that refuses everything.
(moto's server, the stand-in these tests once ran on, fails the presigned URL tests.)
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import botocore.auth
import pytest
import requests
from botocore.exceptions import ClientError

from evidence.vault.s3 import S3Vault
from tests.evidence.vault.conftest import put_original

pytestmark = pytest.mark.s3

KEY = "originals/item-1/interview.mp4"
FOOTAGE = b"the original footage"


def refused(call: Callable[[], Any]) -> str:
    """The error code S3 answered ``call`` with; fails the test if it was allowed."""
    try:
        call()
    except ClientError as error:
        status = error.response["ResponseMetadata"]["HTTPStatusCode"]
        assert 400 <= status < 500, error
        return str(error.response["Error"]["Code"])
    raise AssertionError("the storage allowed it")


@pytest.fixture
def sealed(s3_vault: S3Vault) -> tuple[S3Vault, str, datetime]:
    """An original sealed by the vault: its version id and retain-until date."""
    put_original(s3_vault, KEY, FOOTAGE)
    s3_vault.seal(KEY)
    head = s3_vault.client.head_object(Bucket=s3_vault.bucket, Key=KEY)
    return s3_vault, head["VersionId"], head["ObjectLockRetainUntilDate"]


def assert_intact(vault: S3Vault, version: str, until: datetime) -> None:
    head = vault.client.head_object(Bucket=vault.bucket, Key=KEY, VersionId=version)
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("COMPLIANCE", until)
    body = vault.client.get_object(Bucket=vault.bucket, Key=KEY, VersionId=version)["Body"].read()
    assert body == FOOTAGE


# --- compliance retention -------------------------------------------------------------------


def test_a_compliance_retention_cannot_be_shortened(sealed: tuple[S3Vault, str, datetime]) -> None:
    vault, version, until = sealed
    for earlier in (until - timedelta(days=1), datetime.now(UTC) + timedelta(seconds=30)):
        assert refused(partial(
            vault.client.put_object_retention, Bucket=vault.bucket, Key=KEY, VersionId=version,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": earlier},
        )) == "AccessDenied"
    assert_intact(vault, version, until)
    # Lengthening it is allowed: the refusal above is about shortening, nothing else.
    later = until + timedelta(days=1)
    vault.client.put_object_retention(
        Bucket=vault.bucket, Key=KEY, VersionId=version, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later}
    )
    assert_intact(vault, version, later)


def test_a_compliance_retention_cannot_be_removed(sealed: tuple[S3Vault, str, datetime]) -> None:
    vault, version, until = sealed
    # Governance mode is the one a privileged user may lift: turning compliance into it,
    # with or without the bypass header, is refused, as is setting no retention at all.
    for bypass in (False, True):
        assert refused(partial(
            vault.client.put_object_retention, Bucket=vault.bucket, Key=KEY, VersionId=version,
            BypassGovernanceRetention=bypass, Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until},
        )) == "AccessDenied"
        refused(partial(
            vault.client.put_object_retention, Bucket=vault.bucket, Key=KEY, VersionId=version,
            BypassGovernanceRetention=bypass, Retention={},
        ))
    assert_intact(vault, version, until)


# --- locked versions ------------------------------------------------------------------------


def test_a_locked_version_cannot_be_deleted(sealed: tuple[S3Vault, str, datetime]) -> None:
    vault, version, until = sealed
    for bypass in (False, True):
        assert refused(partial(
            vault.client.delete_object, Bucket=vault.bucket, Key=KEY, VersionId=version,
            BypassGovernanceRetention=bypass,
        )) == "AccessDenied"
    batch = vault.client.delete_objects(Bucket=vault.bucket, Delete={"Objects": [{"Key": KEY, "VersionId": version}]})
    assert [error["Code"] for error in batch.get("Errors", [])] == ["AccessDenied"] and not batch.get("Deleted")
    assert_intact(vault, version, until)
    # The same deletion of a version nobody locked goes through.
    put_original(vault, "derivatives/item-1/poster.jpg", b"poster")
    unlocked = vault.client.head_object(Bucket=vault.bucket, Key="derivatives/item-1/poster.jpg")["VersionId"]
    vault.client.delete_object(Bucket=vault.bucket, Key="derivatives/item-1/poster.jpg", VersionId=unlocked)
    assert vault.stat("derivatives/item-1/poster.jpg") is None


def test_a_locked_version_cannot_be_overwritten_in_place(sealed: tuple[S3Vault, str, datetime]) -> None:
    vault, version, until = sealed
    # A PUT to the key, or a delete without a version, is not refused: S3 adds a new
    # version (or a delete marker) on top. The locked version underneath stays as it was.
    forged = vault.client.put_object(Bucket=vault.bucket, Key=KEY, Body=b"forged footage")["VersionId"]
    marker = vault.client.delete_object(Bucket=vault.bucket, Key=KEY)
    assert forged != version and marker.get("DeleteMarker")
    assert_intact(vault, version, until)
    versions = vault.client.list_object_versions(Bucket=vault.bucket, Prefix=KEY)
    assert {entry["VersionId"] for entry in versions["Versions"]} == {version, forged}


# --- presigned URLs -------------------------------------------------------------------------


def presign(vault: S3Vault, key: str, expires: int, signed_at: datetime | None = None) -> str:
    """A presigned GET for ``key``, as if signed at ``signed_at`` (now unless given)."""
    with pytest.MonkeyPatch.context() as patch:
        if signed_at is not None:
            moment = signed_at.astimezone(UTC).replace(tzinfo=None)
            patch.setattr(botocore.auth, "get_current_datetime", lambda *_, **__: moment)
        return str(vault.client.generate_presigned_url(
            "get_object", Params={"Bucket": vault.bucket, "Key": key}, ExpiresIn=expires
        ))


def changed(url: str, **query: str) -> str:
    parts = urlsplit(url)
    fields = dict(parse_qsl(parts.query, keep_blank_values=True))
    fields.update(query)
    return urlunsplit(parts._replace(query=urlencode(fields)))


def fetch(url: str) -> requests.Response:
    return requests.get(url, timeout=10)


def test_an_expired_presigned_url_is_refused(s3_vault: S3Vault) -> None:
    put_original(s3_vault, KEY, FOOTAGE)
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    still_valid = presign(s3_vault, KEY, 3 * 3600, two_hours_ago)
    expired = presign(s3_vault, KEY, 3600, two_hours_ago)
    assert fetch(still_valid).content == FOOTAGE  # the signing time is honoured as given
    answer = fetch(expired)
    assert answer.status_code == 403 and FOOTAGE not in answer.content


def test_a_tampered_presigned_url_is_refused(s3_vault: S3Vault) -> None:
    put_original(s3_vault, KEY, FOOTAGE)
    put_original(s3_vault, "originals/item-2/other.mp4", b"another item")
    url = presign(s3_vault, KEY, 600)
    assert fetch(url).content == FOOTAGE
    signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    tampered = {
        "another key": url.replace("/originals/item-1/interview.mp4?", "/originals/item-2/other.mp4?"),
        "another signature": changed(url, **{"X-Amz-Signature": flipped}),
        "a longer life": changed(url, **{"X-Amz-Expires": "604800"}),
        "an added parameter": changed(url, **{"response-content-type": "text/html"}),
        "no signature": url.replace(f"&X-Amz-Signature={signature}", ""),
    }
    for what, bad in tampered.items():
        assert bad != url, what
        answer = fetch(bad)
        assert answer.status_code == 403, f"{what}: {answer.status_code}"
        assert FOOTAGE not in answer.content and b"another item" not in answer.content, what
    # Another method with the GET's signature (a PUT over the original) is refused too.
    assert requests.put(url, data=b"forged", timeout=10).status_code == 403
    assert fetch(url).content == FOOTAGE


# --- Content-MD5 ----------------------------------------------------------------------------


def md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 -- what Content-MD5 is


def test_a_wrong_content_md5_is_refused(s3_vault: S3Vault) -> None:
    client, bucket = s3_vault.client, s3_vault.bucket
    key = "derivatives/item-1/manifest.json"
    assert refused(lambda: client.put_object(
        Bucket=bucket, Key=key, Body=b"bytes damaged on the way", ContentMD5=md5(b"bytes as sent")
    )) == "BadDigest"
    assert s3_vault.stat(key) is None
    client.put_object(Bucket=bucket, Key=key, Body=b"bytes as sent", ContentMD5=md5(b"bytes as sent"))
    with s3_vault.open(key) as stream:
        assert stream.read() == b"bytes as sent"


def test_a_part_with_a_wrong_content_md5_is_refused(s3_vault: S3Vault) -> None:
    client, bucket = s3_vault.client, s3_vault.bucket
    key = "originals/item-3/extract.zip"
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = b"part one" * 1000
    assert refused(lambda: client.upload_part(
        Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=part[:-1] + b"X", ContentMD5=md5(part)
    )) == "BadDigest"
    assert client.list_parts(Bucket=bucket, Key=key, UploadId=upload).get("Parts", []) == []
    client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=part, ContentMD5=md5(part))
    assert len(client.list_parts(Bucket=bucket, Key=key, UploadId=upload)["Parts"]) == 1
    client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
