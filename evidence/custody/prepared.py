"""A custody entry made ready to append before its place in the log is known.

An entry's canonical body holds its ``seq``, which is only known once the appender holds the
ledger head. Everything else (checking the fields, the RFC 8785 encoding, the JSON of the
searchable columns) is done here, before the lock is taken, so that the lock is held only
for splicing the number in and hashing a few hundred bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit import Entry, format_time
from audit.canonical import MAX_SAFE_INTEGER

# In RFC 8785 order the entry's top-level keys are action, actor, details, seq, subject, time,
# so seq's value is followed by the subject object. The last occurrence of these bytes is the
# top-level one: details come before it, and nothing after it can hold them (subject maps
# strings to strings and time is a string; a quote inside a JSON string is always escaped).
_SEQ_ZERO = b',"seq":0,"subject":{'
_BEFORE_VALUE = len(b',"seq":')
_AFTER_VALUE = len(b',"seq":0')


@dataclass(frozen=True, slots=True)
class Prepared:
    """An entry's columns and its canonical body split around the seq value."""

    at: datetime
    action: str
    actor: str
    subject: dict[str, str]
    details: dict[str, Any]
    subject_json: str
    details_json: str
    head: bytes
    tail: bytes

    def body(self, seq: int) -> bytes:
        """The canonical body of this entry at position ``seq`` (what `Entry.encode` gives)."""
        if type(seq) is not int or not 0 <= seq <= MAX_SAFE_INTEGER:
            raise ValueError(f"seq must be an int from 0 to 2**53-1, not {seq!r}")
        return b"%b%d%b" % (self.head, seq, self.tail)


def prepare(action: str, subject: dict[str, str], actor: str, details: dict[str, Any], at: datetime) -> Prepared:
    """Check and encode an entry; ValueError or TypeError for one the log cannot hold."""
    entry = Entry(seq=0, time=format_time(at), actor=actor, action=action, subject=subject, details=details)
    encoded = entry.encode()
    cut = encoded.rfind(_SEQ_ZERO)
    if cut < 0:  # pragma: no cover - would mean Entry's encoding changed shape
        raise AssertionError("an entry's canonical body has no top-level seq before its subject")
    return Prepared(
        at=at, action=action, actor=actor, subject=subject, details=details,
        subject_json=_json(subject), details_json=_json(details),
        head=encoded[: cut + _BEFORE_VALUE], tail=encoded[cut + _AFTER_VALUE :],
    )


def _json(value: Any) -> str:
    # The searchable columns repeat what the body says; any JSON spelling of the same value
    # will do (verification compares them as values), this one is short.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
