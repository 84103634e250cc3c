"""HEAD: where an upload stands (offset, length, expiry) and what it was created with
(metadata), so a client can resume it; never a body, never cached."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from tests.transfer.site import Site, data, metadata, upload_id


def test_head_describes_a_finished_upload_and_gives_back_its_metadata(site: Site) -> None:
    payload = data(2_000, seed=1)
    meta = metadata(filename="CCTV 01 ✓.mp4", case=site.case, exhibit="JD/1", filetype="video/mp4",
                    description="cam 3", flag="")
    url = site.new_upload(len(payload), body=payload, meta=meta)
    head = site.head(url)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == str(len(payload))
    assert head.headers["Cache-Control"] == "no-store"
    assert head.headers["Tus-Resumable"] == "1.0.0"
    assert "Upload-Expires" not in head.headers  # finished: it no longer expires
    assert "Upload-Concat" not in head.headers
    assert head.content == b""
    pairs = [pair.partition(" ") for pair in head.headers["Upload-Metadata"].split(",")]
    assert {key: base64.b64decode(value).decode() for key, _, value in pairs} == {
        "filename": "CCTV 01 ✓.mp4", "case": site.case, "exhibit": "JD/1",
        "filetype": "video/mp4", "description": "cam 3", "flag": ""}


def test_chunks_then_head_then_resume(site: Site) -> None:
    payload = data(50_000, seed=2)
    url = site.new_upload(len(payload))
    head = site.head(url)
    assert head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Length"] == str(len(payload))
    expires = parsedate_to_datetime(head.headers["Upload-Expires"])
    assert timedelta(days=6) < expires - datetime.now(UTC) <= timedelta(days=7)
    uid = upload_id(url)
    assert site.api(f"/api/v1/uploads/{uid}").json()["item"] is None
    offset = 0
    for size in (1, 20_000, 29_999):
        response = site.patch(url, payload[offset:offset + size], offset)
        assert response.status_code == 204, response.text
        offset += size
        assert response.headers["Upload-Offset"] == str(offset)
        if offset < len(payload):
            assert site.offset(url) == offset
            assert site.received(url) == payload[:offset]
    # A repeated final PATCH with nothing left changes nothing.
    assert site.patch(url, b"", len(payload)).status_code == 204
    assert site.original(url) == payload
    assert site.api(f"/api/v1/uploads/{uid}").json()["item"] is not None


def test_head_of_a_deferred_length_upload_says_so(site: Site) -> None:
    url = site.new_upload(None, **{"Upload-Defer-Length": "1"})
    assert site.patch(url, b"abc", 0).status_code == 204
    head = site.head(url)
    assert head.headers["Upload-Defer-Length"] == "1"
    assert head.headers["Upload-Offset"] == "3"
    assert "Upload-Length" not in head.headers
    assert "Upload-Expires" in head.headers
