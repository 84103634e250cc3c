"""Hostile tus clients, over real HTTP against a real ``evidence serve`` on SQLite and on
PostgreSQL: concatenation lists that try to multiply or borrow bytes, partial uploads that
dodge the case checks or linger, oversized headers, rights taken away mid-upload, uploads
kept alive for ever, and probing for which cases exist. Each attack is refused, and
nothing is half-written: no upload row, no custody entry, no file, no moved offset.

The attacks are on the protocol and the application, not on a store: they run on the
file store, whose files the tests can look at directly. tests/transfer/protocol/ runs the
protocol itself on both stores.
"""

from __future__ import annotations

import socket
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import requests

from evidence.http.limits import HeaderLimits
from evidence.settings import Settings
from tests.transfer.site import (
    ADMIN,
    COLLEAGUE,
    LEAVER,
    LIFETIME_HOURS,
    MOVER,
    PARTIAL,
    TUS,
    Site,
    data,
    final,
    metadata,
    partial,
    upload_id,
)

pytestmark = pytest.mark.parametrize("store", ["file"], indirect=True)


def consumed(site: Site, url: str) -> bool:
    [(at,)] = site.sql("SELECT consumed_at FROM uploads WHERE id = :id", id=upload_id(url))
    return at is not None


def partial_file(site: Site, url: str) -> Path:
    return site.vault / "uploads" / "partials" / upload_id(url)


# -- Upload-Concat: final --------------------------------------------------------------


def test_a_final_naming_more_than_1000_partials_is_refused_before_any_lookup(site: Site) -> None:
    before = site.snapshot()
    urls = [f"{site.files_url}{n:032x}" for n in range(1001)]
    started = time.monotonic()
    response = final(site, urls)
    assert response.status_code == 400, response.text
    assert "lists 1001 partial uploads; this server takes at most 1000" in response.text
    # The header alone decides: even without a token, it is this 400 and not a 401.
    anonymous = site.http.post(site.files_url, headers={**TUS, "Upload-Concat": "final;" + " ".join(urls)})
    assert anonymous.status_code == 400 and "at most 1000" in anonymous.text
    # The reported attack: one partial upload named 3,000 and 50,000 times.
    done = partial(site, b"12345")
    response = final(site, ["/files/" + upload_id(done)] * 3_000)
    assert response.status_code == 400 and "lists 3000 partial uploads" in response.text
    try:  # 2 MB of header: refused while it arrives, perhaps before it is all sent
        response = final(site, ["/files/" + upload_id(done)] * 50_000)
        assert response.status_code == 431, response.status_code
    except requests.ConnectionError:
        pass
    assert time.monotonic() - started < 5
    assert not consumed(site, done)
    after = site.snapshot()
    assert (after[0], after[1]) == (before[0] + 1, before[1] + 2)  # only the partial: created, completed


def test_a_final_may_name_1000_partials_in_full_urls(site: Site) -> None:
    """Header caps leave room for Upload-Concat of the largest allowed list: 1,000 absolute
    URLs (about 60 KB) reach the tus server, which looks them all up in one query."""
    before = site.snapshot()
    urls = [f"{site.files_url}{n:032x}" for n in range(1000)]
    response = final(site, urls)
    assert response.status_code == 400, response.text
    assert f"partial upload {0:032x} does not exist" in response.text
    assert site.snapshot() == before


def test_a_partial_named_twice_is_refused(site: Site) -> None:
    done = partial(site, b"abc")
    before = site.snapshot()
    for urls in ([done, done], [done, "/files/" + upload_id(done)]):
        response = final(site, urls)
        assert response.status_code == 400, response.text
        assert f"names partial upload {upload_id(done)} more than once" in response.text
        assert "Location" not in response.headers
    assert site.snapshot() == before
    assert not consumed(site, done)


def test_another_officers_partial_or_another_cases_partial_is_refused(site: Site) -> None:
    theirs = partial(site, b"not yours", case=site.cases["foreign"], token=site.other_officer)
    other_case = partial(site, b"other case", case=site.cases["second"])
    mine = partial(site, b"mine")
    before = site.snapshot()
    response = final(site, [mine, theirs])
    assert response.status_code == 400
    assert f"partial upload {upload_id(theirs)} does not exist" in response.text  # not even that it exists
    response = final(site, [mine, other_case])
    assert response.status_code == 400
    assert f"partial upload {upload_id(other_case)} was made for another case" in response.text
    assert site.snapshot() == before
    assert not any(consumed(site, url) for url in (theirs, other_case, mine))
    # Into the partial's own case, it is fine.
    assert final(site, [other_case], case=site.cases["second"]).status_code == 201


