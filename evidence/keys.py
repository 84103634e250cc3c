"""Secrets the server signs with: generated into the data dir on first start (embedded
mode), or read from files the operator gives. Never in the repository.

A generated key is written 0600 into a folder created 0700; one found readable by others
(an older install) is tightened, or, where that is impossible (the operator's own file on a
read-only mount), reported in the log. The data dir's keys are checked strictly at start
(:meth:`evidence.runtime.Runtime.build`)."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from evidence.filemodes import make_dirs, make_private


def load_or_create_secret(path: Path, nbytes: int = 32) -> bytes:
    """Read a secret file, creating it with random bytes if it does not exist."""
    data = _load_or_create(path, lambda: secrets.token_bytes(nbytes))
    if len(data) < 32:
        raise ValueError(f"secret in {path} is shorter than 32 bytes")
    return data


def load_or_create_text(path: Path, make: Callable[[], str]) -> str:
    """Read a key file, creating it from ``make()`` if it does not exist."""
    return _load_or_create(path, lambda: make().encode()).decode()


def _load_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        pass
    else:
        make_private(path, strict=False)
        return data
    make_dirs(path.parent)
    # Written whole (mode 0600) beside it, then linked into place: the link fails if
    # another process got there first, and nobody ever reads a half-written key.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".new-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(make())
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # theirs wins
    finally:
        os.unlink(temporary)
    return path.read_bytes()
