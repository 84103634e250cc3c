"""Secrets the server signs with: generated into the data dir on first start (embedded
mode), or read from files the operator gives. Never in the repository."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create_secret(path: Path, nbytes: int = 32) -> bytes:
    """Read a secret file, creating it (mode 0600, atomically) if it does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = None
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, secrets.token_bytes(nbytes))
        except FileExistsError:
            pass  # another process made it first; use theirs
        finally:
            if fd is not None:
                os.close(fd)
        data = path.read_bytes()
    if len(data) < 32:
        raise ValueError(f"secret in {path} is shorter than 32 bytes")
    return data
