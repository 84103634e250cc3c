"""The C2SP tlog-witness wire format (https://c2sp.org/tlog-witness): an add-checkpoint request
body and the 409 answer's size body. Forms only; what a witness decides is the caller's.

`check_update` is the witness's rule for one log, pure: given what it last cosigned and a
request whose checkpoint's signature it has verified, the state to keep, or a `Refusal` with
the spec's status code.

A request body is ``old <size>\\n``, at most 63 lines of one base64 hash each (the consistency
proof), an empty line, then the signed checkpoint note. Sizes are decimal with no leading
zeroes. Malformed input raises `MalformedRequest` (a witness answers 400).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from audit.checkpoint import Checkpoint, _b64decode
from audit.errors import VerificationError
from audit.merkle import EMPTY_ROOT, HASH_SIZE
from audit.verify import verify_consistency

MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"
_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")
_MAX_SIZE = 2**64 - 1


class MalformedRequest(ValueError):
    """The body is not an add-checkpoint request."""


@dataclass(frozen=True)
class AddCheckpoint:
    old: int
    proof: tuple[bytes, ...]
    note: str

    def body(self) -> bytes:
        return format_request(self.old, self.proof, self.note)


def format_request(old: int, proof: Sequence[bytes], note: str) -> bytes:
    if type(old) is not int or not 0 <= old <= _MAX_SIZE:
        raise ValueError(f"old size must be 0..2**64-1, not {old!r}")
    if len(proof) > MAX_PROOF_LINES or any(len(h) != HASH_SIZE for h in proof):
        raise ValueError(f"a consistency proof is at most {MAX_PROOF_LINES} hashes of {HASH_SIZE} bytes")
    lines = [f"old {old}", *(base64.b64encode(h).decode("ascii") for h in proof)]
    return ("".join(line + "\n" for line in lines) + "\n" + note).encode("utf-8")


def parse_request(body: bytes) -> AddCheckpoint:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("the body is not UTF-8") from None
    head, blank, note = text.partition("\n\n")
    if not blank:
        raise MalformedRequest("no empty line before the checkpoint")
    lines = head.split("\n")
    first, proof_lines = lines[0], lines[1:]
    if not first.startswith("old ") or not _SIZE.fullmatch(first[4:]) or int(first[4:]) > _MAX_SIZE:
        raise MalformedRequest("the first line is not 'old <size>' (decimal, no leading zeroes)")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise MalformedRequest(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in proof_lines:
        digest = _b64decode(line)
        if digest is None or len(digest) != HASH_SIZE:
            raise MalformedRequest("a consistency proof line is not the base64 of a 32-byte hash")
        proof.append(digest)
    return AddCheckpoint(int(first[4:]), tuple(proof), note)


def format_size(size: int) -> bytes:
    """A 409 answer's body: the witness's size, decimal, and a newline."""
    return f"{size}\n".encode("ascii")


def parse_size(body: bytes) -> int:
    """The size in a 409 answer's body; MalformedRequest if it is not exactly one."""
    text = body.decode("ascii", "replace")
    if not text.endswith("\n") or not _SIZE.fullmatch(text[:-1]) or int(text[:-1]) > _MAX_SIZE:
        raise MalformedRequest("the witness's size is not a decimal number on one line")
    return int(text[:-1])


# -- the witness's rule ----------------------------------------------------------------------


class Refusal(Exception):
    """An add-checkpoint request refused: the status code the spec names, and why."""

    def __init__(self, status: int, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.size = size  # for 409: the witness's size, which the body must carry


@dataclass(frozen=True)
class LogState:
    """The latest checkpoint a witness cosigned for one log: all it keeps."""

    size: int
    root: bytes


def check_update(stored: LogState | None, old: int, proof: Sequence[bytes], checkpoint: Checkpoint) -> LogState:
    """The state to keep once ``checkpoint`` (its signature already verified) is cosigned, if
    ``old`` and ``proof`` show it extends ``stored`` (None: this log was never cosigned)."""
    stored_size = stored.size if stored is not None else 0
    if old > checkpoint.size:
        raise Refusal(400, f"old size {old} is larger than the checkpoint's size {checkpoint.size}")
    if old != stored_size:
        # A rollback, a replay, or a client that does not know where the witness stands.
        raise Refusal(409, f"the latest cosigned checkpoint has size {stored_size}, not {old}", stored_size)
    new = LogState(checkpoint.size, checkpoint.root)
    if stored is None or old == 0:
        if proof:
            raise Refusal(422, "a consistency proof from size 0 must be empty")
        if checkpoint.size == 0 and checkpoint.root != EMPTY_ROOT:
            raise Refusal(422, "an empty tree's root is SHA-256 of nothing")
        return new
    if old == checkpoint.size:
        if checkpoint.root != stored.root:
            # Two checkpoints of one size with different roots: the log forked.
            raise Refusal(409, f"a different root was cosigned at size {old}: the log forked", stored_size)
        if proof:
            raise Refusal(422, "a consistency proof between equal sizes must be empty")
        return new
    try:
        verify_consistency(old, checkpoint.size, list(proof), stored.root, checkpoint.root)
    except VerificationError as error:
        raise Refusal(422, f"the consistency proof from size {old} does not verify: {error}") from None
    return new
