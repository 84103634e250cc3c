"""Creation (POST to the collection): what a new upload must carry, the size limit,
creation-with-upload (the body is the first chunk) and creation-defer-length. A refused
creation leaves nothing: no upload row, no custody entry, nothing in the store."""

from __future__ import annotations

import hashlib

from tests.transfer.site import LIMIT, Site, b64, data, metadata, upload_id


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
    _, _, names = site.snapshot()
    assert names - before[2] == {f"originals/{uid}"}
    assert site.original(url) == body
    for name in names:
        assert name.split("/")[0] in ("originals", ".uploads", "uploads", "derivatives"), name
        assert "passwd" not in name and "tmp" not in name
    assert not (site.server.root / "etc").exists() and not (site.server.data_dir / "etc").exists()


def test_upload_length_above_the_maximum_is_413(limited: Site) -> None:
    before = limited.snapshot()
    response = limited.create(LIMIT + 1)
    assert response.status_code == 413, response.text
    assert f"maximum of {LIMIT}" in response.text
    response = limited.create(LIMIT + 1, body=data(LIMIT + 1))
    assert response.status_code == 413
    assert limited.snapshot() == before
    assert limited.create(LIMIT).status_code == 201  # the limit itself is allowed


def test_creation_with_a_body_longer_than_the_length_creates_nothing(site: Site) -> None:
    before = site.snapshot()
    response = site.create(5, body=b"123456")
    assert response.status_code == 413, response.text
    assert site.snapshot() == before


def test_creation_with_upload_makes_a_sealed_original_and_an_item(site: Site) -> None:
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

    upload = site.api(f"/api/v1/uploads/{upload_id(url)}").json()
    assert upload["finished"] is True and upload["offset"] == upload["size"] == len(payload)
    item = site.api(f"/api/v1/items/{upload['item']}").json()
    assert item["filename"] == "CCTV 01 ✓.mp4"
    assert item["case"] == site.case
    assert item["size"] == len(payload)
    assert item["client_sha256"] == sha
    assert item["exhibit"] == "JD/1"
    assert item["state"] in ("received", "processing", "ready")
    assert site.original(url) == payload
    assert site.stored.sealed(f"originals/{upload_id(url)}")
    assert site.received(url) is None  # nothing unfinished left behind


def test_a_zero_length_upload_completes_at_creation(site: Site) -> None:
    response = site.create(0, meta=metadata(filename="empty.txt", case=site.case))
    assert response.status_code == 201
    assert response.headers["Upload-Offset"] == "0"
    url = response.headers["Location"]
    item = site.api(f"/api/v1/uploads/{upload_id(url)}").json()["item"]
    assert site.api(f"/api/v1/items/{item}").json()["size"] == 0
    assert site.original(url) == b""


def test_deferred_length_is_declared_later(site: Site) -> None:
    url = site.new_upload(None, **{"Upload-Defer-Length": "1"})
    head = site.head(url)
    assert head.headers["Upload-Defer-Length"] == "1"
    assert "Upload-Length" not in head.headers
    assert site.patch(url, b"hello ", 0).status_code == 204
    assert site.patch(url, b"x", 6, **{"Upload-Length": "5"}).status_code == 400  # smaller than what is there
    assert site.received(url) == b"hello "
    response = site.patch(url, b"world", 6, **{"Upload-Length": "11"})
    assert response.status_code == 204, response.text
    assert response.headers["Upload-Offset"] == "11"
    head = site.head(url)
    assert head.headers["Upload-Length"] == "11" and "Upload-Defer-Length" not in head.headers
    assert site.original(url) == b"hello world"
    item = site.api(f"/api/v1/uploads/{upload_id(url)}").json()["item"]
    assert site.api(f"/api/v1/items/{item}").json()["size"] == 11


def test_a_length_declared_at_the_offset_finishes_the_upload(site: Site) -> None:
    """The last PATCH may carry no bytes at all: the length equals what is already there."""
    url = site.new_upload(None, **{"Upload-Defer-Length": "1"})
    assert site.patch(url, b"all of it", 0).status_code == 204
    response = site.patch(url, b"", 9, **{"Upload-Length": "9"})
    assert response.status_code == 204, response.text
    assert response.headers["Upload-Offset"] == "9"
    assert site.original(url) == b"all of it"
    assert site.received(url) is None


def test_a_declared_length_cannot_change(site: Site) -> None:
    url = site.new_upload(None, **{"Upload-Defer-Length": "1"})
    assert site.patch(url, b"ab", 0, **{"Upload-Length": "4"}).status_code == 204
    response = site.patch(url, b"cd", 2, **{"Upload-Length": "5"})
    assert response.status_code == 400
    assert "cannot change" in response.text
    assert site.offset(url) == 2
