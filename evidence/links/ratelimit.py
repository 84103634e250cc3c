"""A request-rate limit per key, in memory: the generic cell rate algorithm (GCRA).

One timestamp per key (the "theoretical arrival time"), so memory is small and bounded;
a burst of up to ``burst`` requests passes at once, after which requests pass at the
steady rate. Per process on purpose: a refusal must cost nothing (no database write per
hostile request), and with N API processes a client gets at most N times the rate, which
still bounds it. What must agree across processes (the custody record, link uses) lives
in the database, not here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class RateLimiter:
    def __init__(self, count: int, per_seconds: float, burst: int | None = None, max_keys: int = 100_000) -> None:
        if count < 1 or per_seconds <= 0:
            raise ValueError("a rate needs a positive count and period")
        self.interval = per_seconds / count
        self.burst = burst or count
        self._max_keys = max_keys
        self._arrival: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, key: Hashable, now: float) -> float:
        """0 when a request for ``key`` at ``now`` (seconds) may pass, and counts it;
        otherwise the seconds until one may (and nothing is counted)."""
        with self._lock:
            arrival = max(self._arrival.get(key, now), now)
            allowed_from = arrival - (self.burst - 1) * self.interval
            if now < allowed_from:
                return allowed_from - now
            self._arrival[key] = arrival + self.interval
            self._arrival.move_to_end(key)
            while len(self._arrival) > self._max_keys:
                # The least recently admitted key: almost always one whose limit has long
                # lapsed; forgetting it early only ever lets a request through.
                self._arrival.popitem(last=False)
            return 0.0
