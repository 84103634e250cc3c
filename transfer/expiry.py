"""When an upload expires, and when the cleanup may remove one. Pure: the clock is passed in.

Two limits apply to an unfinished upload: it expires when left untouched for ``idle``, and
whatever happens it expires ``lifetime`` after it began (so a client that sends a byte
every few minutes cannot keep storage reserved for ever). A finished partial upload
expires ``idle`` after its last byte unless a final upload takes it first; once taken
(consumed), its own copy is no longer needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from transfer.info import UploadInfo


@dataclass(frozen=True)
class Expiry:
    idle: timedelta | None = timedelta(days=7)
    lifetime: timedelta | None = None

    def next_expiry(self, info: UploadInfo, now: datetime) -> datetime | None:
        """The expiry to record after ``info`` was touched at ``now``."""
        limits = [] if self.idle is None else [now + self.idle]
        if self.lifetime is not None and info.created_at is not None and not info.finished:
            limits.append(info.created_at + self.lifetime)
        return min(limits, default=None)

    def expired(self, info: UploadInfo, now: datetime) -> bool:
        """Too late to write to, or to use in a final upload."""
        if info.finished:
            # Evidence is kept as received; a finished partial upload waits for a final
            # upload until its expiry.
            return info.concat == "partial" and info.expires_at is not None and info.expires_at <= now
        if info.is_complete:
            return False  # every byte arrived: it is to be finished, never discarded
        if info.expires_at is not None and info.expires_at <= now:
            return True
        # Also for an upload recorded before the lifetime was shortened.
        return self.lifetime is not None and info.created_at is not None and info.created_at + self.lifetime <= now


def removable(info: UploadInfo, expiry: Expiry, now: datetime) -> bool:
    """May the cleanup discard ``info`` and its stored bytes? Unfinished uploads past
    their expiry, and finished partial uploads that were consumed or expired; never a
    finished upload that is not a partial one, nor one whose bytes have all arrived."""
    if info.terminated:
        return False
    if info.finished and info.concat != "partial":
        return False
    return info.consumed or expiry.expired(info, now)
