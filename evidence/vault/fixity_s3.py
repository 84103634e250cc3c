"""An S3 vault read back for fixity audits through the ``minio`` SDK: read, stat, retention.

The vault writes with boto3 (:mod:`evidence.vault.s3`); the audit reads with another client
library on purpose, so that two independent implementations of S3 (request signing, response
parsing, streaming) agree on what the bucket holds. Nothing here writes, deletes or changes
retention. Keys are checked as the vault checks them before any request is made.

The version read is the one S3 serves now, the one reviewers and tools get: with Object Lock
the bucket is versioned, so an object overwritten behind the server's back is a new version
over the locked one, and a deleted one a delete marker; the audit sees both. Retention is
asked of the exact version that was read.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.credentials.providers import AWSConfigProvider, ChainedProvider, EnvAWSProvider, IamAwsProvider
from minio.error import MinioException, S3Error

from evidence.vault.base import VaultUnavailable, check_key
from evidence.vault.readback import Missing, Opened, Protection, Unreadable
from evidence.vault.s3 import S3Vault

# What S3 (AWS, MinIO, Ceph) answers for a key with nothing, or only a delete marker, under it.
_ABSENT = frozenset({"NoSuchKey", "NoSuchObject", "NoSuchVersion", "ResourceNotFound", "NotFound"})
_NO_RETENTION = frozenset({"NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError"})
CONNECT_SECONDS, READ_SECONDS = 5.0, 60.0


class MinioReadback:
    retention = True

    def __init__(self, client: Minio, bucket: str) -> None:
        self.minio = client
        self.bucket = bucket
        self.client = f"minio-py {package_version('minio')}"

    @classmethod
    def for_vault(cls, vault: S3Vault, *, access_key: str | None, secret_key: str | None) -> MinioReadback:
        """A reader of the same bucket and endpoint as ``vault``, with its own client."""
        endpoint, secure = _endpoint(vault.endpoint_url, vault.client.meta.region_name)
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=CONNECT_SECONDS, read=READ_SECONDS), maxsize=2,
            retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        credentials = None
        if not access_key:  # as boto3 would: the environment, the AWS config files, an instance role
            credentials = ChainedProvider([EnvAWSProvider(), AWSConfigProvider(), IamAwsProvider()])
        client = Minio(endpoint, access_key=access_key or None, secret_key=secret_key if access_key else None,
                       secure=secure, region=vault.client.meta.region_name, http_client=http, credentials=credentials)
        return cls(client, vault.bucket)

    def open(self, key: str) -> Opened:
        check_key(key)
        with _errors("look up"):
            found = self.minio.stat_object(self.bucket, key)
        version = found.version_id if found.version_id not in (None, "", "null") else None
        with _errors("read"):
            response = self.minio.get_object(self.bucket, key, version_id=version)
        return Opened(cast(BinaryIO, _Body(response)), int(found.size or 0), version)

    def protection(self, key: str, version: str | None) -> Protection:
        """The version's Object Lock retention, from its HEAD (the mode and retain-until date
        headers), else from GetObjectRetention. The headers first: minio-py's parser of the
        retention document takes whole seconds only, and Ceph's gateway writes nanoseconds."""
        check_key(key)
        with _errors("look up"):
            headers = self.minio.stat_object(self.bucket, key, version_id=version).metadata or {}
        mode, until = headers.get("x-amz-object-lock-mode"), headers.get("x-amz-object-lock-retain-until-date")
        if mode:
            return Protection(str(mode).upper(), _when(str(until)) if until else None)
        try:
            with _errors("read the retention of"):
                found = self.minio.get_object_retention(self.bucket, key, version_id=version)
        except Unreadable as error:
            # No retention on the version: AWS says NoSuchObjectLockConfiguration (which the
            # SDK turns into None), Ceph's gateway ObjectLockConfigurationNotFoundError.
            cause = error.__cause__
            if isinstance(cause, S3Error) and cause.code in _NO_RETENTION:
                return Protection(None)
            raise
        if found is None:
            return Protection(None)
        when: datetime = found.retain_until_date
        return Protection(found.mode, when)

    def close(self) -> None:
        self.minio._http.clear()  # the client's own pool: no public close in the SDK


def _when(text: str) -> datetime:
    """An ISO 8601 time as S3 stores write it (``...Z``, with or without a fraction of a second,
    of any length)."""
    text = text.strip().replace("Z", "+00:00")
    main, dot, rest = text.partition(".")
    if dot:
        digits = "".join(ch for ch in rest if ch.isdigit())
        text = f"{main}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Unreadable(f"S3 gave a retention date that is not a time: {text[:40]!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _endpoint(url: str | None, region: str | None) -> tuple[str, bool]:
    """minio's ``host:port`` and TLS flag from the storage URL's ``endpoint_url``."""
    if not url:
        return (f"s3.{region}.amazonaws.com" if region else "s3.amazonaws.com"), True
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise VaultUnavailable("the storage URL's endpoint_url must be http(s)://host[:port] for the fixity reader")
    return parts.netloc, parts.scheme == "https"


@contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except ValueError as error:  # an answer the SDK could not parse: about this object, not an outage
        raise Unreadable(f"S3's answer could not be read ({error})"[:200]) from error
    except S3Error as error:
        if error.code in _ABSENT:
            raise Missing(f"nothing is stored under {error.object_name or 'the key'}") from None
        # Refused for this object (access denied, an invalid state...): a finding about the object.
        raise Unreadable(f"S3 refused to {what} it ({error.code or 'error'})") from error
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as error:
        # Not an answer about the object: the storage is out of reach or failing.
        raise VaultUnavailable(f"the evidence storage (S3) could not be reached to {what} an object; try again"
                               f" shortly ({type(error).__name__})") from error


class _Body(io.RawIOBase):
    """The response's bytes as a stream; errors while streaming are the storage's, not the object's."""

    def __init__(self, response: Any) -> None:
        super().__init__()
        self._response = response

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        with _errors("stream"):
            data = self._response.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._response.release_conn()
        super().close()
