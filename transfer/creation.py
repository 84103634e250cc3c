"""The rules of a creation request (POST to the collection), as one pure function.

Everything the headers alone decide is decided here, before the request is authenticated
or anything is looked up: a malformed or oversized request costs the server no database
work, and the rules can be tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from transfer import errors
from transfer.expiry import Expiry
from transfer.headers import (
    Checksum,
    ConcatRequest,
    parse_checksum,
    parse_concat,
    parse_length,
    parse_metadata,
)
from transfer.info import Concat, UploadInfo

OCTET_STREAM = "application/offset+octet-stream"


@dataclass(frozen=True)
class CreationLimits:
    """What the server accepts: its size limit and what its store can do."""

    max_size: int
    max_partials: int
    can_defer_length: bool
    can_concatenate: bool


@dataclass(frozen=True)
class Creation:
    """A creation request that passed every rule the headers alone can decide."""

    # The declared length; None while deferred, and for a final upload until its partial
    # uploads are loaded (their sizes add up to its length).
    length: int | None
    deferred: bool
    concat: ConcatRequest | None
    metadata: dict[str, str]
    # creation-with-upload: the body is the first chunk.
    with_upload: bool
    body_length: int
    checksum: Checksum | None

    @property
    def is_final(self) -> bool:
        return self.concat is not None and self.concat.kind == "final"

    @property
    def concat_kind(self) -> Concat:
        return None if self.concat is None else self.concat.kind

    @property
    def partial_ids(self) -> tuple[str, ...]:
        """The partial uploads a final upload is made of, in order (none for any other)."""
        return () if self.concat is None else self.concat.partial_ids


def parse_creation(headers: Mapping[str, str], collection_path: str, limits: CreationLimits) -> Creation:
    """Check a creation request's headers (looked up by lower-case name) and return what
    they ask for, or raise the :class:`~transfer.errors.TusError` that answers them."""
    concat = parse_concat(headers.get("upload-concat"), collection_path, limits.max_partials)
    length = parse_length(headers.get("upload-length"), "Upload-Length")
    deferred_header = headers.get("upload-defer-length")
    deferred = deferred_header is not None
    if deferred and (deferred_header or "").strip() != "1":
        raise errors.BadRequest("Upload-Defer-Length must be 1")
    if deferred and not limits.can_defer_length:
        raise errors.BadRequest("this server cannot defer the upload length")
    if concat is not None and not limits.can_concatenate:
        raise errors.BadRequest("this server does not support concatenation")

    final = concat is not None and concat.kind == "final"
    if final:
        if length is not None or deferred:
            raise errors.BadRequest("a final upload takes its length from its partial uploads")
    elif length is None and not deferred:
        raise errors.BadRequest("Upload-Length or Upload-Defer-Length: 1 is required")
    elif length is not None and deferred:
        raise errors.BadRequest("send Upload-Length or Upload-Defer-Length, not both")
    if length is not None and length > limits.max_size:
        raise errors.TooLarge(f"upload of {length} bytes exceeds the maximum of {limits.max_size}")

    body_length = parse_length(headers.get("content-length"), "Content-Length") or 0
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    with_upload = content_type == OCTET_STREAM
    if body_length and not with_upload:
        raise errors.UnsupportedMediaType()
    if with_upload and final:
        raise errors.Forbidden("a final upload cannot carry data")
    limit = length if length is not None else limits.max_size
    if with_upload and body_length > limit:
        raise errors.TooLarge(f"the body of {body_length} bytes goes past the upload's length")

    return Creation(
        length=length,
        deferred=deferred,
        concat=concat,
        metadata=parse_metadata(headers.get("upload-metadata")),
        with_upload=with_upload,
        body_length=body_length,
        checksum=parse_checksum(headers.get("upload-checksum")) if with_upload else None,
    )


def usable_partials(
    ids: tuple[str, ...], found: Mapping[str, UploadInfo], owner: str, expiry: Expiry, now: datetime
) -> list[UploadInfo]:
    """The partial uploads a final upload names, in its order, once each was checked: the
    requester's own, finished, still there, and not taken by another final upload.

    ``found`` holds whatever the registry had for ``ids`` (one query for them all).
    Someone else's upload is refused exactly like one that does not exist."""
    partials = []
    for upload_id in ids:
        partial = found.get(upload_id)
        if partial is None or partial.owner != owner:
            raise errors.BadRequest(f"partial upload {upload_id} does not exist")
        if partial.concat != "partial":
            raise errors.BadRequest(f"upload {upload_id} is not a partial upload")
        if partial.consumed:
            raise errors.BadRequest(f"partial upload {upload_id} was already used in another final upload")
        if partial.terminated or expiry.expired(partial, now):
            raise errors.BadRequest(f"partial upload {upload_id} has expired or was terminated")
        if not partial.finished:
            raise errors.BadRequest(f"partial upload {upload_id} is not finished")
        partials.append(partial)
    return partials


def new_upload(
    creation: Creation, owner: str, partials: Sequence[UploadInfo], limits: CreationLimits, *,
    upload_id: str, now: datetime,
) -> UploadInfo:
    """The record of the upload a creation request makes, before the application gives it
    a storage key. A final upload's length is the sum of its partial uploads' (checked by
    :func:`usable_partials`), and must be within the limit too."""
    length = creation.length
    if creation.is_final:
        length = sum(partial.size or 0 for partial in partials)
        if length > limits.max_size:
            raise errors.TooLarge(f"upload of {length} bytes exceeds the maximum of {limits.max_size}")
    return UploadInfo(
        id=upload_id,
        owner=owner,
        storage_key="",
        size=length,
        metadata=creation.metadata,
        created_at=now,
        concat=creation.concat_kind,
        partials=list(creation.partial_ids),
    )
