"""Requests counted in memory between flushes (evidence.links.pending): only for rows known
to exist and windows still open, byte ranges merged and bounded, memory bounded, and counts
that could not be written kept for the next flush."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from evidence.links.pending import Count, Pending, RowKey
from evidence.links.window import MAX_RANGES

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
END = T0 + timedelta(minutes=30)


def _key(n: int = 0) -> RowKey:
    return ("l" * 32, f"203.0.113.{n}", "download:i", T0)


def test_a_row_not_known_here_is_left_to_the_caller() -> None:
    pending = Pending()
    assert pending.add(_key(), "i", T0, (0, 9), keep_ranges=True) is None
    pending.remember(_key(), END)
    assert pending.add(_key(), "i", T0 + timedelta(seconds=1), (0, 9), keep_ranges=True) is False
    # Past its window's end the row is another window's business: written by the caller.
    assert pending.add(_key(), "i", END, (0, 9), keep_ranges=True) is None
    taken = pending.take(T0)
    assert list(taken) == [_key()] and taken[_key()].requests == 1
    assert pending.take(T0) == {}  # taken once


def test_counts_and_ranges_add_up_and_stay_bounded() -> None:
    pending = Pending()
    pending.remember(_key(), END)
    for n in range(200):  # separate ranges, many more than a record keeps
        pending.add(_key(), "i", T0 + timedelta(milliseconds=n), (n * 10, n * 10 + 4), keep_ranges=True)
    count = pending.take(T0)[_key()]
    assert count.requests == 200 and count.bytes_sent == 1000
    assert len(count.ranges) == MAX_RANGES and not count.ranges_exact
    assert count.ranges[0][0] == 0 and count.ranges[-1][1] == 1994  # still covering every byte served
    assert count.last_at == T0 + timedelta(milliseconds=199)


def test_views_keep_no_ranges() -> None:
    pending = Pending()
    pending.remember(_key(), END)
    pending.add(_key(), "i", T0, (0, 99), keep_ranges=False)
    count = pending.take(T0)[_key()]
    assert count.ranges == [] and count.bytes_sent == 100


def test_memory_is_bounded_and_a_full_buffer_asks_for_a_flush() -> None:
    pending = Pending(max_keys=3)
    for n in range(5):
        pending.remember(_key(n), END)
    # The two oldest rows were forgotten: their next requests go to the database again.
    assert pending.add(_key(0), "i", T0, None, keep_ranges=False) is None
    assert [pending.add(_key(n), "i", T0, None, keep_ranges=False) for n in (2, 3, 4)] == [False, False, True]
    assert len(pending) == 3


def test_ended_windows_are_forgotten_when_taken() -> None:
    pending = Pending()
    pending.remember(_key(), END)
    pending.take(END)
    assert pending.add(_key(), "i", T0, None, keep_ranges=False) is None


def test_counts_given_back_merge_with_new_ones() -> None:
    pending = Pending()
    pending.remember(_key(), END)
    pending.add(_key(), "i", T0, (0, 9), keep_ranges=True)
    failed = pending.take(T0)
    pending.add(_key(), "i", T0 + timedelta(seconds=2), (20, 29), keep_ranges=True)
    pending.give_back(failed)
    count = pending.take(T0)[_key()]
    assert (count.requests, count.bytes_sent, count.ranges) == (2, 20, [[0, 9], [20, 29]])
    assert count.last_at == T0 + timedelta(seconds=2)
    # Given back into an empty buffer, they are kept as they were.
    pending.give_back({_key(): Count("i", T0, 1, 5, [[0, 4]])})
    assert pending.take(T0)[_key()].ranges == [[0, 4]]
