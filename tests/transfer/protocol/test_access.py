"""Who may act on an upload, on every verb: bad or missing credentials are 401 and change
nothing, only officers and admins upload, and an upload that is not yours (or not there)
is 404 alike."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from tests.transfer.site import OCTET, TUS, Site, b64, metadata, upload_id


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
    assert site.received(url) == b"abc"
    assert site.patch(url, b"def", 3).status_code == 204