def test_a_consumed_partial_cannot_make_a_second_original(site: Site) -> None:
    first, second = partial(site, b"first "), partial(site, b"second")
    response = final(site, [first, second])
    assert response.status_code == 201, response.text
    original = site.vault / "originals" / upload_id(response.headers["Location"])
    assert original.read_bytes() == b"first second"
    assert consumed(site, first) and consumed(site, second)
    before = site.snapshot()
    for urls in ([first], [second, first]):
        again = final(site, urls)
        assert again.status_code == 400, again.text
        assert "was already used in another final upload" in again.text
    assert site.snapshot() == before
    head = site.head(first)
    assert head.status_code == 200 and "Upload-Expires" not in head.headers  # used: it no longer waits


def test_finals_racing_for_one_partial_make_one_original(site: Site) -> None:
    pieces = [partial(site, bytes([n]) * 1000) for n in range(3)]
    _, _, files_before = site.snapshot()
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: final(site, pieces), range(6)))
    made = [a for a in answers if a.status_code == 201]
    assert len(made) == 1, [(a.status_code, a.text) for a in answers]
    for lost in answers:
        if lost.status_code != 201:
            # Refused on loading (already used), or by the claim in the transaction that
            # would have recorded it (used meanwhile): either way, nothing recorded.
            assert lost.status_code == 400 and "used in another final upload" in lost.text, lost.text
    # The losers' assembled bytes were discarded: one new original, no stray working file.
    _, _, files_after = site.snapshot()
    assert files_after - files_before == {f"originals/{upload_id(made[0].headers['Location'])}"}


def removals(site: Site, url: str) -> list[tuple[str, str]]:
    return [(action, details.get("reason", "")) for action, details in site.events(url)
            if action in ("upload.terminated", "upload.expired")]


def test_used_partials_are_removed_by_the_next_cleanup(site: Site) -> None:
    used, unused = partial(site, b"used"), partial(site, b"unused")
    joined = final(site, [used])
    assert joined.status_code == 201, joined.text
    original = site.vault / "originals" / upload_id(joined.headers["Location"])

    cleaned = site.server.cli("uploads", "cleanup").stdout.split()
    assert upload_id(used) in cleaned
    assert upload_id(unused) not in cleaned  # unused, and days from its expiry
    assert not partial_file(site, used).exists()
    assert partial_file(site, unused).read_bytes() == b"unused"
    assert original.read_bytes() == b"used"  # its bytes live on in the sealed original
    assert site.head(used).status_code == 410
    assert upload_id(used) not in site.server.cli("uploads", "cleanup").stdout.split()
    # One entry, saying why, by the service.
    [(action, reason)] = removals(site, used)
    assert action == "upload.terminated" and "used in a final upload" in reason
    assert removals(site, unused) == []


def test_unused_partials_expire_and_are_removed(limited: Site) -> None:
    unused = partial(limited, b"unused")
    expires = parsedate_to_datetime(limited.head(unused).headers["Upload-Expires"])
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1.1)  # header: 1 s resolution
    assert limited.head(unused).status_code == 410  # a finished partial upload expires too
    refused = final(limited, [unused])
    assert refused.status_code == 400 and "has expired" in refused.text
    assert partial_file(limited, unused).read_bytes() == b"unused"  # kept until the cleanup
    assert upload_id(unused) in limited.server.cli("uploads", "cleanup").stdout.split()
    assert not partial_file(limited, unused).exists()
    assert upload_id(unused) not in limited.server.cli("uploads", "cleanup").stdout.split()
    [(action, reason)] = removals(limited, unused)
    assert action == "upload.expired" and "never used" in reason


# -- partial uploads and the case --------------------------------------------------------


def test_a_partial_needs_a_case_its_officer_is_assigned_to(site: Site) -> None:
    before = site.snapshot()
    response = site.create(3, body=b"abc", meta=metadata(filename="piece"), **PARTIAL)
    assert response.status_code == 400 and "'case'" in response.text
    response = site.create(3, body=b"abc", meta="", **PARTIAL)
    assert response.status_code == 400 and "'case'" in response.text
    for case in (site.cases["foreign"], "OP-NO-SUCH-CASE"):
        response = site.create(3, body=b"abc", meta=metadata(case=case), **PARTIAL)
        assert response.status_code == 404, response.text
        assert "is not one of your cases" in response.text
    assert site.snapshot() == before


