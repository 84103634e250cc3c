"""Signed checkpoints: the C2SP tlog-checkpoint text inside a C2SP signed note (Ed25519).

A checkpoint commits to the log's state (origin line, tree size, base64 root hash, optional
extension lines; https://c2sp.org/tlog-checkpoint). It travels as a signed note
(https://c2sp.org/signed-note): the text, a blank line, then one line per signature,
``— <key name> <base64(4-byte key ID || signature)>`` (an em dash, U+2014). The key ID is the
first four bytes of SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key), and a
verifier key is written ``<name>+<key ID, 8 hex digits>+<base64(0x01 || public key)>``, as in
golang.org/x/mod/sumdb/note, whose example key tests/audit/test_checkpoint.py checks byte for byte.

`open_note` verifies before it returns anything: the caller never sees the text of a note that
no trusted key signed. Signatures by keys the verifier does not know are ignored, as the spec
requires (that is how witnesses co-sign); a signature by a known key that does not verify
rejects the whole note.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from audit.errors import VerificationError
from audit.merkle import HASH_SIZE

ALG_ED25519 = 0x01
SIG_PREFIX = "\u2014 "  # em dash, space
MAX_SIGNATURES = 100  # the spec asks for at least 16; golang.org/x/mod/sumdb/note stops at 100
_SIZE = re.compile(r"0|[1-9][0-9]*")
_KEY_HASH = re.compile(r"[0-9a-f]{8}")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or not _is_line(self.origin):
            raise ValueError(f"checkpoint origin must be a non-empty line of text, not {self.origin!r}")
        if type(self.size) is not int or self.size < 0:
            raise ValueError(f"checkpoint size must be a non-negative int, not {self.size!r}")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise ValueError(f"checkpoint root must be {HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple) or not all(
            isinstance(line, str) and line and _is_line(line) for line in self.extensions
        ):
            raise ValueError("checkpoint extensions must be a tuple of non-empty lines")

    def text(self) -> str:
        """The note text: origin, size, base64 root and extension lines, each ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii"), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """The checkpoint whose `text` is exactly ``text``; VerificationError for anything else."""
        if not isinstance(text, str) or not text.endswith("\n"):
            raise VerificationError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise VerificationError("checkpoint needs an origin, a tree size and a root hash line")
        origin, size, root, *extensions = lines
        if not origin or not _is_line(origin):
            raise VerificationError("checkpoint origin line is empty or holds control characters")
        if not _SIZE.fullmatch(size):
            raise VerificationError(f"checkpoint tree size {size!r} is not a decimal number without leading zeros")
        digest = _b64decode(root)
        if digest is None or len(digest) != HASH_SIZE:
            raise VerificationError(f"checkpoint root {root!r} is not the base64 of a {HASH_SIZE}-byte hash")
        if not all(line and _is_line(line) for line in extensions):
            raise VerificationError("checkpoint extension lines must be non-empty")
        return cls(origin=origin, size=int(size), root=digest, extensions=tuple(extensions))


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


class NoteVerifier:
    """An Ed25519 note verifier key: a name and a public key."""

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        if not _is_valid_name(name):
            raise ValueError(f"key name {name!r} must be non-empty, without spaces or '+'")
        self.name = name
        self.public_key = public_key
        self.public_bytes = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id(name, self.public_bytes)

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse ``<name>+<8 hex key ID>+<base64(0x01 || public key)>``; VerificationError if malformed."""
        parts = vkey.split("+", 2) if isinstance(vkey, str) else []
        if len(parts) != 3:
            raise VerificationError("verifier key is not <name>+<key id>+<key>")
        name, hash_hex, key64 = parts
        key = _b64decode(key64)
        if not _is_valid_name(name) or not _KEY_HASH.fullmatch(hash_hex) or key is None:
            raise VerificationError("verifier key is malformed")
        if len(key) != 33 or key[0] != ALG_ED25519:
            raise VerificationError("verifier key is not an Ed25519 key (0x01 and 32 bytes)")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(key[1:]))
        if verifier.key_id.hex() != hash_hex:
            raise VerificationError("verifier key's ID does not match its name and key")
        return verifier

    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64encode(bytes([ALG_ED25519]) + self.public_bytes)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class NoteSigner:
    """An Ed25519 note signer: a name and a private key."""

    def __init__(self, private_key: Ed25519PrivateKey, name: str) -> None:
        if not _is_valid_name(name):
            raise ValueError(f"key name {name!r} must be non-empty, without spaces or '+'")
        self.name = name
        self.private_key = private_key
        self.verifier = NoteVerifier(name, private_key.public_key())
        self.key_id = self.verifier.key_id

    def verifier_key(self) -> str:
        """The public verifier key, ``<name>+<key ID>+<base64(0x01 || public key)>``."""
        return self.verifier.vkey()

    def sign(self, text: str) -> str:
        """The signed note: ``text``, a blank line and this key's signature line."""
        message = _note_text_bytes(text)
        signature = self.private_key.sign(message)
        return f"{text}\n{SIG_PREFIX}{self.name} {_b64encode(self.key_id + signature)}\n"

    def to_skey(self) -> str:
        """``PRIVATE+KEY+<name>+<key ID>+<base64(0x01 || seed)>``: keep it secret."""
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{_b64encode(bytes([ALG_ED25519]) + seed)}"

    @classmethod
    def from_skey(cls, skey: str) -> NoteSigner:
        """Parse a `to_skey` string; ValueError if malformed or its key ID does not match."""
        parts = skey.split("+", 4) if isinstance(skey, str) else []
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise ValueError("signer key is not PRIVATE+KEY+<name>+<key id>+<key>")
        _, _, name, hash_hex, key64 = parts
        key = _b64decode(key64)
        if not _is_valid_name(name) or not _KEY_HASH.fullmatch(hash_hex) or key is None:
            raise ValueError("signer key is malformed")
        if len(key) != 33 or key[0] != ALG_ED25519:
            raise ValueError("signer key is not an Ed25519 key (0x01 and a 32-byte seed)")
        signer = cls(Ed25519PrivateKey.from_private_bytes(key[1:]), name)
        if signer.key_id.hex() != hash_hex:
            raise ValueError("signer key's ID does not match its name and key")
        return signer


