"""The S3 operations the S3 tus store makes, behind the narrowest interface it calls,
so a fake or a logging wrapper can stand in; and that interface on boto3."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Protocol, TypedDict

from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3Error


class S3Unavailable(Exception):
    """S3 could not be reached or refused the request."""


class NoSuchUpload(Exception):
    """The multipart upload is gone (completed or aborted)."""


class Body(Protocol):
    def read(self, size: int = -1) -> bytes: ...

    def close(self) -> None: ...


class UploadedPart(TypedDict):
    """What S3 answers for a part: its ETag, and its SHA-256 (base64) where S3 gives one."""

    etag: str
    sha256: str | None


class Part(UploadedPart):
    """A part of a multipart upload as the store records it (JSON in its state)."""

    n: int
    size: int


@dataclass(frozen=True)
class StaleUpload:
    key: str
    upload_id: str
    initiated: datetime


class S3Api(Protocol):
    """Exactly the S3 calls the store makes, so a fake or a logging wrapper can stand in.
    Every method raises :class:`S3Unavailable` on any failure not named below."""

    def create_multipart_upload(self, key: str) -> str: ...

    def upload_part(self, key: str, upload_id: str, number: int, body: IO[bytes], length: int) -> UploadedPart: ...

    def complete_multipart_upload(self, key: str, upload_id: str, parts: list[Part]) -> None:
        """Raises :class:`NoSuchUpload`."""

    def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        """Raises :class:`NoSuchUpload`."""

    def list_multipart_uploads(self, prefix: str) -> list[StaleUpload]: ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def put_object(self, key: str, body: IO[bytes] | bytes, length: int) -> None: ...

    def get_object(self, key: str, length: int | None = None) -> Body:
        """The object's first ``length`` bytes (all of it when ``None``), streamed."""

    def head_object(self, key: str) -> int | None:
        """The object's size, or ``None`` when it does not exist."""

    def delete_object(self, key: str) -> None: ...

    def delete_versions(self, key: str) -> None:
        """Delete every version of ``key`` (and its delete markers): in a versioned bucket,
        as Object Lock buckets are, a plain DELETE only hides the bytes. S3 refuses for a
        version under retention."""


@contextmanager
def _s3_errors() -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchUpload":
            raise NoSuchUpload(str(exc)) from exc
        raise S3Unavailable(f"S3 refused the request: {exc}") from exc
    except (BotoCoreError, Urllib3Error, OSError) as exc:
        raise S3Unavailable(f"S3 is unreachable: {exc}") from exc


class _BotoBody:
    """A streamed object body whose read errors come out as :class:`S3Unavailable`."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        with _s3_errors():
            return bytes(self._stream.read(None if size < 0 else size))

    def close(self) -> None:
        self._stream.close()


class BotoS3:
    """:class:`S3Api` on a boto3 S3 client and one bucket."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def create_multipart_upload(self, key: str) -> str:
        # SHA-256 per part: S3 checks every part we send against our hash.
        with _s3_errors():
            reply = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256"
            )
        return str(reply["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, body: IO[bytes], length: int) -> UploadedPart:
        with _s3_errors():
            reply = self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                Body=body, ContentLength=length, ChecksumAlgorithm="SHA256",
            )
        return {"etag": str(reply["ETag"]), "sha256": reply.get("ChecksumSHA256")}

    def complete_multipart_upload(self, key: str, upload_id: str, parts: list[Part]) -> None:
        listed: list[dict[str, Any]] = []
        for part in parts:
            entry = {"PartNumber": part["n"], "ETag": part["etag"]}
            if part.get("sha256"):
                entry["ChecksumSHA256"] = part["sha256"]
            listed.append(entry)
        with _s3_errors():
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed}
            )

    def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        with _s3_errors():
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def list_multipart_uploads(self, prefix: str) -> list[StaleUpload]:
        found: list[StaleUpload] = []
        with _s3_errors():
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    found.append(StaleUpload(upload["Key"], upload["UploadId"], upload["Initiated"]))
        return found

    def list_keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        with _s3_errors():
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                found.extend(entry["Key"] for entry in page.get("Contents", []))
        return found

    def put_object(self, key: str, body: IO[bytes] | bytes, length: int) -> None:
        with _s3_errors():
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentLength=length)

    def get_object(self, key: str, length: int | None = None) -> Body:
        extra = {} if length is None else {"Range": f"bytes=0-{length - 1}"}
        with _s3_errors():
            reply = self.client.get_object(Bucket=self.bucket, Key=key, **extra)
        return _BotoBody(reply["Body"])

    def head_object(self, key: str) -> int | None:
        try:
            with _s3_errors():
                reply = self.client.head_object(Bucket=self.bucket, Key=key)
        except S3Unavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in (
                "404", "NoSuchKey", "NotFound",
            ):
                return None
            raise
        return int(reply["ContentLength"])

    def delete_object(self, key: str) -> None:
        with _s3_errors():
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def delete_versions(self, key: str) -> None:
        with _s3_errors():
            pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key)
            for page in pages:
                for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    if entry["Key"] == key:  # the prefix also matches longer keys
                        self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=entry["VersionId"])