def test_unknown_and_unassigned_cases_answer_alike(site: Site) -> None:
    before = site.snapshot()
    answers = []
    for case in ("OP-NO-SUCH-CASE", site.cases["foreign"]):
        for extra in ({}, PARTIAL):
            response = site.create(3, body=None, meta=metadata(filename="x.bin", case=case), **extra)
            answers.append((response.status_code, response.text.replace(case, "REF"),
                            sorted(set(response.headers) - {"date"})))
    assert answers[0] == answers[1] == answers[2] == answers[3], answers
    assert answers[0][0] == 404
    assert site.snapshot() == before


# -- header caps -------------------------------------------------------------------------


def _creation_headers(site: Site) -> dict[str, str]:
    return {**site.headers(), "Upload-Length": "5", "Upload-Metadata": metadata(filename="a.bin", case=site.case)}


def test_oversized_headers_are_431_before_anything_is_done(site: Site) -> None:
    before = site.snapshot()
    too_many = {**_creation_headers(site), **{f"X-Filler-{n}": "x" for n in range(100)}}
    too_long = {**_creation_headers(site), "X-Filler": "x" * (16 * 1024 + 1)}
    too_much = {**_creation_headers(site), **{f"X-Filler-{n}": "x" * (15 * 1024) for n in range(5)}}
    for name, headers, reason in (
        ("count", too_many, "more than 100 header fields"),
        ("value", too_long, "the x-filler header is longer than 16384 bytes"),
        ("total", too_much, "add up to more than 65536 bytes"),
    ):
        for method, url in (("POST", site.files_url), ("GET", site.server.url + "/api/v1/cases")):
            response = site.http.request(method, url, headers=headers)
            assert response.status_code == 431, (name, method, response.status_code)
            assert response.headers["Content-Type"].startswith("text/plain")
            assert reason in response.text and "too large" in response.text, response.text
        assert "Location" not in response.headers
    assert site.snapshot() == before


def test_a_huge_request_head_is_cut_off_while_it_arrives(site: Site) -> None:
    """uvicorn's parser (httptools) would take a head of any size; the server stops reading
    one just past what the header caps could ever allow, without waiting for the rest."""
    before = site.snapshot()
    limit = HeaderLimits.from_settings(Settings()).max_head_bytes  # the server runs the defaults
    start = b"POST /files/ HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nX-Filler: "
    # One byte past the limit, and no more: the server reads every byte sent before it
    # answers and closes, so its answer is not lost to a reset.
    head = start + b"x" * (limit + 1 - len(start))
    reply = b""
    with socket.create_connection(("127.0.0.1", site.server.port), timeout=10) as connection:
        connection.sendall(head)
        while chunk := connection.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
    assert b"request head is longer than" in reply
    assert site.snapshot() == before
    assert site.http.get(site.server.url + "/healthz").status_code == 200


# -- rights checked on every request --------------------------------------------------------


def test_an_officer_taken_off_the_case_cannot_continue(site: Site) -> None:
    mover, case = site.extra_tokens[MOVER], site.cases["mover"]
    url = site.new_upload(10, token=mover, meta=metadata(filename="cctv.avi", case=case))
    assert site.patch(url, b"abcd", 0, token=mover).status_code == 204
    site.server.cli("cases", "unassign", case, MOVER, token=site.extra_tokens[ADMIN])
    before = site.snapshot()
    patch = site.patch(url, b"efgh", 4, token=mover)
    assert patch.status_code == 403, patch.text
    assert f"no longer assigned to case {case!r}" in patch.text
    assert site.head(url, token=mover).status_code == 403
    assert site.http.delete(url, headers=site.headers(mover)).status_code == 403
    assert site.snapshot() == before
    assert site.working_file(url).read_bytes() == b"abcd"  # what was received is kept
    # An admin's uploads need no assignment; nor does an admin looking at their own.
    admin = site.extra_tokens[ADMIN]
    assert site.create(1, token=admin, body=b"x", meta=metadata(filename="a", case=case)).status_code == 201
    # Assigned again, the officer takes up where they stopped.
    site.server.cli("cases", "assign", case, MOVER, token=site.extra_tokens[ADMIN])
    assert site.patch(url, b"efghij", 4, token=mover).status_code == 204
    assert (site.vault / "originals" / upload_id(url)).read_bytes() == b"abcdefghij"


