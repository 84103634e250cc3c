"""Witness cosignatures of checkpoints: C2SP tlog-cosignature, Ed25519 ``cosignature/v1``.

A cosignature is one more signature line on a checkpoint's signed note,
``— <witness name> base64(key ID || timestamped_signature)``, where:

- the key ID is SHA-256(name || 0x0A || 0x04 || 32-byte Ed25519 public key)[:4] (0x04, not the
  log's 0x01: a witness key cannot be mistaken for a log key, nor a cosignature for a note
  signature);
- ``timestamped_signature`` is a big-endian u64 of POSIX seconds, then the 64-byte Ed25519
  signature;
- the signed message is ``cosignature/v1\\ntime <seconds>\\n`` followed by the checkpoint's note
  text (every line, extension lines too, with its final newline; no signature lines).

A witness's verifier key is a signed-note vkey with type 0x04:
``<name>+<key ID, 8 hex>+<base64(0x04 || public key)>``. Its signing key is an ordinary note
signer key (``PRIVATE+KEY+...``, :class:`audit.NoteSigner`), used for cosignatures only, as
transparency-dev's witnesses use theirs. tests/audit/test_cosignature.py checks the formats
against the spec's example and transparency-dev/formats' vectors.

Counting, as a log's client does it: only lines whose name and key ID match a configured
witness count; a line that matches but does not verify is tampering and rejects the note (as
in :func:`audit.open_note`); each witness counts once however many lines it has.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit.checkpoint import (
    _KEY_HASH,
    SIG_PREFIX,
    NoteSigner,
    _b64decode,
    _b64encode,
    _is_valid_name,
    _note_text_bytes,
    split_note,
)
from audit.errors import VerificationError

ALG_COSIGNATURE_V1 = 0x04
HEADER = "cosignature/v1"
SIGNATURE_SIZE = 8 + 64  # timestamped_signature: u64 seconds, Ed25519 signature
MAX_TIMESTAMP = 2**63 - 1  # the spec's bound


def cosignature_key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x04 || public key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public_key).digest()[:4]


def signed_message(text: str, timestamp: int) -> bytes:
    """What a witness signs: the header line, the time line, then the note text."""
    if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"cosignature time must be 0..2**63-1 seconds, not {timestamp!r}")
    return f"{HEADER}\ntime {timestamp}\n".encode() + _note_text_bytes(text)


class CosignatureVerifier:
    """A witness's public key and name, as its vkey gives them."""

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        if not _is_valid_name(name):
            raise ValueError(f"witness name {name!r} must be non-empty, without spaces or '+'")
        self.name = name
        self.public_key = public_key
        self.public_bytes = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = cosignature_key_id(name, self.public_bytes)

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        """Parse ``<name>+<8 hex key ID>+<base64(0x04 || public key)>``; VerificationError if malformed."""
        parts = vkey.strip().split("+", 2) if isinstance(vkey, str) else []
        if len(parts) != 3:
            raise VerificationError("witness key is not <name>+<key id>+<key>")
        name, hash_hex, key64 = parts
        key = _b64decode(key64)
        if not _is_valid_name(name) or not _KEY_HASH.fullmatch(hash_hex) or key is None:
            raise VerificationError("witness key is malformed")
        if len(key) != 33 or key[0] != ALG_COSIGNATURE_V1:
            raise VerificationError("witness key is not a cosignature/v1 key (0x04 and a 32-byte Ed25519 key)")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(key[1:]))
        if verifier.key_id.hex() != hash_hex:
            raise VerificationError("witness key's ID does not match its name and key")
        return verifier

    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64encode(bytes([ALG_COSIGNATURE_V1]) + self.public_bytes)}"

    def timestamp_if_valid(self, text: str, blob: bytes) -> int | None:
        """The time of the cosignature ``blob`` (key ID || timestamped signature) over ``text``, or
        None if it is not this witness's valid cosignature of it."""
        if blob[:4] != self.key_id or len(blob) != 4 + SIGNATURE_SIZE:
            return None
        (timestamp,) = struct.unpack(">Q", blob[4:12])
        if timestamp > MAX_TIMESTAMP:
            return None
        try:
            self.public_key.verify(blob[12:], signed_message(text, timestamp))
        except InvalidSignature:
            return None
        return int(timestamp)


class Cosigner:
    """A witness's signing key: an Ed25519 note signer used for cosignature/v1 only."""

    def __init__(self, signer: NoteSigner) -> None:
        self.name = signer.name
        self._private_key = signer.private_key
        self.verifier = CosignatureVerifier(signer.name, signer.private_key.public_key())
        self.key_id = self.verifier.key_id

    def vkey(self) -> str:
        return self.verifier.vkey()

    def cosign(self, text: str, timestamp: int) -> str:
        """The signature line (ending in a newline) for the checkpoint note text ``text``."""
        signature = self._private_key.sign(signed_message(text, timestamp))
        blob = self.key_id + struct.pack(">Q", timestamp) + signature
        return f"{SIG_PREFIX}{self.name} {_b64encode(blob)}\n"


@dataclass(frozen=True)
class Cosignature:
    witness: str  # the witness's vkey
    name: str
    timestamp: int
    line: str  # the signature line, with its newline


def cosignatures(note: str, witnesses: Iterable[CosignatureVerifier]) -> dict[str, Cosignature]:
    """The valid cosignatures on ``note`` by ``witnesses``, by vkey (one per witness, its first).

    VerificationError if the note is malformed or a line that names a given witness (its name
    and key ID) does not verify: a cosignature was altered."""
    known = {(w.name, w.key_id): w for w in witnesses}
    text, signatures = split_note(note)
    found: dict[str, Cosignature] = {}
    for name, blob in signatures:
        witness = known.get((name, blob[:4]))
        if witness is None:
            continue  # the log's own signature, or a witness nobody asked us to trust
        timestamp = witness.timestamp_if_valid(text, blob)
        if timestamp is None:
            raise VerificationError(f"invalid cosignature by witness {name}+{blob[:4].hex()}")
        found.setdefault(witness.vkey(), Cosignature(witness.vkey(), name, timestamp,
                                                     f"{SIG_PREFIX}{name} {_b64encode(blob)}\n"))
    return found


def check_quorum(note: str, witnesses: Iterable[CosignatureVerifier], quorum: int) -> dict[str, Cosignature]:
    """`cosignatures`, and at least ``quorum`` of them; VerificationError saying how many otherwise."""
    witnesses = list(witnesses)
    if type(quorum) is not int or quorum < 1:
        raise ValueError(f"quorum must be a positive int, not {quorum!r}")
    if quorum > len({w.vkey() for w in witnesses}):
        raise ValueError(f"a quorum of {quorum} needs at least {quorum} witness keys")
    found = cosignatures(note, witnesses)
    if len(found) < quorum:
        raise VerificationError(
            f"{len(found)} valid cosignature(s) from the {len(witnesses)} given witness key(s); {quorum} needed")
    return found
