"""Hashing a stream at a bounded rate, in fixed memory.

The audit reads stored objects beside uploads and processing that use the same storage: its
reading is paced so that over the whole run it takes at most ``bytes_per_second`` (each read
waits until the bytes read so far are within the rate), with one block of memory however large
the object.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

BLOCK = 1024 * 1024


class Pace:
    """A run's reading budget: ``spend(n)`` returns once reading ``n`` more bytes keeps the run's
    average at or under the rate (0: no bound)."""

    def __init__(self, bytes_per_second: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = bytes_per_second
        self._clock, self._sleep = clock, sleep
        self.started = clock()
        self.spent = 0
        self.waited = 0.0

    def spend(self, count: int) -> None:
        self.spent += count
        if self.rate <= 0:
            return
        ahead = self.started + self.spent / self.rate - self._clock()
        if ahead > 0:
            self._sleep(ahead)
            self.waited += ahead

    def elapsed(self) -> float:
        return self._clock() - self.started


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int
    # The bytes themselves, when they were asked for and no more than ``keep`` (an index).
    data: bytes | None = None


def hash_paced(stream: BinaryIO, pace: Pace, keep: int = 0) -> Digest:
    """SHA-256 and size of ``stream`` read to its end at ``pace``; with ``keep``, the bytes too
    while there are no more than that (beyond it they are dropped, not held)."""
    digest = hashlib.sha256()
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    kept: bytearray | None = bytearray() if keep else None
    size = 0
    readinto = cast(Any, stream).readinto  # every stream the readers give is an io stream
    while True:
        count = readinto(view)
        if not count:
            break
        digest.update(view[:count])
        size += count
        if kept is not None:
            if size <= keep:
                kept += view[:count]
            else:
                kept = None
        pace.spend(count)
    return Digest(digest.hexdigest(), size, bytes(kept) if kept is not None else None)
