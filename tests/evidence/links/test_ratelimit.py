"""The in-memory request limit (GCRA): bursts, the steady rate, and bounded memory."""

from __future__ import annotations

import pytest

from evidence.links.ratelimit import RateLimiter


def test_a_burst_passes_then_the_steady_rate() -> None:
    limiter = RateLimiter(60, 60.0)  # one a second, bursts of 60
    assert all(limiter.wait("k", 100.0) == 0 for _ in range(60))
    assert limiter.wait("k", 100.0) == pytest.approx(1.0)
    assert limiter.wait("k", 100.5) == pytest.approx(0.5)
    assert limiter.wait("k", 101.0) == 0 and limiter.wait("k", 101.0) > 0
    assert limiter.wait("other", 101.0) == 0  # keys are apart


def test_refused_requests_are_not_counted() -> None:
    limiter = RateLimiter(1, 10.0)
    assert limiter.wait("k", 0.0) == 0
    for _ in range(100):
        assert limiter.wait("k", 5.0) == pytest.approx(5.0)
    assert limiter.wait("k", 10.0) == 0


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(1, 60.0, max_keys=100)
    for n in range(1000):
        limiter.wait(n, 0.0)
    assert len(limiter._arrival) == 100
    with pytest.raises(ValueError):
        RateLimiter(0, 1.0)
