"""What a reviewer's copy of a custody report may show: no server internals (file-system
paths, host names, storage keys, upload ids).

Ledger entries are Merkle leaves: an entry's bytes are what its inclusion proof proves, so
an entry cannot be shown with a field blanked out and still verify. A reviewer's copy
therefore shows each entry whole or withholds it whole; a withheld entry still appears as
its sequence number, leaf hash and inclusion proof, so the reviewer can check that the
record has no gap at that place, and an auditor holding the full report sees the same leaf.
Entries that carry only transfer internals (an upload's creation and completion) are the
ones withheld in practice; ``original.stored`` and ``original.hashed`` carry what a court
needs. Values outside the ledger (the report's summary of the item and its working
copies) are signed by the report alone, so there internals are simply left out.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

# Detail fields that name where something is stored on our side. ("storage" itself is not
# one: it names the kind of storage, which a court may read; its older forms held a folder
# or a bucket and endpoint, caught by the names below and by the server's own values.)
INTERNAL_FIELDS = frozenset({"storage_key", "key", "upload", "upload_id", "path", "root", "bucket", "endpoint",
                             "host", "hostname", "work_dir", "tmp_dir"})
# Actors as written before host names were dropped from them: system:worker@host, operator:root@host.
_ACTOR_WITH_HOST = re.compile(r"(system|operator):[^@\s]*@")
WITHHELD = "[withheld]"


@dataclass(frozen=True)
class Internals:
    """The strings a reviewer must not see: host names, our folders, an item's storage keys
    and upload id. Matched as whole words, so a short host name does not match inside a hash."""

    words: frozenset[str]

    @classmethod
    def of(cls, *values: str | None) -> Internals:
        return cls(frozenset(v for v in values if v and v.strip("/.")))

    @classmethod
    def of_host(cls, *values: str | None) -> Internals:
        """This machine's names and the given server values (folders, bucket, endpoint)."""
        return cls.of(socket.gethostname(), socket.getfqdn(), *values).without("localhost")

    @classmethod
    def of_server(cls, data_dir: str, tmp_dir: str, storage_url: str) -> Internals:
        """This server's: host names, data and work folders, the local vault's folder or the
        object store's endpoint. (A bucket name is left to the field rules: as a word it
        could be any word, like "evidence", that reviewers must still read.)"""
        parsed = urlsplit(storage_url)
        values = [data_dir, tmp_dir]
        if parsed.scheme == "file":
            values.append(unquote(parsed.path))
        values += parse_qs(parsed.query).get("endpoint_url", [])
        return cls.of_host(*values)

    def with_(self, values: Iterable[str | None]) -> Internals:
        return Internals(self.words | Internals.of(*values).words)

    def without(self, *values: str) -> Internals:
        return Internals(self.words - set(values))

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        if not self.words:
            return None
        # Longest first, so a folder is found before a shorter name inside it.
        alternatives = "|".join(re.escape(w) for w in sorted(self.words, key=len, reverse=True))
        return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")

    def found_in(self, value: Any) -> bool:
        if isinstance(value, str):
            return self._pattern is not None and self._pattern.search(value) is not None
        if isinstance(value, dict):
            return any(self.found_in(k) or self.found_in(v) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return any(self.found_in(v) for v in value)
        return False


def withheld_because(entry: dict[str, Any], internals: Internals) -> str | None:
    """Why a ledger entry must be withheld from a reviewer's copy, or None to show it."""
    if "upload" in (entry.get("subject") or {}):
        return "transfer internals (the upload it belongs to)"
    if _ACTOR_WITH_HOST.match(str(entry.get("actor", ""))):
        return "names a server host"
    if _has_field(entry.get("details"), INTERNAL_FIELDS):
        return "names where it is stored"
    if internals.found_in(entry):
        return "names server internals"
    return None


def scrub(value: Any, internals: Internals) -> Any:
    """``value`` with internal fields left out and any string naming an internal replaced."""
    if isinstance(value, str):
        return WITHHELD if internals.found_in(value) else value
    if isinstance(value, dict):
        return {k: scrub(v, internals) for k, v in value.items() if k not in INTERNAL_FIELDS}
    if isinstance(value, list):
        return [scrub(v, internals) for v in value]
    return value


def _has_field(value: Any, names: frozenset[str]) -> bool:
    if isinstance(value, dict):
        return any(k in names or _has_field(v, names) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_field(v, names) for v in value)
    return False
