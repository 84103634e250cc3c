"""The vault on an S3 bucket with Object Lock (AWS S3, MinIO...).

Originals are sealed with a compliance-mode retention, which nobody (not even the bucket's
owner) can shorten or remove; the seal is read back before it is trusted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from evidence.vault.base import (
    ORIGINALS,
    KeyRefused,
    ObjectExists,
    ObjectInfo,
    RangeReader,
    SealNotConfirmed,
    StillRetained,
    VaultNotReady,
    VaultUnavailable,
    check_derivative_key,
    check_key,
    working_copies_prefix,
)
from transfer.s3store import S3Store
from transfer.store import Store

log = logging.getLogger(__name__)
_NOT_FOUND = ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    # The message reaches API clients and reviewers: it says what failed, not where (the
    # endpoint's address is in the cause, for the server's log).
    try:
        yield
    except ClientError as exc:
        raise VaultUnavailable(f"the evidence storage (S3) refused to {what} ({_code(exc) or 'error'})") from exc
    except BotoCoreError as exc:
        log.warning("S3 unreachable (%s): %s", what, exc)
        raise VaultUnavailable(f"the evidence storage (S3) is unreachable ({what}); try again shortly") from exc


def make_client(
    *, endpoint_url: str | None, region: str | None, access_key: str | None, secret_key: str | None
) -> Any:
    config = Config(
        signature_version="s3v4",
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        # MinIO and other self-hosted endpoints are addressed by path, not by DNS name.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )


class _Body(RangeReader):
    def _read(self, size: int) -> bytes:
        with _s3_errors("stream an object"):
            return super()._read(size)


class S3Vault:
    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        retention_days: int,
        tmp_dir: Path,
        part_size: int | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.retention_days = retention_days
        self.tmp_dir = tmp_dir
        self.part_size = part_size
        self.endpoint_url = endpoint_url

    def ensure_ready(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                raise VaultNotReady(f"S3 bucket {self.bucket!r} does not exist") from exc
            raise VaultNotReady(f"S3 bucket {self.bucket!r} is not usable: {exc}") from exc
        except BotoCoreError as exc:
            raise VaultNotReady(f"cannot reach S3 for bucket {self.bucket!r}: {exc}") from exc
        try:
            lock = self.client.get_object_lock_configuration(Bucket=self.bucket)
            enabled = lock.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
        except ClientError as exc:
            if _code(exc) != "ObjectLockConfigurationNotFoundError":
                raise VaultNotReady(f"cannot read the Object Lock setting of {self.bucket!r}: {exc}") from exc
            enabled = False
        except BotoCoreError as exc:
            raise VaultNotReady(f"cannot reach S3 for bucket {self.bucket!r}: {exc}") from exc
        if not enabled:
            raise VaultNotReady(
                f"S3 bucket {self.bucket!r} does not have Object Lock enabled; originals could not be "
                "made write-once. Create the bucket with Object Lock (it cannot be added to most buckets later)."
            )

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            with _s3_errors(f"look up {key}"):
                return cast(dict[str, Any], self.client.head_object(Bucket=self.bucket, Key=key))
        except VaultUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and _code(cause) in _NOT_FOUND:
                return None
            raise

    def stat(self, key: str) -> ObjectInfo | None:
        head = self._head(check_key(key))
        if head is None:
            return None
        until = head.get("ObjectLockRetainUntilDate")
        sealed = head.get("ObjectLockMode") == "COMPLIANCE" and until is not None and until > datetime.now(UTC)
        return ObjectInfo(
            key=key, size=int(head["ContentLength"]), sealed=sealed, retain_until=until, etag=head.get("ETag")
        )

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        check_key(key)
        if end is not None and end <= start:
            return cast(BinaryIO, RangeReader(_Empty(), 0))
        extra = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            with _s3_errors(f"read {key}"):
                reply = self.client.get_object(Bucket=self.bucket, Key=key, **extra)
        except VaultUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and _code(cause) in _NOT_FOUND:
                raise KeyError(key) from None
            raise
        return cast(BinaryIO, _Body(reply["Body"], None))

    def seal(self, key: str) -> None:
        check_key(key)
        # Whole seconds: that is what S3 keeps and reports back.
        until = (datetime.now(UTC) + timedelta(days=self.retention_days)).replace(microsecond=0)
        head = self._head(key)
        if head is None:
            raise KeyError(key)
        mode, current = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
        if not (mode == "COMPLIANCE" and current is not None and current >= until):
            # A governance retention (a bucket's default, say) can only be made compliance
            # with the bypass: it is a change of mode, though it only makes the lock stronger.
            bypass = {"BypassGovernanceRetention": True} if mode == "GOVERNANCE" else {}
            # Never shorter than a retention already set.
            target = max(until, current) if current is not None else until
            with _s3_errors(f"set retention on {key}"):
                self.client.put_object_retention(
                    Bucket=self.bucket, Key=key, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": target}, **bypass
                )
            head = self._head(key) or {}
        mode, current = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
        if mode != "COMPLIANCE" or current is None or current < until:
            raise SealNotConfirmed(
                f"S3 did not confirm compliance retention on {key} (mode {mode}, retain until {current})"
            )

    def put(self, key: str, fileobj: BinaryIO) -> ObjectInfo:
        check_derivative_key(key)
        if self._head(key) is not None:
            raise ObjectExists(f"{key} already exists in the vault")
        try:
            with _s3_errors(f"store {key}"):
                # If-None-Match makes S3 itself refuse an overwrite, closing the race the
                # HEAD above leaves open, where the store honours it (AWS, MinIO; Ceph's
                # gateway before Squid ignores it, and the later writer adds a version).
                self.client.put_object(Bucket=self.bucket, Key=key, Body=fileobj, IfNoneMatch="*")
        except VaultUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and _code(cause) in ("PreconditionFailed", "412"):
                raise ObjectExists(f"{key} already exists in the vault") from None
            raise
        info = self.stat(key)
        if info is None:
            raise VaultUnavailable(f"S3 accepted {key} but does not show it")
        return info

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        check_derivative_key(key)
        if self._head(key) is not None:
            raise ObjectExists(f"{key} already exists in the vault")
        with _s3_errors(f"store {key}"):
            # Multipart for large working copies (a single PUT stops at 5 GB).
            self.client.upload_file(str(path), self.bucket, key)
        info = self.stat(key)
        if info is None:
            raise VaultUnavailable(f"S3 accepted {key} but does not show it")
        return info

    def tus_store(self) -> Store:
        options: dict[str, Any] = {"tmp_dir": self.tmp_dir / "s3-spool"}
        if self.part_size:
            options["part_size"] = self.part_size
        return S3Store.from_client(self.client, self.bucket, **options)

    def tool_input(self, key: str) -> str:
        check_key(key)
        with _s3_errors(f"presign {key}"):
            return str(
                self.client.generate_presigned_url(
                    "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=6 * 3600
                )
            )

    def tag(self, key: str, tags: dict[str, str]) -> None:
        check_key(key)
        tag_set = [{"Key": name, "Value": value} for name, value in sorted(tags.items())]
        with _s3_errors(f"tag {key}"):
            self.client.put_object_tagging(Bucket=self.bucket, Key=key, Tagging={"TagSet": tag_set})

    def legal_hold(self, key: str, on: bool) -> bool:
        check_key(key)
        status = "ON" if on else "OFF"
        try:
            with _s3_errors(f"set a legal hold on {key}"):
                self.client.put_object_legal_hold(Bucket=self.bucket, Key=key, LegalHold={"Status": status})
                found = self.client.get_object_legal_hold(Bucket=self.bucket, Key=key)
        except VaultUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and _code(cause) in _NOT_FOUND:
                raise KeyError(key) from None
            raise
        if found.get("LegalHold", {}).get("Status") != status:
            raise SealNotConfirmed(f"S3 did not confirm the legal hold {status} on {key}")
        return True

    def _versions(self, prefix: str) -> list[dict[str, Any]]:
        """Every version and delete marker under ``prefix``: in a versioned bucket (Object Lock
        buckets all are) a plain DELETE only hides an object behind a marker."""
        found: list[dict[str, Any]] = []
        with _s3_errors(f"list the versions under {prefix}"):
            for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
                found += [{**v, "marker": False} for v in page.get("Versions", [])]
                found += [{**v, "marker": True} for v in page.get("DeleteMarkers", [])]
        return found

    def _delete_versions(self, versions: list[dict[str, Any]]) -> None:
        for version in versions:
            with _s3_errors(f"remove {version['Key']}"):
                self.client.delete_object(Bucket=self.bucket, Key=version["Key"], VersionId=version["VersionId"])

    def remove_working_copies(self, item_id: str) -> int:
        versions = self._versions(working_copies_prefix(item_id))
        self._delete_versions(versions)
        return len({v["Key"] for v in versions if not v["marker"]})

    def remove_original(self, key: str) -> None:
        check_key(key)
        if not key.startswith(ORIGINALS):
            raise KeyRefused(f"not an original: {key!r}")
        # The prefix lists originals/<id>... too: only this key's versions are touched.
        versions = [v for v in self._versions(key) if v["Key"] == key]
        if not any(not v["marker"] for v in versions):
            raise KeyError(key)
        now = datetime.now(UTC)
        # Every version checked before any is removed: all of it goes, or none.
        for version in versions:
            if version["marker"]:
                continue
            with _s3_errors(f"look up {key}"):
                head = self.client.head_object(Bucket=self.bucket, Key=key, VersionId=version["VersionId"])
            until = head.get("ObjectLockRetainUntilDate")
            if head.get("ObjectLockLegalHoldStatus") == "ON":
                raise StillRetained(f"{key} is under an S3 legal hold")
            if until is not None and until > now:
                raise StillRetained(f"S3 Object Lock retains {key} until {until.isoformat()}", until)
        self._delete_versions(versions)

    def describe(self) -> dict[str, Any]:
        return {"backend": "s3"}

    def write_once_description(self) -> str:
        return f"S3 Object Lock, compliance mode, retained {self.retention_days} days"


class _Empty:
    def read(self, size: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        pass
