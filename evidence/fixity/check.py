"""Checking one stored object: re-read it, re-hash it, compare with what was recorded when it
was stored; for an original, also its write-once protection; for a working copy made of many
objects (a PDF's pages, an archive's previews, HLS segments), each part as its index or
method names it.

Findings name objects by what they are (the original, a kind of working copy, a part by its
SHA-256 or file name), never by where they are kept: they go into the custody record, which
reaches courts and reviewers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from evidence import workingcopies
from evidence.fixity.pace import Digest, Pace, hash_paced
from evidence.models import DerivativeKind
from evidence.vault.base import KeyRefused
from evidence.vault.readback import Missing, Readback, Unreadable

ORIGINAL, WORKING_COPY = "original", "working copy"
# The problems a check can find.
DIFFERS, MISSING, UNREADABLE, NOT_WRITE_ONCE, RETENTION = (
    "differs", "missing", "unreadable", "not write-once", "retention shorter than policy")
# S3 retention is set when the upload completes, just before the item is recorded: the
# retention found may end this much before the item's time plus the policy's days.
RETENTION_SLACK = timedelta(hours=1)
_INDEXED = {DerivativeKind.PAGES.value: workingcopies.read_pages, DerivativeKind.PREVIEWS.value: workingcopies.read_previews}


@dataclass(frozen=True)
class Target:
    """A stored object as the database records it."""

    table: str  # "item" (its original) or "derivative"
    id: str  # the row's id
    item_id: str
    case_ref: str
    key: str
    sha256: str
    size: int
    stored_at: datetime
    kind: str | None = None  # the working copy's kind; None for the original
    method: dict[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> tuple[str, str | None]:
        """The item's object this is: the original, or one kind of working copy with its parts."""
        return (ORIGINAL, None) if self.table == "item" else (WORKING_COPY, self.kind)


@dataclass(frozen=True)
class Problem:
    object: str  # ORIGINAL or WORKING_COPY
    kind: str | None  # the working copy's kind
    part: str | None  # a part's name: a page's or preview's SHA-256, an HLS segment's file name
    problem: str
    expected: dict[str, Any]
    found: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"object": self.object, "kind": self.kind, "part": self.part, "problem": self.problem,
                "expected": self.expected, "found": self.found}

    def describe(self) -> str:
        """One line for a person: what, and what was found."""
        what = self.object if self.kind is None else f"{self.object} ({self.kind})"
        if self.part:
            what += f", part {self.part}"
        if self.problem == DIFFERS:
            return (f"{what} DIFFERS: expected SHA-256 {self.expected.get('sha256')}, found {self.found.get('sha256')}"
                    f" ({self.found.get('size')} bytes)")
        if self.problem == MISSING:
            return f"{what} is MISSING from storage"
        if self.problem == UNREADABLE:
            return f"{what} could not be read: {self.found.get('reason')}"
        return f"{what}: {self.problem} (expected {_words(self.expected)}; found {_words(self.found)})"


def _words(values: dict[str, Any]) -> str:
    return ", ".join(f"{name} {value}" for name, value in values.items())


@dataclass
class Checked:
    target: Target
    at: datetime
    problems: list[Problem] = field(default_factory=list)
    bytes: int = 0
    parts: int = 0
    version: str | None = None  # the object's version that was read (S3)


@dataclass(frozen=True)
class Policy:
    retention_days: int


def check(target: Target, reader: Readback, pace: Pace, policy: Policy, at: datetime) -> Checked:
    """Check ``target`` (and its parts) now; storage that cannot be reached raises
    VaultUnavailable rather than becoming a finding."""
    done = Checked(target, at)
    keep = workingcopies.MAX_INDEX_BYTES if target.kind in _INDEXED else 0
    digest = _read(done, target.key, target.sha256, target.size, None, reader, pace, keep)
    if digest is not None and target.table == "item":
        _protection(done, reader, policy)
    if digest is None or digest.sha256 != target.sha256:
        return done  # an index that differs is not trusted to name its parts
    for name, key, sha256, size in _parts(target, digest):
        _read(done, key, sha256, size, name, reader, pace)
        done.parts += 1
    return done


