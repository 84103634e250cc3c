"""What every request passes before its verb is handled: discovery (OPTIONS), the protocol
version, and the method (X-HTTP-Method-Override for clients that can only POST)."""

from __future__ import annotations

import pytest

from tests.transfer.site import LIMIT, OCTET, Site, metadata


def test_options_advertises_version_extensions_size_and_checksums(site: Site) -> None:
    response = site.http.options(site.files_url)  # no token, no Tus-Resumable: discovery is open
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert response.headers["Tus-Resumable"] == "1.0.0"
    # Both stores can do every extension; tests/transfer/test_handler.py shows a store that cannot.
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation", "creation-with-upload", "creation-defer-length", "termination",
        "concatenation", "checksum", "expiration",
    }
    assert response.headers["Tus-Max-Size"] == str(1024**4)
    assert response.headers["Tus-Checksum-Algorithm"].split(",") == ["sha1", "sha256", "md5"]


def test_options_reports_the_configured_max_size(limited: Site) -> None:
    assert limited.http.options(limited.files_url).headers["Tus-Max-Size"] == str(LIMIT)


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
    assert site.received(url) is None


def test_plain_post_to_an_upload_is_405(site: Site) -> None:
    url = site.new_upload(6)
    response = site.http.post(url, headers={**site.headers(), **OCTET, "Upload-Offset": "0"}, data=b"abc")
    assert response.status_code == 405
    assert site.offset(url) == 0
