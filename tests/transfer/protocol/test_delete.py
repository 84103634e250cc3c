"""Termination (DELETE): an unfinished upload's bytes go, and the upload with them; a
finished one is evidence, kept as received."""

from __future__ import annotations

from tests.transfer.site import Site, upload_id


def test_terminating_an_unfinished_upload(site: Site) -> None:
    url = site.new_upload(10)
    assert site.patch(url, b"abc", 0).status_code == 204
    assert site.received(url) == b"abc"
    response = site.http.delete(url, headers=site.headers())
    assert response.status_code == 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert site.received(url) is None
    assert site.head(url).status_code in (404, 410)
    assert site.patch(url, b"def", 3).status_code in (404, 410)
    assert site.http.delete(url, headers=site.headers()).status_code in (404, 410)
    assert site.original(url) is None
    assert site.api(f"/api/v1/uploads/{upload_id(url)}").json()["terminated"] is True
    names = site.snapshot()[2]
    assert not any(upload_id(url) in name for name in names), names


def test_a_finished_upload_cannot_be_terminated(site: Site) -> None:
    url = site.new_upload(3, body=b"abc")
    before = site.snapshot()
    response = site.http.delete(url, headers=site.headers())
    assert response.status_code == 403
    assert "cannot be deleted" in response.text
    assert site.original(url) == b"abc"
    assert site.snapshot() == before
    assert site.head(url).status_code == 200
