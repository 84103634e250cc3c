"""Pure parsing and encoding of tus request headers. No I/O, easy to test."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from transfer.errors import BadRequest
from transfer.info import ConcatKind

TUS_VERSION = "1.0.0"
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "md5")

# Limits on client-controlled text: generous for real use, small enough that nobody can
# make the server store megabytes of "metadata".
MAX_METADATA_HEADER = 16 * 1024
MAX_METADATA_PAIRS = 32
MAX_VALUE_BYTES = 4096
_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_DIGITS = re.compile(r"[0-9]{1,20}")


def parse_length(value: str | None, name: str) -> int | None:
    """A non-negative decimal integer header, or None when absent."""
    if value is None:
        return None
    value = value.strip()
    if not _DIGITS.fullmatch(value):
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(value)


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs, values UTF-8."""
    if header is None or not header.strip():
        return {}
    if len(header) > MAX_METADATA_HEADER:
        raise BadRequest(f"Upload-Metadata is longer than {MAX_METADATA_HEADER} bytes")
    pairs = header.split(",")
    if len(pairs) > MAX_METADATA_PAIRS:
        raise BadRequest(f"Upload-Metadata has more than {MAX_METADATA_PAIRS} keys")
    metadata: dict[str, str] = {}
    for pair in pairs:
        parts = pair.strip().split(" ")
        if len(parts) > 2 or not parts[0]:
            raise BadRequest("Upload-Metadata pairs must be 'key base64value'")
        key = parts[0]
        if not _KEY.fullmatch(key):
            raise BadRequest("Upload-Metadata keys must be 1-64 characters of A-Z a-z 0-9 _ . -")
        if key in metadata:
            raise BadRequest(f"Upload-Metadata key {key!r} is repeated")
        raw = parts[1] if len(parts) == 2 else ""
        try:
            decoded = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"Upload-Metadata value of {key!r} is not valid base64") from None
        if len(decoded) > MAX_VALUE_BYTES:
            raise BadRequest(f"Upload-Metadata value of {key!r} is longer than {MAX_VALUE_BYTES} bytes")
        try:
            text = decoded.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"Upload-Metadata value of {key!r} is not UTF-8 text") from None
        if "\x00" in text:
            raise BadRequest(f"Upload-Metadata value of {key!r} contains a NUL character")
        metadata[key] = text
    return metadata


def encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" if value else key
        for key, value in metadata.items()
    )


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes


def parse_checksum(header: str | None) -> Checksum | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``."""
    if header is None:
        return None
    parts = header.strip().split(" ")
    if len(parts) != 2:
        raise BadRequest("Upload-Checksum must be '<algorithm> <base64 digest>'")
    algorithm, encoded = parts[0].lower(), parts[1]
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise BadRequest(
            f"unsupported checksum algorithm {parts[0]!r}; use one of {', '.join(CHECKSUM_ALGORITHMS)}"
        )
    try:
        digest = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("Upload-Checksum digest is not valid base64") from None
    return Checksum(algorithm, digest)


@dataclass(frozen=True)
class ConcatRequest:
    kind: ConcatKind
    partial_ids: tuple[str, ...] = ()


def parse_concat(header: str | None, collection_path: str, max_partials: int | None = None) -> ConcatRequest | None:
    """``Upload-Concat: partial`` or ``final;<url> <url> ...``.

    Partial URLs may be absolute or absolute paths; each must point into this server's
    upload collection, and only the trailing id is used. A final upload names at most
    ``max_partials`` partial uploads, each once: the header alone decides, so a list of
    thousands, or one upload named thousands of times, is refused before anything is
    looked up.
    """
    if header is None:
        return None
    header = header.strip()
    if header == "partial":
        return ConcatRequest("partial")
    if not header.startswith("final;"):
        raise BadRequest("Upload-Concat must be 'partial' or 'final;<url> ...'")
    urls = header[len("final;") :].split()
    if not urls:
        raise BadRequest("Upload-Concat final lists no partial uploads")
    if max_partials is not None and len(urls) > max_partials:
        raise BadRequest(
            f"Upload-Concat final lists {len(urls)} partial uploads; this server takes at most {max_partials}"
        )
    ids: dict[str, None] = {}  # ordered, and a repeat is found in constant time
    prefix = collection_path.rstrip("/") + "/"
    for url in urls:
        path = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://[^/]+", "", url)
        upload_id = path[len(prefix) :]
        if not path.startswith(prefix) or not _UPLOAD_ID.fullmatch(upload_id):
            raise BadRequest(f"Upload-Concat names an upload that is not on this server: {url[:200]!r}")
        if upload_id in ids:
            raise BadRequest(f"Upload-Concat names partial upload {upload_id} more than once; list each once")
        ids[upload_id] = None
    return ConcatRequest("final", tuple(ids))


_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


def is_upload_id(value: str) -> bool:
    return bool(_UPLOAD_ID.fullmatch(value))
