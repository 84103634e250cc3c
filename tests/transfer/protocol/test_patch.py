"""PATCH: a chunk at the upload's offset. A chunk refused for any reason (wrong type,
wrong offset, too long) keeps nothing of itself and leaves the offset where it was; the
client resumes from the offset HEAD reports."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
import requests

from tests.transfer.site import LIMIT, OCTET, Site, data


def test_a_chunk_past_the_upload_length_is_413_and_nothing_of_it_is_kept(site: Site) -> None:
    url = site.new_upload(10)
    assert site.patch(url, b"abcd", 0).status_code == 204
    response = site.patch(url, b"efghijk", 4)  # 11 bytes in all
    assert response.status_code == 413, response.text
    assert site.offset(url) == 4
    assert site.received(url) == b"abcd"
    assert site.patch(url, b"efghij", 4).status_code == 204
    assert site.offset(url) == 10
    assert site.original(url) == b"abcdefghij"


def test_a_chunked_body_past_the_length_is_413_and_later_chunks_resume_cleanly(site: Site) -> None:
    size = 1024 * 1024 + 10
    payload = data(size, seed=7)
    url = site.new_upload(size)

    def too_much() -> Iterator[bytes]:  # no Content-Length: the server finds out while reading
        for _ in range(0, 2 * size, 256 * 1024):
            yield data(256 * 1024, seed=9)

    try:
        response = site.patch(url, too_much(), 0)
        assert response.status_code == 413
    except requests.ConnectionError:
        pass  # the server may close the connection on a body it refused
    assert site.offset(url) == 0
    assert site.received(url) == b""
    assert site.patch(url, payload, 0).status_code == 204
    assert hashlib.sha256(site.original(url) or b"").digest() == hashlib.sha256(payload).digest()


def test_a_deferred_length_above_the_maximum_is_413(limited: Site) -> None:
    url = limited.new_upload(None, **{"Upload-Defer-Length": "1"})
    response = limited.patch(url, b"", 0, **{"Upload-Length": str(LIMIT + 1)})
    assert response.status_code == 413
    response = limited.patch(url, data(LIMIT + 1), 0)
    assert response.status_code == 413
    head = limited.head(url)
    assert head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Defer-Length"] == "1"
    assert limited.received(url) == b""


@pytest.mark.parametrize("content_type", [None, "application/octet-stream", "text/plain",
                                          "application/offset+octet-streamx"])
def test_patch_with_the_wrong_content_type_is_415(site: Site, content_type: str | None) -> None:
    url = site.new_upload(10)
    headers = {**site.headers(), "Upload-Offset": "0"}
    if content_type:
        headers["Content-Type"] = content_type
    response = site.http.patch(url, headers=headers, data=b"x" * 10)
    assert response.status_code == 415, response.text
    assert "application/offset+octet-stream" in response.text
    assert site.offset(url) == 0
    assert site.received(url) == b""


def test_patch_at_the_wrong_offset_is_409(site: Site) -> None:
    url = site.new_upload(10)
    assert site.patch(url, b"abc", 0).status_code == 204
    for wrong in (0, 2, 4, 10):
        response = site.patch(url, b"def", wrong)
        assert response.status_code == 409, (wrong, response.text)
        assert "is at 3" in response.text
    assert site.offset(url) == 3
    assert site.received(url) == b"abc"


@pytest.mark.parametrize("offset", [None, "", "-1", "abc", "1.0"])
def test_patch_with_a_missing_or_bad_offset_is_400(site: Site, offset: str | None) -> None:
    url = site.new_upload(10)
    headers = {**site.headers(), **OCTET}
    if offset is not None:
        headers["Upload-Offset"] = offset
    assert site.http.patch(url, headers=headers, data=b"abc").status_code == 400
    assert site.offset(url) == 0


def test_a_patch_to_a_finished_upload_changes_nothing(site: Site) -> None:
    url = site.new_upload(3, body=b"abc")
    before = site.snapshot()
    response = site.patch(url, b"", 3)
    assert response.status_code == 204
    assert response.headers["Upload-Offset"] == "3"
    assert site.snapshot() == before
    assert site.original(url) == b"abc"
