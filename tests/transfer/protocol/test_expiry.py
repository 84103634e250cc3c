"""The expiration extension: ``Upload-Expires`` on every unfinished upload; past it, the
upload is gone (410) and the cleanup removes its bytes, unless a chunk was being written
to it at that moment."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from tests.transfer.site import EXPIRY_HOURS, Site, upload_id


def test_expired_uploads_are_gone_and_cleaned_up(limited: Site) -> None:
    url = limited.new_upload(10)
    response = limited.patch(url, b"abc", 0)
    assert response.status_code == 204
    expires = parsedate_to_datetime(response.headers["Upload-Expires"])
    assert expires - datetime.now(UTC) < timedelta(seconds=5)
    assert limited.received(url) == b"abc"
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1.1)  # header has 1 s resolution

    head = limited.head(url)
    assert head.status_code == 410, head.status_code
    response = limited.patch(url, b"def", 3)
    assert response.status_code == 410
    assert "expired" in response.text
    assert limited.received(url) == b"abc"  # nothing was added

    result = limited.server.cli("uploads", "cleanup")
    assert upload_id(url) in result.stdout.split()
    assert limited.received(url) is None
    assert limited.head(url).status_code == 410
    assert upload_id(url) not in limited.server.cli("uploads", "cleanup").stdout.split()


def test_cleanup_spares_an_upload_whose_chunk_was_in_flight(limited: Site) -> None:
    """The cleanup lists expired uploads, then takes each one's lock. A chunk that held the
    lock meanwhile has moved the expiry on: that upload is alive and must be kept."""
    url = limited.new_upload(20)
    created = time.monotonic()

    def slow() -> Iterator[bytes]:  # the chunk outlives the upload's original expiry
        for _ in range(14):
            yield b"x"
            time.sleep(0.5)

    with ThreadPoolExecutor(1) as pool:
        patch = pool.submit(limited.patch, url, slow(), 0)
        time.sleep(max(0.0, created + EXPIRY_HOURS * 3600 + 1.0 - time.monotonic()))
        assert not patch.done()
        cleaned = limited.server.cli("uploads", "cleanup")  # lists it as expired, then waits for its lock
        assert patch.result().status_code == 204
    assert upload_id(url) not in cleaned.stdout.split()
    assert limited.received(url) == b"x" * 14
    assert limited.head(url).status_code == 200
    assert limited.patch(url, b"y" * 6, 14).status_code == 204
    assert limited.original(url) == b"x" * 14 + b"y" * 6
