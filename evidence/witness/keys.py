"""A witness's signing key: an Ed25519 note signer key (``PRIVATE+KEY+...``, as the ledger's own),
written 0600 and never overwritten; its public form is a cosignature/v1 verifier key."""

from __future__ import annotations

import os
from pathlib import Path

from audit import NoteSigner, generate_signer
from audit.cosignature import Cosigner


def generate(name: str, out: Path) -> Cosigner:
    """Write a new key for witness ``name`` to ``out`` (which must not exist); its cosigner."""
    signer = generate_signer(name)
    # O_EXCL: an existing key (a witness's identity, known to the logs) is never replaced.
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(signer.to_skey() + "\n")
        file.flush()
        os.fsync(file.fileno())
    return Cosigner(signer)


def load(path: Path) -> Cosigner:
    """The cosigner whose key ``path`` holds; ValueError if it is not a note signer key."""
    return Cosigner(NoteSigner.from_skey(path.read_text().strip()))
