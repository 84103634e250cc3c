"""One custody ledger entry and its canonical bytes, which are what the Merkle tree commits to.

An entry says who (``actor``: a user, or ``system:<component>@<host>``) did what (``action``,
e.g. ``original.hashed``) to which things (``subject``: case, item, link, upload ids) and when
(``time``, RFC 3339 UTC with microseconds), with whatever the action needs to be repeatable
(``details``: hashes, sizes, object keys, ffmpeg argv, client address...). ``seq`` is its
zero-based position in the log, which is also its leaf index.

The stored form is the RFC 8785 canonical JSON of the six fields (`Entry.encode`).
`Entry.decode` is the verifier's way in: it accepts only bytes that are exactly what `encode`
writes for the entry they describe, so an edit that leaves the JSON's meaning unchanged (key
order, spacing, escapes) is caught as surely as an edit that changes it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from audit.canonical import MAX_SAFE_INTEGER, canonical, fast_encode_decoded
from audit.errors import VerificationError
from audit.merkle import leaf_hash

FIELDS = ("seq", "time", "actor", "action", "subject", "details")
_FIELD_SET = frozenset(FIELDS)
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, e.g. ``2026-11-22T21:23:56.123456Z``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("ledger times must be timezone-aware (naive datetimes are ambiguous)")
    t = moment.astimezone(UTC)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{t.microsecond:06d}Z"
    )


def parse_time(text: str) -> datetime:
    """The aware UTC datetime of a time written by `format_time`; ValueError for anything else."""
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise ValueError(f"time {text!r} is not RFC 3339 UTC with microseconds (YYYY-MM-DDTHH:MM:SS.ffffffZ)")
    return datetime.fromisoformat(text)  # checks the ranges (month 13, February 30, hour 24...)


@dataclass(frozen=True)
class Entry:
    seq: int
    time: str
    actor: str
    action: str
    subject: dict[str, str]
    details: dict[str, Any]

    def __post_init__(self) -> None:
        if type(self.seq) is not int or not 0 <= self.seq <= MAX_SAFE_INTEGER:
            raise ValueError(f"seq must be an int from 0 to 2**53-1, not {self.seq!r}")
        parse_time(self.time)
        if not isinstance(self.actor, str) or not self.actor:
            raise ValueError(f"actor must be a non-empty string, not {self.actor!r}")
        if not isinstance(self.action, str) or not self.action:
            raise ValueError(f"action must be a non-empty string, not {self.action!r}")
        subject = self.subject
        if type(subject) is not dict:
            raise ValueError(f"subject must be an object, not {subject!r}")
        for key, value in subject.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"subject must map strings to strings, not {key!r}: {value!r}")
        if type(self.details) is not dict:
            raise ValueError(f"details must be an object, not {self.details!r}")

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}

    def encode(self) -> bytes:
        """The canonical bytes the log stores and hashes."""
        # Cached outside the fields (decode stores the bytes it checked). An entry is a value:
        # its dicts must not be mutated after construction, or the cache goes stale.
        encoded: bytes | None = self.__dict__.get("_encoded")
        if encoded is None:
            encoded = canonical(self.as_dict())
            object.__setattr__(self, "_encoded", encoded)
        return encoded

    def leaf_hash(self) -> bytes:
        """The RFC 9162 leaf hash of this entry: SHA-256(0x00 || encode())."""
        return leaf_hash(self.encode())

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Entry:
        """The entry whose canonical encoding is exactly ``data``; VerificationError otherwise."""
        if not isinstance(data, bytes):
            if not isinstance(data, bytearray | memoryview):
                raise VerificationError(f"entry must be bytes, not {type(data).__name__}")
            data = bytes(data)
        try:
            doc = _decoder.decode(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise VerificationError(f"entry is not valid JSON: {exc}") from exc
        if type(doc) is not dict:
            raise VerificationError("entry is not a JSON object")
        if doc.keys() != _FIELD_SET:
            missing = sorted(_FIELD_SET - doc.keys())
            extra = sorted(doc.keys() - _FIELD_SET)
            raise VerificationError(f"entry fields are wrong (missing {missing}, unexpected {extra})")
        try:
            entry = cls(**doc)
            # Duplicate keys, spacing, key order and escapes all show up as a difference from the
            # re-encoding. ASCII input cannot hold a key that needs UTF-16 ordering (a canonical
            # document escapes only control characters), and json.loads gave only JSON types with
            # ints already range-checked, so the plain encoder is exact for it (see canonical.py).
            encoded = fast_encode_decoded(doc) if data.isascii() else canonical(doc)
        except (TypeError, ValueError) as exc:
            raise VerificationError(f"entry is malformed: {exc}") from exc
        if encoded != data:
            raise VerificationError("entry bytes are not in canonical form (RFC 8785)")
        object.__setattr__(entry, "_encoded", data)
        return entry


def _safe_int(text: str) -> int:
    value = int(text)
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise ValueError(f"integer {text} is outside the JSON safe range")
    return value


def _no_float(text: str) -> Any:
    raise ValueError(f"number {text} is not an integer")


# Built once: json.loads with options builds a new decoder per call, which doubles its cost.
_decoder = json.JSONDecoder(parse_int=_safe_int, parse_float=_no_float, parse_constant=_no_float)
