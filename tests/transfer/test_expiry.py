"""transfer.expiry: idle expiry, the absolute lifetime, and what the cleanup may remove."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from transfer.expiry import Expiry, removable
from transfer.info import UploadInfo

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
EXPIRY = Expiry(idle=2 * HOUR, lifetime=10 * HOUR)


def upload(**state: Any) -> UploadInfo:
    made = UploadInfo(id="u", owner="me", storage_key="originals/u", size=10, offset=3, created_at=NOW - HOUR,
                      expires_at=NOW + HOUR)
    return replace(made, **state)


def test_touching_renews_the_idle_expiry_up_to_the_lifetime() -> None:
    assert EXPIRY.next_expiry(upload(), NOW) == NOW + 2 * HOUR
    late = upload(created_at=NOW - 9 * HOUR)
    assert EXPIRY.next_expiry(late, NOW) == NOW + HOUR  # created + 10 h, not now + 2 h
    assert EXPIRY.next_expiry(upload(created_at=NOW - 11 * HOUR), NOW) == NOW - HOUR


def test_a_finished_partial_gets_a_fresh_wait_whatever_its_age() -> None:
    done = upload(concat="partial", finished=True, offset=10, created_at=NOW - 9 * HOUR)
    assert EXPIRY.next_expiry(done, NOW) == NOW + 2 * HOUR


def test_without_idle_expiry_the_lifetime_still_holds() -> None:
    assert Expiry(idle=None, lifetime=10 * HOUR).next_expiry(upload(), NOW) == NOW + 9 * HOUR
    assert Expiry(idle=None, lifetime=None).next_expiry(upload(), NOW) is None


def test_what_is_expired() -> None:
    assert not EXPIRY.expired(upload(), NOW)
    assert EXPIRY.expired(upload(expires_at=NOW), NOW)
    # Past the lifetime even if a later expiry was recorded (say, before the setting changed).
    assert EXPIRY.expired(upload(created_at=NOW - 10 * HOUR, expires_at=NOW + HOUR), NOW)
    # Every byte arrived: to be finished, never expired.
    assert not EXPIRY.expired(upload(offset=10, expires_at=NOW - HOUR), NOW)
    # Finished evidence never expires; a finished partial does.
    assert not EXPIRY.expired(upload(offset=10, finished=True, expires_at=NOW - HOUR), NOW)
    assert EXPIRY.expired(upload(offset=10, finished=True, concat="partial", expires_at=NOW - HOUR), NOW)
    assert not EXPIRY.expired(upload(offset=10, finished=True, concat="partial", expires_at=NOW + HOUR), NOW)


def test_what_the_cleanup_may_remove() -> None:
    assert removable(upload(expires_at=NOW - HOUR), EXPIRY, NOW)
    assert not removable(upload(), EXPIRY, NOW)
    assert not removable(upload(expires_at=NOW - HOUR, terminated=True), EXPIRY, NOW)
    assert not removable(upload(offset=10, expires_at=NOW - HOUR), EXPIRY, NOW)  # complete: finish it
    partial = {"concat": "partial", "finished": True, "offset": 10}
    assert removable(upload(**partial, consumed=True), EXPIRY, NOW)  # used: its copy is spare
    assert removable(upload(**partial, expires_at=NOW - HOUR), EXPIRY, NOW)  # never used in time
    assert not removable(upload(**partial), EXPIRY, NOW)  # still waiting for its final upload
    for concat in (None, "final"):  # originals: never, whatever the flags say
        assert not removable(upload(concat=concat, finished=True, offset=10, consumed=True,
                                    expires_at=NOW - HOUR), EXPIRY, NOW)
