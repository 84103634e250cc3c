"""The tus 1.0.0 protocol over real HTTP, against a real ``evidence serve`` on SQLite and on
PostgreSQL. Every refusal is checked twice: the status (and what the body says), and that
nothing was half-written: no upload row, no custody event, no file, no moved offset.

The servers (one per database, plus small short-lived ones for the size and expiry limits)
come from conftest.py and are shared with the other tus tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import jwt
import pytest
import requests

from tests.transfer.site import EXPIRY_HOURS, LIMIT, OCTET, TUS, Site, b64, data, digest, metadata, upload_id

# -- OPTIONS ---------------------------------------------------------------------------


def test_options_advertises_version_extensions_size_and_checksums(site: Site) -> None:
    response = site.http.options(site.files_url)  # no token, no Tus-Resumable: discovery is open
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation", "creation-with-upload", "creation-defer-length", "termination",
        "concatenation", "checksum", "expiration",
    }
    assert response.headers["Tus-Max-Size"] == str(1024**4)
    assert response.headers["Tus-Checksum-Algorithm"].split(",") == ["sha1", "sha256", "md5"]


def test_options_reports_the_configured_max_size(limited: Site) -> None:
    assert limited.http.options(limited.files_url).headers["Tus-Max-Size"] == str(LIMIT)


# -- version and authentication --------------------------------------------------------


@pytest.mark.parametrize("version", [None, "0.2.2", "1.0", "1.0.0 ", "2.0.0"])
def test_wrong_tus_resumable_is_412_with_tus_version(site: Site, version: str | None) -> None:
    before = site.snapshot()
    headers = site.headers(**{"Upload-Length": "5", "Upload-Metadata": metadata(filename="a", case=site.case)})
    del headers["Tus-Resumable"]
    if version is not None:
        headers["Tus-Resumable"] = version
    response = site.http.post(site.files_url, headers=headers)
    if version == "1.0.0 ":  # trailing whitespace is not part of a header value (RFC 9110 5.5)
        assert response.status_code == 201
        return
    assert response.status_code == 412, response.text
    assert response.headers["Tus-Version"] == "1.0.0"
    assert "1.0.0" in response.text
    assert site.snapshot() == before


def test_wrong_tus_resumable_on_an_existing_upload_is_412(site: Site) -> None:
    url = site.new_upload(10)
    headers = {**site.headers(), **OCTET, "Upload-Offset": "0", "Tus-Resumable": "0.2.2"}
    assert site.http.patch(url, headers=headers, data=b"x" * 10).status_code == 412
    assert site.offset(url) == 0


def _token(secret: bytes, **overrides: Any) -> str:
    now = datetime.now(UTC)
    claims = {"iss": "evidence", "aud": "evidence-api", "sub": "x", "iat": int(now.timestamp()),
              "exp": int((now + timedelta(hours=1)).timestamp())}
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm="HS256")


def _bad_authorizations(site: Site) -> dict[str, str | None]:
    secret = (site.server.data_dir / "keys" / "token.secret").read_bytes()
    sub = jwt.decode(site.officer, options={"verify_signature": False})["sub"]
    hour = timedelta(hours=1)
    now = datetime.now(UTC)
    claims = {"iss": "evidence", "aud": "evidence-api", "sub": sub, "iat": int(now.timestamp()),
              "exp": int((now + hour).timestamp())}
    unsigned = ".".join(base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
                        for part in ({"alg": "none", "typ": "JWT"}, claims)) + "."
    return {
        "none": None,
        "empty bearer": "Bearer ",
        "basic scheme": "Basic " + b64("officer:secret"),
        "raw token without scheme": site.officer,
        "garbage": "Bearer not.a.jwt",
        "other secret": "Bearer " + _token(b"s" * 32, sub=sub),
        "alg none": "Bearer " + unsigned,
        "alg none, no signature part": "Bearer " + unsigned[:-1],
        "expired": "Bearer " + _token(secret, sub=sub, iat=int((now - 3 * hour).timestamp()),
                                      exp=int((now - hour).timestamp())),
        "wrong audience": "Bearer " + _token(secret, sub=sub, aud="other-api"),
        "wrong issuer": "Bearer " + _token(secret, sub=sub, iss="someone-else"),
        "no expiry": "Bearer " + _token(secret, sub=sub, exp=None),
        "unknown user": "Bearer " + _token(secret, sub="0" * 32),
        "tampered signature": "Bearer " + site.officer[:-4] + ("AAAA" if not site.officer.endswith("AAAA") else "BBBB"),
    }


def test_bad_credentials_are_401_and_create_nothing(site: Site) -> None:
    before = site.snapshot()
    url = site.new_upload(10)  # an existing upload to aim the other methods at
    after_create = site.snapshot()
    assert after_create != before
    for name, authorization in _bad_authorizations(site).items():
        headers = {**TUS, "Upload-Length": "5", "Upload-Metadata": metadata(filename="a", case=site.case)}
        if authorization is not None:
            headers["Authorization"] = authorization
        response = site.http.post(site.files_url, headers=headers)
        assert response.status_code == 401, (name, response.status_code, response.text)
        assert response.headers["Tus-Resumable"] == "1.0.0"
        headers = {**TUS, **OCTET, "Upload-Offset": "0"}
        if authorization is not None:
            headers["Authorization"] = authorization
        assert site.http.head(url, headers=headers).status_code == 401, name
        assert site.http.patch(url, headers=headers, data=b"x" * 10).status_code == 401, name
        assert site.http.delete(url, headers=headers).status_code == 401, name
    assert site.snapshot() == after_create
    assert site.offset(url) == 0


def test_expired_token_says_so(site: Site) -> None:
    expired = _bad_authorizations(site)["expired"]
    response = site.http.post(site.files_url, headers={**TUS, "Authorization": expired or "", "Upload-Length": "1"})
    assert response.status_code == 401
    assert "expired" in response.text


@pytest.mark.parametrize("email", ["cps@cps.gov.uk", "auditor@force.police.uk"])
def test_reviewers_and_auditors_cannot_upload(site: Site, email: str) -> None:
    before = site.snapshot()
    response = site.create(5, token=site.extra_tokens[email])
    assert response.status_code == 403, response.text
    assert "officer" in response.text
    assert "Location" not in response.headers
    assert site.snapshot() == before


# -- creation refused --------------------------------------------------------------------


def _creation_cases(case: str) -> dict[str, tuple[dict[str, str], str]]:
    ok = metadata(filename="clip.mp4", case=case)
    return {
        "no length": ({"Upload-Metadata": ok}, "Upload-Length or Upload-Defer-Length"),
        "length and defer": ({"Upload-Metadata": ok, "Upload-Length": "5", "Upload-Defer-Length": "1"}, "not both"),
        "defer not 1": ({"Upload-Metadata": ok, "Upload-Defer-Length": "0"}, "Upload-Defer-Length must be 1"),
        "non-numeric length": ({"Upload-Metadata": ok, "Upload-Length": "five"}, "Upload-Length must be"),
        "negative length": ({"Upload-Metadata": ok, "Upload-Length": "-1"}, "Upload-Length must be"),
        "no filename": ({"Upload-Metadata": metadata(case=case), "Upload-Length": "5"}, "'filename'"),
        "blank filename": ({"Upload-Metadata": metadata(filename="  ", case=case), "Upload-Length": "5"}, "'filename'"),
        "no case": ({"Upload-Metadata": metadata(filename="a.mp4"), "Upload-Length": "5"}, "'case'"),
        "no metadata": ({"Upload-Length": "5"}, "'filename'"),
        "bad base64": ({"Upload-Metadata": f"filename !!!,case {b64(case)}", "Upload-Length": "5"},
                       "not valid base64"),
        "non-UTF-8": ({"Upload-Metadata": metadata(filename=b"caf\xe9.mp4", case=case), "Upload-Length": "5"},
                      "not UTF-8"),
        "NUL": ({"Upload-Metadata": metadata(filename="a\x00b", case=case), "Upload-Length": "5"}, "NUL"),
        "sha256 too short": ({"Upload-Metadata": metadata(filename="a", case=case, sha256="ab" * 31),
                              "Upload-Length": "5"}, "64 hexadecimal"),
        "sha256 not hex": ({"Upload-Metadata": metadata(filename="a", case=case, sha256="zz" * 32),
                            "Upload-Length": "5"}, "64 hexadecimal"),
        "repeated key": ({"Upload-Metadata": ok + f",case {b64('OP-OTHER')}", "Upload-Length": "5"}, "repeated"),
        "huge metadata": ({"Upload-Metadata": ok + "".join(f",d{i} " + b64("x" * 3000) for i in range(5)),
                           "Upload-Length": "5"},
                          "longer than 16384"),
        "huge value": ({"Upload-Metadata": ok + ",description " + b64("d" * 5000), "Upload-Length": "5"},
                       "longer than 4096"),
        "too many keys": ({"Upload-Metadata": ok + "".join(f",k{i}" for i in range(31)), "Upload-Length": "5"},
                          "more than 32 keys"),
        "body without offset content type": ({"Upload-Metadata": ok, "Upload-Length": "5",
                                              "Content-Type": "application/octet-stream"}, "Content-Type"),
        "bad concat": ({"Upload-Metadata": ok, "Upload-Concat": "final;/elsewhere/" + "a" * 32},
                       "not on this server"),
    }


def test_bad_creations_are_refused_and_create_nothing(site: Site) -> None:
    before = site.snapshot()
    for name, (extra, message) in _creation_cases(site.case).items():
        body = b"12345" if "Content-Type" in extra else None
        response = site.http.post(site.files_url, headers={**site.headers(), **extra}, data=body)
        # Past the header caps of every request (16 KiB a value), metadata never reaches the tus parser.
        expected = {"body without offset content type": 415, "huge metadata": 431}.get(name, 400)
        assert response.status_code == expected, (name, response.status_code, response.text)
        assert message in response.text, (name, response.text)
        assert "Location" not in response.headers, name
    assert site.snapshot() == before


def test_a_path_traversal_filename_is_kept_verbatim_but_never_becomes_a_path(site: Site) -> None:
    before = site.snapshot()
    body = b"root:x:0:0"
    meta = metadata(filename="../../etc/passwd", case=site.case, exhibit="../../../../tmp/x")
    url = site.new_upload(len(body), body=body, meta=meta)
    uid = upload_id(url)
    item = site.api(f"/api/v1/uploads/{uid}").json()["item"]
    shown = site.api(f"/api/v1/items/{item}").json()
    assert shown["filename"] == "../../etc/passwd"
    assert shown["exhibit"] == "../../../../tmp/x"
    _, _, files = site.snapshot()
    assert files - before[2] == {f"originals/{uid}"}
    assert (site.vault / "originals" / uid).read_bytes() == body
    for name in files:
        assert name.split("/")[0] in ("originals", ".uploads", "uploads", "derivatives"), name
        assert "passwd" not in name and "tmp" not in name
    assert not (site.server.root / "etc").exists() and not (site.server.data_dir / "etc").exists()


# -- sizes -----------------------------------------------------------------------------


def test_upload_length_above_the_maximum_is_413(limited: Site) -> None:
    before = limited.snapshot()
    response = limited.create(LIMIT + 1)
    assert response.status_code == 413, response.text
    assert f"maximum of {LIMIT}" in response.text
    response = limited.create(LIMIT + 1, body=data(LIMIT + 1))
    assert response.status_code == 413
    assert limited.snapshot() == before
    assert limited.create(LIMIT).status_code == 201  # the limit itself is allowed


def test_deferred_length_above_the_maximum_is_413(limited: Site) -> None:
    url = limited.new_upload(None, **{"Upload-Defer-Length": "1"})
    response = limited.patch(url, b"", 0, **{"Upload-Length": str(LIMIT + 1)})
    assert response.status_code == 413
    response = limited.patch(url, data(LIMIT + 1), 0)
    assert response.status_code == 413
    head = limited.head(url)
    assert head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Defer-Length"] == "1"
    assert limited.working_file(url).stat().st_size == 0


def test_a_chunk_past_the_upload_length_is_413_and_nothing_of_it_is_kept(site: Site) -> None:
    url = site.new_upload(10)
    assert site.patch(url, b"abcd", 0).status_code == 204
    response = site.patch(url, b"efghijk", 4)  # 11 bytes in all
    assert response.status_code == 413, response.text
    assert site.offset(url) == 4
    assert site.working_file(url).read_bytes() == b"abcd"
    assert site.patch(url, b"efghij", 4).status_code == 204
    assert site.offset(url) == 10


def test_a_chunked_body_past_the_length_is_413_and_later_chunks_resume_cleanly(site: Site) -> None:
    size = 1024 * 1024 + 10
    payload = data(size, seed=7)
    url = site.new_upload(size)

    def too_much() -> Iterator[bytes]:  # no Content-Length: the server finds out while reading
        for start in range(0, 2 * size, 256 * 1024):
            yield data(256 * 1024, seed=9)

    try:
        response = site.patch(url, too_much(), 0)
        assert response.status_code == 413
    except requests.ConnectionError:
        pass  # the server may close the connection on a body it refused
    assert site.offset(url) == 0
    assert site.patch(url, payload, 0).status_code == 204
    uid = upload_id(url)
    assert hashlib.sha256((site.vault / "originals" / uid).read_bytes()).digest() == hashlib.sha256(payload).digest()


def test_creation_with_a_body_longer_than_the_length_creates_nothing(site: Site) -> None:
    before = site.snapshot()
    response = site.create(5, body=b"123456")
    assert response.status_code == 413, response.text
    assert site.snapshot() == before


# -- PATCH refused ---------------------------------------------------------------------


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
    assert site.working_file(url).stat().st_size == 0


def test_patch_at_the_wrong_offset_is_409(site: Site) -> None:
    url = site.new_upload(10)
    assert site.patch(url, b"abc", 0).status_code == 204
    for wrong in (0, 2, 4, 10):
        response = site.patch(url, b"def", wrong)
        assert response.status_code == 409, (wrong, response.text)
        assert "is at 3" in response.text
    assert site.offset(url) == 3
    assert site.working_file(url).read_bytes() == b"abc"


@pytest.mark.parametrize("offset", [None, "", "-1", "abc", "1.0"])
def test_patch_with_a_missing_or_bad_offset_is_400(site: Site, offset: str | None) -> None:
    url = site.new_upload(10)
    headers = {**site.headers(), **OCTET}
    if offset is not None:
        headers["Upload-Offset"] = offset
    assert site.http.patch(url, headers=headers, data=b"abc").status_code == 400
    assert site.offset(url) == 0


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "md5"])
def test_checksum_mismatch_is_460_and_the_right_checksum_is_accepted(site: Site, algorithm: str) -> None:
    url = site.new_upload(8)
    assert site.patch(url, b"abcd", 0, **{"Upload-Checksum": digest(algorithm, b"abcd")}).status_code == 204
    response = site.patch(url, b"efgh", 4, **{"Upload-Checksum": digest(algorithm, b"efgX")})
    assert response.status_code == 460, response.text
    assert algorithm in response.text
    assert site.offset(url) == 4
    assert site.working_file(url).read_bytes() == b"abcd"
    response = site.patch(url, b"efgh", 4, **{"Upload-Checksum": digest(algorithm, b"efgh")})
    assert response.status_code == 204
    assert response.headers["Upload-Offset"] == "8"
    assert (site.vault / "originals" / upload_id(url)).read_bytes() == b"abcdefgh"


def test_a_large_chunk_with_a_checksum_is_verified_whole(site: Site) -> None:
    payload = data(3 * 1024 * 1024 + 5, seed=3)
    url = site.new_upload(len(payload))
    bad = bytearray(payload)
    bad[-1] ^= 1
    response = site.patch(url, bytes(bad), 0, **{"Upload-Checksum": digest("sha256", payload)})
    assert response.status_code == 460
    assert site.offset(url) == 0
    assert site.working_file(url).stat().st_size == 0
    assert site.patch(url, payload, 0, **{"Upload-Checksum": digest("sha256", payload)}).status_code == 204


@pytest.mark.parametrize("header", ["crc32 AAAAAA==", "sha512 " + b64(b"x" * 64), "sha1", "sha1 !!!"])
def test_unsupported_or_malformed_checksum_is_400(site: Site, header: str) -> None:
    url = site.new_upload(4)
    response = site.patch(url, b"abcd", 0, **{"Upload-Checksum": header})
    assert response.status_code == 400, response.text
    assert site.offset(url) == 0


def test_creation_with_upload_and_a_wrong_checksum_creates_nothing(site: Site) -> None:
    before = site.snapshot()
    response = site.create(4, body=b"abcd", **{"Upload-Checksum": digest("sha1", b"abcX")})
    assert response.status_code == 460, response.text
    assert site.snapshot() == before
    response = site.create(4, body=b"abcd", **{"Upload-Checksum": digest("md5", b"abcd")})
    assert response.status_code == 201
    assert response.headers["Upload-Offset"] == "4"


# -- not found, ownership --------------------------------------------------------------


def test_unknown_and_malformed_upload_ids_are_404(site: Site) -> None:
    for uid in ("0" * 32, "f" * 32, "not-an-id", "0" * 31, "..%2F..%2Fetc"):
        url = site.files_url + uid
        assert site.head(url).status_code == 404, uid
        assert site.patch(url, b"x", 0).status_code == 404, uid
        assert site.http.delete(url, headers=site.headers()).status_code == 404, uid


def test_another_officers_upload_is_404_to_every_method(site: Site) -> None:
    url = site.new_upload(6)
    assert site.patch(url, b"abc", 0).status_code == 204
    before = site.snapshot()
    other = site.other_officer
    head = site.head(url, token=other)
    assert head.status_code == 404
    assert "Upload-Offset" not in head.headers and "Upload-Metadata" not in head.headers
    assert site.patch(url, b"def", 3, token=other).status_code == 404
    assert site.http.delete(url, headers=site.headers(other)).status_code == 404
    concat = site.http.post(site.files_url, headers={**site.headers(other), "Upload-Concat": f"final;{url}",
                                                   "Upload-Metadata": metadata(filename="x", case=site.case)})
    assert concat.status_code == 400
    assert site.api(f"/api/v1/uploads/{upload_id(url)}", token=other).status_code == 404
    assert site.snapshot() == before
    assert site.offset(url) == 3
    assert site.patch(url, b"def", 3).status_code == 204


# -- the happy paths -------------------------------------------------------------------


def test_creation_with_upload_makes_an_item_and_head_describes_it(site: Site) -> None:
    payload = data(200_000, seed=1)
    sha = hashlib.sha256(payload).hexdigest()
    meta = metadata(filename="CCTV 01 ✓.mp4", case=site.case, sha256=sha.upper(), exhibit="JD/1",
                    filetype="video/mp4", description="cam 3", flag="")
    response = site.create(len(payload), body=payload, meta=meta)
    assert response.status_code == 201, response.text
    url = response.headers["Location"]
    assert url.startswith(site.files_url) and len(upload_id(url)) == 32
    assert response.headers["Upload-Offset"] == str(len(payload))
    assert "Upload-Expires" not in response.headers  # finished: it no longer expires

    head = site.head(url)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == str(len(payload))
    assert head.headers["Cache-Control"] == "no-store"
    assert head.headers["Tus-Resumable"] == "1.0.0"
    assert head.content == b""
    sent = dict(pair.split(" ") if " " in pair else (pair, "") for pair in head.headers["Upload-Metadata"].split(","))
    assert {k: base64.b64decode(v).decode() for k, v in sent.items()} == {
        "filename": "CCTV 01 ✓.mp4", "case": site.case, "sha256": sha.upper(), "exhibit": "JD/1",
        "filetype": "video/mp4", "description": "cam 3", "flag": ""}

    upload = site.api(f"/api/v1/uploads/{upload_id(url)}").json()
    assert upload["finished"] is True and upload["offset"] == upload["size"] == len(payload)
    item = site.api(f"/api/v1/items/{upload['item']}").json()
    assert item["filename"] == "CCTV 01 ✓.mp4"
    assert item["case"] == site.case
    assert item["size"] == len(payload)
    assert item["client_sha256"] == sha
    assert item["exhibit"] == "JD/1"
    assert item["state"] in ("received", "processing", "ready")
    original = site.vault / "originals" / upload_id(url)
    assert hashlib.sha256(original.read_bytes()).hexdigest() == sha
    assert original.stat().st_mode & 0o222 == 0
    assert not site.working_file(url).exists()


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
    # A repeated final PATCH with nothing left changes nothing.
    assert site.patch(url, b"", len(payload)).status_code == 204
    assert (site.vault / "originals" / uid).read_bytes() == payload
    assert site.api(f"/api/v1/uploads/{uid}").json()["item"] is not None


def test_a_zero_length_upload_completes_at_creation(site: Site) -> None:
    response = site.create(0, meta=metadata(filename="empty.txt", case=site.case))
    assert response.status_code == 201
    assert response.headers["Upload-Offset"] == "0"
    uid = upload_id(response.headers["Location"])
    item = site.api(f"/api/v1/uploads/{uid}").json()["item"]
    assert site.api(f"/api/v1/items/{item}").json()["size"] == 0
    assert (site.vault / "originals" / uid).stat().st_size == 0


def test_deferred_length_is_declared_later(site: Site) -> None:
    url = site.new_upload(None, **{"Upload-Defer-Length": "1"})
    head = site.head(url)
    assert head.headers["Upload-Defer-Length"] == "1"
    assert "Upload-Length" not in head.headers
    assert site.patch(url, b"hello ", 0).status_code == 204
    assert site.patch(url, b"x", 6, **{"Upload-Length": "5"}).status_code == 400  # smaller than what is there
    response = site.patch(url, b"world", 6, **{"Upload-Length": "11"})
    assert response.status_code == 204, response.text
    assert response.headers["Upload-Offset"] == "11"
    head = site.head(url)
    assert head.headers["Upload-Length"] == "11" and "Upload-Defer-Length" not in head.headers
    uid = upload_id(url)
    assert (site.vault / "originals" / uid).read_bytes() == b"hello world"
    item = site.api(f"/api/v1/uploads/{uid}").json()["item"]
    assert site.api(f"/api/v1/items/{item}").json()["size"] == 11


def test_a_declared_length_cannot_change(site: Site) -> None:
    url = site.new_upload(None, **{"Upload-Defer-Length": "1"})
    assert site.patch(url, b"ab", 0, **{"Upload-Length": "4"}).status_code == 204
    response = site.patch(url, b"cd", 2, **{"Upload-Length": "5"})
    assert response.status_code == 400
    assert "cannot change" in response.text
    assert site.offset(url) == 2


# -- termination -----------------------------------------------------------------------


def test_terminating_an_unfinished_upload(site: Site) -> None:
    url = site.new_upload(10)
    assert site.patch(url, b"abc", 0).status_code == 204
    working = site.working_file(url)
    assert working.exists()
    response = site.http.delete(url, headers=site.headers())
    assert response.status_code == 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert not working.exists()
    assert site.head(url).status_code in (404, 410)
    assert site.patch(url, b"def", 3).status_code in (404, 410)
    assert site.http.delete(url, headers=site.headers()).status_code in (404, 410)
    assert not (site.vault / "originals" / upload_id(url)).exists()
    assert site.api(f"/api/v1/uploads/{upload_id(url)}").json()["terminated"] is True


def test_a_finished_upload_cannot_be_terminated(site: Site) -> None:
    url = site.new_upload(3, body=b"abc")
    original = site.vault / "originals" / upload_id(url)
    before = site.snapshot()
    response = site.http.delete(url, headers=site.headers())
    assert response.status_code == 403
    assert "cannot be deleted" in response.text
    assert original.read_bytes() == b"abc"
    assert site.snapshot() == before
    assert site.head(url).status_code == 200


# -- concatenation ---------------------------------------------------------------------


def test_concatenation_of_partials_makes_one_item(site: Site) -> None:
    parts = [data(300_000, seed=11), b"\x00", data(70_000, seed=12)]
    urls = []
    for index, part in enumerate(parts):
        # Partial uploads need no filename (they are pieces, not evidence yet), but a case.
        url = site.new_upload(len(part), meta=metadata(case=site.case), **{"Upload-Concat": "partial"})
        half = len(part) // 2
        assert site.patch(url, part[:half], 0).status_code == 204
        assert site.patch(url, part[half:], half).status_code == 204
        assert site.head(url).headers["Upload-Concat"] == "partial"
        urls.append(url if index != 1 else "/files/" + upload_id(url))  # absolute path form too
    whole = b"".join(parts)
    response = site.http.post(site.files_url, headers={
        **site.headers(), "Upload-Concat": "final;" + " ".join(urls),
        "Upload-Metadata": metadata(filename="joined.bin", case=site.case,
                                    sha256=hashlib.sha256(whole).hexdigest())})
    assert response.status_code == 201, response.text
    final = response.headers["Location"]
    uid = upload_id(final)
    assert hashlib.sha256((site.vault / "originals" / uid).read_bytes()).digest() == hashlib.sha256(whole).digest()
    head = site.head(final)
    assert head.headers["Upload-Length"] == head.headers["Upload-Offset"] == str(len(whole))
    assert head.headers["Upload-Concat"].startswith("final;")
    named = head.headers["Upload-Concat"][len("final;"):].split()
    assert named == [site.files_url + upload_id(u) for u in urls]
    item = site.api(f"/api/v1/uploads/{uid}").json()["item"]
    shown = site.api(f"/api/v1/items/{item}").json()
    assert shown["size"] == len(whole) and shown["filename"] == "joined.bin"
    # A final upload is assembled, never written to.
    before = site.snapshot()
    response = site.patch(final, b"more", len(whole))
    assert response.status_code == 403
    assert site.snapshot() == before
    # Partials are not items and do not land among the originals.
    for url in urls:
        assert not (site.vault / "originals" / upload_id(url)).exists()


def test_concatenation_refuses_unfinished_or_non_partial_uploads(site: Site) -> None:
    done = site.new_upload(3, meta=metadata(case=site.case), body=b"abc", **{"Upload-Concat": "partial"})
    unfinished = site.new_upload(3, meta=metadata(case=site.case), **{"Upload-Concat": "partial"})
    plain = site.new_upload(3, body=b"abc")
    meta = metadata(filename="joined.bin", case=site.case)
    before = site.snapshot()
    for urls, message in (
        ([done, unfinished], "is not finished"),
        ([plain], "is not a partial upload"),
        ([done, site.files_url + "0" * 32], "does not exist"),
    ):
        response = site.http.post(site.files_url, headers={
            **site.headers(), "Upload-Concat": "final;" + " ".join(urls), "Upload-Metadata": meta})
        assert response.status_code == 400, response.text
        assert message in response.text
    response = site.http.post(site.files_url, headers={
        **site.headers(), **OCTET, "Upload-Concat": f"final;{done}", "Upload-Metadata": meta}, data=b"xyz")
    assert response.status_code == 403
    response = site.http.post(site.files_url, headers={
        **site.headers(), "Upload-Concat": f"final;{done}", "Upload-Length": "3", "Upload-Metadata": meta})
    assert response.status_code == 400
    assert site.snapshot() == before


def test_a_final_upload_still_needs_case_and_filename(site: Site) -> None:
    done = site.new_upload(3, meta=metadata(case=site.case), body=b"abc", **{"Upload-Concat": "partial"})
    before = site.snapshot()
    response = site.http.post(site.files_url, headers={**site.headers(), "Upload-Concat": f"final;{done}"})
    assert response.status_code == 400
    assert "'filename'" in response.text
    assert site.snapshot() == before


# -- expiration ------------------------------------------------------------------------


def test_expired_uploads_are_gone_and_cleaned_up(limited: Site) -> None:
    url = limited.new_upload(10)
    response = limited.patch(url, b"abc", 0)
    assert response.status_code == 204
    expires = parsedate_to_datetime(response.headers["Upload-Expires"])
    assert expires - datetime.now(UTC) < timedelta(seconds=5)
    working = limited.working_file(url)
    assert working.read_bytes() == b"abc"
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1.1)  # header has 1 s resolution

    head = limited.head(url)
    assert head.status_code == 410, head.status_code
    response = limited.patch(url, b"def", 3)
    assert response.status_code == 410
    assert "expired" in response.text
    assert working.read_bytes() == b"abc"  # nothing was added

    result = limited.server.cli("uploads", "cleanup")
    assert upload_id(url) in result.stdout.split()
    assert not working.exists()
    assert limited.head(url).status_code == 410
    assert upload_id(url) not in limited.server.cli("uploads", "cleanup").stdout.split()


# -- method override -------------------------------------------------------------------


def test_x_http_method_override(site: Site) -> None:
    url = site.new_upload(6)
    response = site.http.post(url, headers={**site.headers(), **OCTET, "Upload-Offset": "0",
                                            "X-HTTP-Method-Override": "PATCH"}, data=b"abc")
    assert response.status_code == 204, (response.status_code, response.text)
    assert response.headers["Upload-Offset"] == "3"
    response = site.http.post(url, headers={**site.headers(), "X-HTTP-Method-Override": "HEAD"})
    assert response.status_code == 200
    assert response.headers["Upload-Offset"] == "3"
    assert response.content == b""
    response = site.http.post(url, headers={**site.headers(), "X-HTTP-Method-Override": "DELETE"})
    assert response.status_code == 204
    assert site.head(url).status_code in (404, 410)
    assert not site.working_file(url).exists()


def test_plain_post_to_an_upload_is_405(site: Site) -> None:
    url = site.new_upload(6)
    response = site.http.post(url, headers={**site.headers(), **OCTET, "Upload-Offset": "0"}, data=b"abc")
    assert response.status_code == 405
    assert site.offset(url) == 0


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
    assert limited.working_file(url).read_bytes() == b"x" * 14
    assert limited.head(url).status_code == 200
    assert limited.patch(url, b"y" * 6, 14).status_code == 204
    assert (limited.vault / "originals" / upload_id(url)).read_bytes() == b"x" * 14 + b"y" * 6
