"""Hashing at a bounded rate in fixed memory: the digest is SHA-256's, the run never reads
faster than its rate on average, and memory does not grow with the object."""

from __future__ import annotations

import hashlib
import io
import random
import tracemalloc
from typing import Any

from evidence.fixity.pace import BLOCK, Pace, hash_paced


def test_the_digest_and_size_are_sha256s_for_any_length() -> None:
    rng = random.Random(3)
    for size in (0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17):
        data = rng.randbytes(size)
        found = hash_paced(io.BytesIO(data), Pace(0))
        assert (found.sha256, found.size, found.data) == (hashlib.sha256(data).hexdigest(), size, None)


def test_the_bytes_are_kept_only_up_to_the_limit() -> None:
    data = bytes(range(256)) * 4096 * 3  # 3 MiB
    assert hash_paced(io.BytesIO(data), Pace(0), keep=len(data)).data == data
    assert hash_paced(io.BytesIO(data), Pace(0), keep=len(data) - 1).data is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_reading_never_runs_ahead_of_the_rate() -> None:
    fake = FakeClock()
    pace = Pace(1000, clock=fake.clock, sleep=fake.sleep)
    for _ in range(50):
        fake.now += 0.01  # reading itself takes a little time
        pace.spend(300)
        assert pace.spent / pace.elapsed() <= 1000 + 1e-9
    assert fake.now >= 50 * 300 / 1000


def test_an_unbounded_pace_never_waits() -> None:
    fake = FakeClock()
    pace = Pace(0, clock=fake.clock, sleep=fake.sleep)
    pace.spend(10**12)
    assert fake.slept == []


class Zeros(io.RawIOBase):
    """``size`` bytes produced on demand: nothing of the stream is ever held."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.left)
        memoryview(buffer)[:count] = bytes(count)
        self.left -= count
        return count


def test_memory_stays_flat_as_the_object_grows() -> None:
    peaks = []
    for size in (8 * BLOCK, 128 * BLOCK):
        tracemalloc.start()
        hash_paced(Zeros(size), Pace(0))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 3 * BLOCK and peaks[1] < peaks[0] + BLOCK, peaks