def test_a_disabled_account_cannot_continue(site: Site) -> None:
    leaver = site.extra_tokens[LEAVER]
    url = site.new_upload(10, token=leaver, meta=metadata(filename="phone.zip", case=site.cases["leaver"]))
    assert site.patch(url, b"abcd", 0, token=leaver).status_code == 204
    site.sql("UPDATE users SET disabled_at = CURRENT_TIMESTAMP WHERE email = :email", email=LEAVER)
    before = site.snapshot()
    assert site.patch(url, b"efgh", 4, token=leaver).status_code == 401
    assert site.head(url, token=leaver).status_code == 401
    assert site.http.delete(url, headers=site.headers(leaver)).status_code == 401
    assert site.snapshot() == before
    assert site.working_file(url).read_bytes() == b"abcd"


def test_an_upload_cannot_be_kept_alive_past_its_lifetime(brief: Site) -> None:
    lifetime = LIFETIME_HOURS * 3600
    began = datetime.now(UTC)
    url = brief.new_upload(1000)
    created = time.monotonic()
    offset = 0
    while time.monotonic() - created < lifetime + 3:
        # A byte every 0.3 s: far more often than the idle expiry (2.2 s) needs.
        response = brief.patch(url, b"x", offset)
        if response.status_code == 410:
            break
        assert response.status_code == 204, response.text
        offset += 1
        expires = parsedate_to_datetime(response.headers["Upload-Expires"])
        assert expires <= began + timedelta(seconds=lifetime + 1)  # the lifetime caps every renewal
        time.sleep(0.3)
    else:
        raise AssertionError("the upload outlived its lifetime")
    assert lifetime - 1.5 < time.monotonic() - created < lifetime + 2.5
    assert "expired" in response.text
    assert brief.working_file(url).read_bytes() == b"x" * offset  # nothing past the end was added
    assert upload_id(url) in brief.server.cli("uploads", "cleanup").stdout.split()


# -- originals and their record ----------------------------------------------------------


def test_originals_are_0400_and_their_record_names_no_storage_internals(site: Site) -> None:
    payload = data(1000, seed=5)
    url = site.new_upload(len(payload), body=payload, meta=metadata(filename="x.mp4", case=site.case))
    original = site.vault / "originals" / upload_id(url)
    assert stat.S_IMODE(original.stat().st_mode) == 0o400
    assert original.read_bytes() == payload
    assert site.http.delete(url, headers=site.headers()).status_code == 403  # still sealed and kept
    [stored] = [details for action, details in site.events(url) if action == "original.stored"]
    assert stored["storage"] == {"backend": "local"}
    assert "storage_key" not in stored
    text = repr(stored)
    for internal in ("originals/", str(site.vault), str(site.server.data_dir), "/tmp"):
        assert internal not in text, (internal, stored)
    assert "0400" in stored["write_once"]


def test_every_custody_entry_of_a_hostile_creation_stays_small(site: Site) -> None:
    # As much as a creation may carry (16 KiB of Upload-Metadata, 4 KiB a value)...
    meta = metadata(filename="f" * 4096, case=site.case, description="d" * 2000, exhibit="e" * 1000,
                    **{f"k{n}": "v" * 300 for n in range(10)})
    assert len(meta) < 16 * 1024
    url = site.new_upload(3, body=b"abc", meta=meta)
    sizes = [len(repr(details)) for _, details in site.events(url)]
    assert sizes and max(sizes) < 6000, sizes  # ...makes no entry much larger than the filename


def test_concatenation_records_its_partials_once_in_bounded_size(site: Site) -> None:
    urls = [partial(site, bytes([n]) * 3) for n in range(5)]
    response = final(site, urls)
    assert response.status_code == 201
    [created] = [d for a, d in site.events(response.headers["Location"]) if a == "upload.created"]
    assert created["partials"] == [upload_id(u) for u in urls]
    assert (site.vault / "originals" / upload_id(response.headers["Location"])).read_bytes() == b"".join(
        bytes([n]) * 3 for n in range(5))


def test_another_officer_cannot_take_a_partial_into_their_own_case(site: Site) -> None:
    mine = partial(site, b"abc")
    response = final(site, [mine], case=site.cases["foreign"], token=site.extra_tokens[COLLEAGUE])
    assert response.status_code == 400 and "does not exist" in response.text
    assert not consumed(site, mine)