def generate_signer(name: str) -> NoteSigner:
    """A new Ed25519 signer for ``name`` (for a log, its origin)."""
    return NoteSigner(Ed25519PrivateKey.generate(), name)


def open_note(note: str, verifier: NoteVerifier | Iterable[NoteVerifier]) -> str:
    """The text of ``note`` once a signature by a known key verifies; VerificationError otherwise."""
    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for v in [verifier] if isinstance(verifier, NoteVerifier) else verifier:
        other = known.setdefault((v.name, v.key_id), v)
        if other.public_bytes != v.public_bytes:
            raise ValueError(f"two verifier keys share the name and ID {v.name}+{v.key_id.hex()}")
    text, signatures = split_note(note)
    message = text.encode("utf-8")
    verified = 0
    for name, blob in signatures:
        key = known.get((name, blob[:4]))
        if key is None:
            continue  # someone else's signature (a witness, a rotated key): not ours to judge
        if not key.verify(message, blob[4:]):
            raise VerificationError(f"invalid signature for key {name}+{blob[:4].hex()}")
        verified += 1
    if not verified:
        raise VerificationError("note is not signed by any known key")
    return text


def split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """A note's text (ending in a newline) and its signatures as (key name, key ID || signature),
    in order, checked for form only: nothing here is verified. VerificationError if malformed."""
    if not isinstance(note, str):
        raise VerificationError("note must be text")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise VerificationError("malformed note: not valid Unicode") from None
    if any(ch < " " and ch != "\n" for ch in note):
        raise VerificationError("malformed note: control characters")
    split = note.rfind("\n\n")
    if split < 0:
        raise VerificationError("malformed note: no blank line before the signatures")
    text, signatures = note[: split + 1], note[split + 2 :]
    if not signatures.endswith("\n"):
        raise VerificationError("malformed note: no signature lines, or the last one is unterminated")
    lines = signatures[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    found = []
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise VerificationError(f"malformed note: {line[:40]!r} is not a signature line")
        name, _, sig64 = line[len(SIG_PREFIX) :].partition(" ")
        blob = _b64decode(sig64)
        if not _is_valid_name(name) or blob is None or len(blob) < 5:
            raise VerificationError(f"malformed note: bad signature line {line[:40]!r}")
        found.append((name, blob))
    return text, found


def open_checkpoint(
    note: str, verifier: NoteVerifier | Iterable[NoteVerifier], origin: str | None = None
) -> Checkpoint:
    """`open_note`, then `Checkpoint.parse`; with ``origin``, the checkpoint must be that log's."""
    checkpoint = Checkpoint.parse(open_note(note, verifier))
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(f"checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint


def _note_text_bytes(text: str) -> bytes:
    if not isinstance(text, str) or not text.endswith("\n"):
        raise ValueError("note text must end with a newline")
    if any(ch < " " and ch != "\n" for ch in text):
        raise ValueError("note text must not contain control characters other than newline")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("note text is not valid Unicode") from None


def _is_valid_name(name: str) -> bool:
    return (
        isinstance(name, str)
        and bool(name)
        and "+" not in name
        and not any(ch.isspace() for ch in name)
        and _is_line(name)
    )


def _is_line(text: str) -> bool:
    return not any(ch < " " for ch in text)


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Strict standard base64 (padded, canonical); None if ``text`` is not exactly that."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if _b64encode(data) == text else None
