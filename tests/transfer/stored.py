"""What a tus server's store holds, looked at from outside the server: the vault folder of
the file store, or the bucket of the S3 store. The protocol tests ask the same questions
of either (what an unfinished upload has kept, what a finished one became, whether it is
sealed, and everything stored, to show that a refused request left nothing behind)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from tests.support.s3 import S3Bucket


class Stored(Protocol):
    kind: str

    def object(self, key: str) -> bytes | None:
        """A finished object's bytes; None when there is none."""

    def sealed(self, key: str) -> bool:
        """Is the object write-once (read-only file, or under compliance retention)?"""

    def received(self, upload_id: str, key: str, state: dict[str, Any]) -> bytes | None:
        """The bytes an unfinished upload has kept, given its storage key and store state
        as the registry holds them; None when the store keeps nothing unfinished for it
        (terminated, expired and cleaned up, or finished)."""

    def gone(self, key: str) -> bool:
        """No trace of the object is left: not even an older version (a versioned bucket
        keeps those of a deleted object)."""

    def names(self) -> frozenset[str]:
        """Everything stored: each object, and each unfinished upload's working name."""


class Folder:
    """The file store: unfinished uploads in ``.uploads/<id>.bin``, objects at their keys."""

    kind = "file"

    def __init__(self, root: Path) -> None:
        self.root = root

    def object(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def sealed(self, key: str) -> bool:
        return (self.root / key).stat().st_mode & 0o222 == 0

    def received(self, upload_id: str, key: str, state: dict[str, Any]) -> bytes | None:
        working = self.root / ".uploads" / f"{upload_id}.bin"
        return working.read_bytes() if working.is_file() else None

    def gone(self, key: str) -> bool:
        return not (self.root / key).exists()

    def names(self) -> frozenset[str]:
        return frozenset(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())


class Bucket:
    """The S3 store: an unfinished upload is an open multipart upload at its key, with the
    bytes short of a part waiting in a pending object (``<key>.part.<offset>``)."""

    kind = "s3"

    def __init__(self, bucket: S3Bucket) -> None:
        self.bucket = bucket
        self.client = bucket.client()

    def close(self) -> None:
        self.client.close()

    def object(self, key: str) -> bytes | None:
        try:
            body = self.client.get_object(Bucket=self.bucket.bucket, Key=key)["Body"]
        except self.client.exceptions.NoSuchKey:
            return None
        try:
            return bytes(body.read())
        finally:
            body.close()

    def sealed(self, key: str) -> bool:
        retention = self.client.get_object_retention(Bucket=self.bucket.bucket, Key=key)["Retention"]
        return retention["Mode"] == "COMPLIANCE"

    def received(self, upload_id: str, key: str, state: dict[str, Any]) -> bytes | None:
        if not self._open_uploads(key):
            return None
        # The tests keep unfinished uploads below one part (5 MiB or more): all their bytes
        # wait in the pending object, which can be read back (parts cannot).
        parts = self.client.list_parts(Bucket=self.bucket.bucket, Key=key, UploadId=state["upload_id"])
        assert not parts.get("Parts"), f"{key} has parts already; look at smaller uploads"
        if not state.get("pending"):
            return b""
        pending = self.object(state["pending_key"])
        assert pending is not None and len(pending) == state["pending"], (key, state)
        return pending

    def gone(self, key: str) -> bool:
        listed = self.client.list_object_versions(Bucket=self.bucket.bucket, Prefix=key)
        return not any(entry["Key"] == key for entry in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])])

    def names(self) -> frozenset[str]:
        keys: set[str] = set()
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket.bucket):
            keys.update(entry["Key"] for entry in page.get("Contents", []))
        keys.update(f"{key} (unfinished)" for key in self._open_uploads(""))
        return frozenset(keys)

    def _open_uploads(self, key: str) -> list[str]:
        found: list[str] = []
        for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket.bucket, Prefix=key):
            found.extend(upload["Key"] for upload in page.get("Uploads", []) if not key or upload["Key"] == key)
        return found
