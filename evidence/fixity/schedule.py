"""When each stored object is due for its next fixity check. Pure: no database, no clock.

Every object has its own place in the cycle, a fraction of it taken from a hash of the object's
id: its checks fall on the points ``EPOCH + (phase + k) x cycle``. An object is due at the first
such point after it was last verified (checked by an audit, or hashed when it was stored). So
each object is checked once a cycle, an object checked outside its turn (``--all``) is not
due again until its next point, and a day's uploads, or a whole vault migrated at once, come
due spread evenly over the following cycle rather than together.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def phase(object_id: str) -> float:
    """The object's place in the cycle, in [0, 1)."""
    return int.from_bytes(hashlib.sha256(object_id.encode()).digest()[:8], "big") / 2**64


def next_due(verified: datetime, object_id: str, cycle: timedelta) -> datetime:
    """The first point of the object's own grid strictly after ``verified``: at most one cycle on."""
    if cycle <= timedelta(0):
        raise ValueError("the cycle must be longer than nothing")
    start = EPOCH + cycle * phase(object_id)
    turns = math.floor((verified - start) / cycle) + 1
    due = start + cycle * turns
    # Float rounding can land a point a microsecond either side of ``verified``.
    while due <= verified:
        due += cycle
    while due - cycle > verified:
        due -= cycle
    return due
