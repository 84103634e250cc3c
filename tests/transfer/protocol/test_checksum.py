"""The checksum extension: a chunk with ``Upload-Checksum`` is stored only if its digest
matches (460 otherwise, and nothing of it counts), in sha1, sha256 and md5."""

from __future__ import annotations

import pytest

from tests.transfer.site import Site, b64, data, digest


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "md5"])
def test_checksum_mismatch_is_460_and_the_right_checksum_is_accepted(site: Site, algorithm: str) -> None:
    url = site.new_upload(8)
    assert site.patch(url, b"abcd", 0, **{"Upload-Checksum": digest(algorithm, b"abcd")}).status_code == 204
    response = site.patch(url, b"efgh", 4, **{"Upload-Checksum": digest(algorithm, b"efgX")})
    assert response.status_code == 460, response.text
    assert algorithm in response.text
    assert site.offset(url) == 4
    assert site.received(url) == b"abcd"
    response = site.patch(url, b"efgh", 4, **{"Upload-Checksum": digest(algorithm, b"efgh")})
    assert response.status_code == 204
    assert response.headers["Upload-Offset"] == "8"
    assert site.original(url) == b"abcdefgh"


def test_a_large_chunk_with_a_checksum_is_verified_whole(site: Site) -> None:
    payload = data(3 * 1024 * 1024 + 5, seed=3)
    url = site.new_upload(len(payload))
    bad = bytearray(payload)
    bad[-1] ^= 1
    response = site.patch(url, bytes(bad), 0, **{"Upload-Checksum": digest("sha256", payload)})
    assert response.status_code == 460
    assert site.offset(url) == 0
    assert site.received(url) == b""
    assert site.patch(url, payload, 0, **{"Upload-Checksum": digest("sha256", payload)}).status_code == 204
    assert site.original(url) == payload


@pytest.mark.parametrize("header", ["crc32 AAAAAA==", "sha512 " + b64(b"x" * 64), "sha1", "sha1 !!!"])
def test_unsupported_or_malformed_checksum_is_400(site: Site, header: str) -> None:
    url = site.new_upload(4)
    response = site.patch(url, b"abcd", 0, **{"Upload-Checksum": header})
    assert response.status_code == 400, response.text
    assert site.offset(url) == 0
    assert site.received(url) == b""


def test_creation_with_upload_and_a_wrong_checksum_creates_nothing(site: Site) -> None:
    before = site.snapshot()
    response = site.create(4, body=b"abcd", **{"Upload-Checksum": digest("sha1", b"abcX")})
    assert response.status_code == 460, response.text
    assert site.snapshot() == before
    response = site.create(4, body=b"abcd", **{"Upload-Checksum": digest("md5", b"abcd")})
    assert response.status_code == 201
    assert response.headers["Upload-Offset"] == "4"
    assert site.original(response.headers["Location"]) == b"abcd"
