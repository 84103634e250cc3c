"""What a witness keeps for each log it witnesses: the size and root it last cosigned.

One small file per log in the state folder, named by the SHA-256 of the log's origin (a
configured origin only: nothing a client sends becomes a path). An update is written to a
temporary file, flushed to disk, renamed over the old one and the folder synced: after a crash
the file holds the old state or the new one, never a mix, and an answer is sent only after
the new state is durable (the spec: persist before responding). Updates of one log are
serialised, across threads and processes (`lock`), so check-then-write is atomic.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from audit.witness import LogState

_MAX_STATE_BYTES = 4096


class StateStore:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.folder = folder
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _path(self, origin: str, suffix: str) -> Path:
        return self.folder / (hashlib.sha256(origin.encode("utf-8")).hexdigest() + suffix)

    @contextmanager
    def lock(self, origin: str) -> Iterator[None]:
        """Held while one request for ``origin`` reads, checks and writes its state."""
        with self._guard:
            local = self._locks.setdefault(origin, threading.Lock())
        with local, open(self._path(origin, ".lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # another process serving the same folder
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def read(self, origin: str) -> LogState | None:
        try:
            with open(self._path(origin, ".json"), "rb") as handle:
                data = json.loads(handle.read(_MAX_STATE_BYTES + 1))
        except FileNotFoundError:
            return None
        if data.get("origin") != origin:
            raise ValueError(f"the state file for {origin!r} names another log")
        return LogState(int(data["size"]), base64.b64decode(data["root"], validate=True))

    def write(self, origin: str, state: LogState) -> None:
        data = json.dumps({"origin": origin, "size": state.size,
                           "root": base64.b64encode(state.root).decode("ascii")}).encode()
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".new-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self._path(origin, ".json"))
        except BaseException:
            os.unlink(temporary)
            raise
        folder = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself survives a crash
        finally:
            os.close(folder)
