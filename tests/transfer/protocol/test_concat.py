"""The concatenation extension: partial uploads (``Upload-Concat: partial``) joined by a
final upload into one original, in the order it names them; what a final upload may not
be made of; and the partial uploads' own bytes, gone once they are used."""

from __future__ import annotations

import hashlib

from tests.transfer.site import OCTET, PARTIAL, Site, data, final, metadata, partial, upload_id


def test_concatenation_of_partials_makes_one_item(site: Site) -> None:
    parts = [data(300_000, seed=11), b"\x00", data(70_000, seed=12)]
    urls = []
    for index, part in enumerate(parts):
        # Partial uploads need no filename (they are pieces, not evidence yet), but a case.
        url = site.new_upload(len(part), meta=metadata(case=site.case), **PARTIAL)
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
    joined = response.headers["Location"]
    assert hashlib.sha256(site.original(joined) or b"").digest() == hashlib.sha256(whole).digest()
    assert site.stored.sealed(f"originals/{upload_id(joined)}")
    head = site.head(joined)
    assert head.headers["Upload-Length"] == head.headers["Upload-Offset"] == str(len(whole))
    assert head.headers["Upload-Concat"].startswith("final;")
    named = head.headers["Upload-Concat"][len("final;"):].split()
    assert named == [site.files_url + upload_id(u) for u in urls]
    item = site.api(f"/api/v1/uploads/{upload_id(joined)}").json()["item"]
    shown = site.api(f"/api/v1/items/{item}").json()
    assert shown["size"] == len(whole) and shown["filename"] == "joined.bin"
    # A final upload is assembled, never written to.
    before = site.snapshot()
    response = site.patch(joined, b"more", len(whole))
    assert response.status_code == 403
    assert site.snapshot() == before
    # Partials are not items and do not land among the originals.
    for url in urls:
        assert site.original(url) is None


def test_concatenation_refuses_unfinished_or_non_partial_uploads(site: Site) -> None:
    done = partial(site, b"abc")
    unfinished = site.new_upload(3, meta=metadata(case=site.case), **PARTIAL)
    plain = site.new_upload(3, body=b"abc")
    meta = metadata(filename="joined.bin", case=site.case)
    before = site.snapshot()
    for urls, message in (
        ([done, unfinished], "is not finished"),
        ([plain], "is not a partial upload"),
        ([done, site.files_url + "0" * 32], "does not exist"),
    ):
        response = final(site, urls)
        assert response.status_code == 400, response.text
        assert message in response.text
    response = site.http.post(site.files_url, headers={
        **site.headers(), **OCTET, "Upload-Concat": f"final;{done}", "Upload-Metadata": meta}, data=b"xyz")
    assert response.status_code == 403
    response = final(site, [done], **{"Upload-Length": "3"})
    assert response.status_code == 400
    assert site.snapshot() == before


def test_a_final_upload_still_needs_case_and_filename(site: Site) -> None:
    done = partial(site, b"abc")
    before = site.snapshot()
    response = site.http.post(site.files_url, headers={**site.headers(), "Upload-Concat": f"final;{done}"})
    assert response.status_code == 400
    assert "'filename'" in response.text
    assert site.snapshot() == before


def test_used_partials_leave_nothing_behind_after_the_cleanup(site: Site) -> None:
    pieces = [partial(site, b"first "), partial(site, b"second")]
    keys = [f"uploads/partials/{upload_id(url)}" for url in pieces]
    assert [site.stored.object(key) for key in keys] == [b"first ", b"second"]
    joined = final(site, pieces)
    assert joined.status_code == 201, joined.text
    cleaned = site.server.cli("uploads", "cleanup").stdout.split()
    assert {upload_id(url) for url in pieces} <= set(cleaned)
    # Gone, not hidden: on S3 no older version of them is left either.
    assert all(site.stored.gone(key) for key in keys)
    assert site.original(joined.headers["Location"]) == b"first second"
    assert all(site.head(url).status_code == 410 for url in pieces)
