"""Reviewers' requests counted in memory between flushes to the ``link_access`` table.

A video player reads a proxy in hundreds of Range requests; committing a row update for
each made the database, not the file, the limit of how fast reviewers are served. The first
request of each (link, viewer, key, window) is still written at once, with its ledger entry
(:func:`evidence.links.record.tally`); the ones after it in the same window only add to a
count here, which the gate writes every couple of seconds (:meth:`Pending.take`, then
:func:`evidence.links.record.add_counts`), so the window's summary, written when it closes,
tells of them.

What this gives up, on purpose: a process that dies loses the counts it has not flushed yet,
so a window's summary may then tell of fewer requests, bytes or ranges than were served. The
ledger still holds the window's first entry (the access itself), and the gate never keeps a
refusal, a new view session or a whole-file download here: those are written before the
answer goes out.

Memory is bounded: a key is only counted here once its row exists (which took a write and
a ledger entry), at most ``max_keys`` keys are remembered or pending, and each key's byte
ranges are merged down to :data:`evidence.links.window.MAX_RANGES`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from evidence.links.window import Range, bounded, coalesce

# (link id, viewer, key, window start): one row of ``link_access``.
RowKey = tuple[str, str, str, datetime]


@dataclass
class Count:
    """Requests of one row not yet written to it."""

    item_id: str | None
    last_at: datetime
    requests: int = 0
    bytes_sent: int = 0
    ranges: list[list[int]] = field(default_factory=list)
    ranges_exact: bool = True

    def add(self, now: datetime, sent: Range | None, keep_ranges: bool) -> None:
        self.requests += 1
        self.last_at = max(self.last_at, now)
        if sent is not None:
            self.bytes_sent += sent[1] - sent[0] + 1
            if keep_ranges:
                self.ranges, exact = bounded(coalesce(self.ranges, sent))
                self.ranges_exact = self.ranges_exact and exact

    def merge(self, other: Count) -> None:
        """Fold in counts taken earlier that could not be written (the database was down)."""
        self.requests += other.requests
        self.bytes_sent += other.bytes_sent
        self.last_at = max(self.last_at, other.last_at)
        self.ranges, exact = bounded(coalesce([*self.ranges, *other.ranges]))
        self.ranges_exact = self.ranges_exact and other.ranges_exact and exact


class Pending:
    def __init__(self, max_keys: int = 10_000) -> None:
        self.max_keys = max_keys
        self._lock = threading.Lock()
        # Rows this process knows exist, with their window's end: a later request of the
        # same window may then be counted here. Forgetting one early costs one write.
        self._known: OrderedDict[RowKey, datetime] = OrderedDict()
        self._counts: dict[RowKey, Count] = {}

    def remember(self, key: RowKey, window_end: datetime) -> None:
        with self._lock:
            self._known[key] = window_end
            self._known.move_to_end(key)
            while len(self._known) > self.max_keys:
                self._known.popitem(last=False)

    def add(self, key: RowKey, item_id: str | None, now: datetime, sent: Range | None, keep_ranges: bool) -> bool | None:
        """Count a request of a row this process knows exists, in a window still open. None
        when the row is not known here (the caller writes the request itself); otherwise
        whether the pending counts are now so many that the caller should flush them."""
        with self._lock:
            window_end = self._known.get(key)
            if window_end is None or now >= window_end:
                return None
            count = self._counts.get(key)
            if count is None:
                count = self._counts[key] = Count(item_id, now)
            count.add(now, sent, keep_ranges)
            return len(self._counts) >= self.max_keys

    def take(self, now: datetime) -> dict[RowKey, Count]:
        """Everything pending, to be written; and rows of windows that have ended forgotten."""
        with self._lock:
            taken, self._counts = self._counts, {}
            for key in [k for k, end in self._known.items() if end <= now]:
                del self._known[key]
            return taken

    def give_back(self, counts: dict[RowKey, Count]) -> None:
        """Counts that could not be written, kept for the next flush (up to ``max_keys``)."""
        with self._lock:
            for key, count in counts.items():
                mine = self._counts.get(key)
                if mine is not None:
                    mine.merge(count)
                elif len(self._counts) < self.max_keys:
                    self._counts[key] = count

    def __len__(self) -> int:
        with self._lock:
            return len(self._counts)