def _read(done: Checked, key: str, sha256: str, size: int | None, part: str | None, reader: Readback, pace: Pace,
          keep: int = 0) -> Digest | None:
    kind, what = done.target.kind, done.target.subject[0]
    expected: dict[str, Any] = {"sha256": sha256, **({"size": size} if size is not None else {})}
    try:
        opened = reader.open(key)
        if part is None:
            done.version = opened.version
        try:
            digest = hash_paced(opened.stream, pace, keep)
        finally:
            opened.stream.close()
    except Missing:
        done.problems.append(Problem(what, kind, part, MISSING, expected, {"stored": False}))
        return None
    except (Unreadable, KeyRefused) as error:
        reason = error.message if isinstance(error, Unreadable) else "not a storage key of this service"
        done.problems.append(Problem(what, kind, part, UNREADABLE, expected, {"reason": reason}))
        return None
    done.bytes += digest.size
    if digest.sha256 != sha256 or (size is not None and digest.size != size):
        done.problems.append(Problem(what, kind, part, DIFFERS, expected, {"sha256": digest.sha256,
                                                                            "size": digest.size}))
    return digest


def _protection(done: Checked, reader: Readback, policy: Policy) -> None:
    """The original is still write-once: compliance retention for the policy's time (S3), or a
    file no one may write (local)."""
    target = done.target
    try:
        found = reader.protection(target.key, done.version)
    except Missing:
        done.problems.append(Problem(ORIGINAL, None, None, MISSING, {"sha256": target.sha256}, {"stored": False}))
        return
    except Unreadable as error:
        done.problems.append(Problem(ORIGINAL, None, None, UNREADABLE, {"protection": "readable"},
                                     {"reason": error.message}))
        return
    if not reader.retention:
        if found.mode != "read-only":
            done.problems.append(Problem(ORIGINAL, None, None, NOT_WRITE_ONCE, {"protection": "read-only"},
                                         {"protection": found.mode or "none"}))
        return
    least = target.stored_at + timedelta(days=policy.retention_days) - RETENTION_SLACK
    if found.mode != "COMPLIANCE" or found.retain_until is None or found.retain_until < least:
        done.problems.append(Problem(
            ORIGINAL, None, None, RETENTION,
            {"mode": "COMPLIANCE", "retain_until_at_least": least.replace(microsecond=0).isoformat()},
            {"mode": found.mode or "none",
             "retain_until": found.retain_until.isoformat() if found.retain_until is not None else None}))


def _parts(target: Target, digest: Digest) -> list[tuple[str, str, str, int | None]]:
    """(name, key, sha256, size) of each part of a many-object working copy whose index (or,
    for HLS, whose recorded method) names them; keys are built from hashes and fixed names,
    and are checked by the reader before anything is opened."""
    if target.kind in _INDEXED and digest.data is not None:
        try:
            index = _INDEXED[target.kind](digest.data)
        except workingcopies.BadIndex:
            return []  # the index matched its recorded hash: it is as the worker wrote it
        listed: tuple[workingcopies.Part, ...] = (
            index.pages if isinstance(index, workingcopies.Pages) else index.previews if isinstance(
                index, workingcopies.Previews) else ())
        # A part may be listed twice (two identical pages): it is one object, checked once.
        unique = {part.sha256: part for part in listed}
        return [(sha, part.key(target.item_id, target.kind), sha, part.size) for sha, part in sorted(unique.items())]
    if target.kind == DerivativeKind.HLS.value:
        segments = target.method.get("segments")
        folder = target.key.rpartition("/")[0]
        if isinstance(segments, dict):
            return [(name, f"{folder}/{name}", sha, None) for name, sha in sorted(segments.items())
                    if name != "index.m3u8" and isinstance(name, str) and isinstance(sha, str)]
    return []
