"""transfer.creation: the rules a creation request's headers alone decide, and the checks
on the partial uploads a final upload names. Pure: no server, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transfer import errors
from transfer.creation import Creation, CreationLimits, new_upload, parse_creation, usable_partials
from transfer.expiry import Expiry
from transfer.info import UploadInfo

LIMITS = CreationLimits(max_size=1000, max_partials=3, can_defer_length=True, can_concatenate=True)
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
IDS = tuple(f"{n:032x}" for n in range(1, 5))


def parse(*, limits: CreationLimits = LIMITS, **headers: str) -> Creation:
    return parse_creation({k.replace("_", "-").lower(): v for k, v in headers.items()}, "/files/", limits)


def refused(status: int, match: str, *, limits: CreationLimits = LIMITS, **headers: str) -> None:
    with pytest.raises(errors.TusError, match=match) as caught:
        parse(limits=limits, **headers)
    assert caught.value.status == status


def final_header(*ids: str) -> str:
    return "final;" + " ".join(f"/files/{i}" for i in ids)


def test_a_plain_creation() -> None:
    creation = parse(Upload_Length="10", Upload_Metadata="filename YS5iaW4=")
    assert (creation.length, creation.deferred, creation.concat, creation.with_upload) == (10, False, None, False)
    assert creation.metadata == {"filename": "a.bin"}


def test_creation_with_upload_and_checksum() -> None:
    creation = parse(Upload_Length="10", Content_Type="application/offset+octet-stream; x=1",
                     Content_Length="4", Upload_Checksum="sha1 AAAA")
    assert creation.with_upload and creation.body_length == 4
    assert creation.checksum is not None and creation.checksum.algorithm == "sha1"


def test_a_checksum_without_a_body_is_ignored() -> None:
    assert parse(Upload_Length="10", Upload_Checksum="nonsense").checksum is None


@pytest.mark.parametrize(("status", "match", "headers"), [
    (400, "Upload-Length or Upload-Defer-Length", {}),
    (400, "not both", {"Upload_Length": "5", "Upload_Defer_Length": "1"}),
    (400, "must be 1", {"Upload_Defer_Length": "yes"}),
    (400, "non-negative integer", {"Upload_Length": "-5"}),
    (413, "maximum of 1000", {"Upload_Length": "1001"}),
    (413, "past the upload's length", {"Upload_Length": "5", "Content_Length": "6",
                                       "Content_Type": "application/offset+octet-stream"}),
    (415, "Content-Type", {"Upload_Length": "5", "Content_Length": "5", "Content_Type": "text/plain"}),
    (400, "'partial' or 'final", {"Upload_Length": "5", "Upload_Concat": "whole"}),
])
def test_refusals(status: int, match: str, headers: dict[str, str]) -> None:
    refused(status, match, limits=LIMITS, **headers)


def test_what_the_store_cannot_do_is_refused() -> None:
    plain = CreationLimits(max_size=1000, max_partials=3, can_defer_length=False, can_concatenate=False)
    refused(400, "cannot defer", limits=plain, Upload_Defer_Length="1")
    refused(400, "does not support concatenation", limits=plain, Upload_Length="5", Upload_Concat="partial")


def test_a_final_upload_takes_its_length_from_its_partials() -> None:
    creation = parse(Upload_Concat=final_header(*IDS[:3]))
    assert creation.is_final and creation.length is None and creation.concat is not None
    assert creation.concat.partial_ids == IDS[:3]
    refused(400, "takes its length", Upload_Concat=final_header(IDS[0]), Upload_Length="5")
    refused(400, "takes its length", Upload_Concat=final_header(IDS[0]), Upload_Defer_Length="1")
    refused(403, "cannot carry data", Upload_Concat=final_header(IDS[0]),
            Content_Type="application/offset+octet-stream", Content_Length="3")


def test_a_final_upload_names_at_most_max_partials_each_once() -> None:
    refused(400, "lists 4 partial uploads; this server takes at most 3", Upload_Concat=final_header(*IDS))
    refused(400, f"names partial upload {IDS[1]} more than once", Upload_Concat=final_header(IDS[0], IDS[1], IDS[1]))


# -- the partial uploads a final upload names ------------------------------------------


def partial(upload_id: str, **state: Any) -> UploadInfo:
    made = UploadInfo(id=upload_id, owner="me", storage_key=f"uploads/partials/{upload_id}", size=3, offset=3,
                      concat="partial", finished=True, expires_at=NOW + timedelta(hours=1))
    return replace(made, **state)


def test_usable_partials_come_back_in_the_order_named() -> None:
    found = {i: partial(i) for i in IDS[:3]}
    assert [p.id for p in usable_partials((IDS[2], IDS[0], IDS[1]), found, "me", Expiry(), NOW)] == \
        [IDS[2], IDS[0], IDS[1]]


@pytest.mark.parametrize(("state", "message"), [
    (None, "does not exist"),
    ({"owner": "someone else"}, "does not exist"),  # exactly like a missing one
    ({"concat": None}, "is not a partial upload"),
    ({"concat": "final"}, "is not a partial upload"),
    ({"consumed": True}, "already used in another final upload"),
    ({"terminated": True}, "has expired or was terminated"),
    ({"expires_at": NOW}, "has expired or was terminated"),
    ({"finished": False, "offset": 1, "expires_at": NOW + timedelta(hours=1)}, "is not finished"),
])
def test_unusable_partials_are_refused(state: dict[str, object] | None, message: str) -> None:
    found = {IDS[0]: partial(IDS[0])}
    if state is not None:
        found[IDS[1]] = partial(IDS[1], **state)
    with pytest.raises(errors.BadRequest, match=message):
        usable_partials(IDS[:2], found, "me", Expiry(), NOW)


# -- the record of the new upload -----------------------------------------------------


def test_a_new_upload_is_recorded_as_asked() -> None:
    info = new_upload(parse(Upload_Length="10", Upload_Metadata="filename YS5iaW4="), "me", [], LIMITS,
                      upload_id=IDS[0], now=NOW)
    assert (info.id, info.owner, info.size, info.offset, info.created_at) == (IDS[0], "me", 10, 0, NOW)
    assert info.metadata == {"filename": "a.bin"}
    assert info.storage_key == "" and info.concat is None and info.partials == []
    deferred = new_upload(parse(Upload_Defer_Length="1"), "me", [], LIMITS, upload_id=IDS[1], now=NOW)
    assert deferred.size is None and deferred.size_is_deferred
    piece = new_upload(parse(Upload_Length="3", Upload_Concat="partial"), "me", [], LIMITS, upload_id=IDS[2], now=NOW)
    assert piece.concat == "partial" and piece.partials == []


def test_a_final_upload_is_as_long_as_its_partials_and_no_longer_than_the_limit() -> None:
    creation = parse(Upload_Concat=final_header(IDS[1], IDS[0]))
    partials = [partial(IDS[1], size=400, offset=400), partial(IDS[0], size=600, offset=600)]
    info = new_upload(creation, "me", partials, LIMITS, upload_id=IDS[2], now=NOW)
    assert info.size == 1000 and info.concat == "final" and info.partials == [IDS[1], IDS[0]]
    partials.append(partial(IDS[3], size=1, offset=1))
    with pytest.raises(errors.TooLarge, match="1001 bytes exceeds the maximum of 1000"):
        new_upload(parse(Upload_Concat=final_header(IDS[1], IDS[0], IDS[3])), "me", partials, LIMITS,
                   upload_id=IDS[2], now=NOW)


# -- anything at all ---------------------------------------------------------------------

HEADER_NAMES = ["upload-length", "upload-defer-length", "upload-concat", "upload-metadata", "upload-checksum",
                "content-type", "content-length"]
PIECES = st.sampled_from(["", " ", "1", "0", "-1", "99999999999999999999999", "final;", "partial", "/files/",
                          "0" * 32, "f" * 32, "application/offset+octet-stream", "sha1 AAAA", "filename YQ==",
                          ",", ";", "\x00", "é"])


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(st.dictionaries(st.sampled_from(HEADER_NAMES), st.one_of(st.text(max_size=80),
                                                             st.lists(PIECES, max_size=8).map("".join))))
def test_any_headers_parse_or_are_refused_with_a_tus_error(headers: dict[str, str]) -> None:
    try:
        creation = parse_creation(headers, "/files/", LIMITS)
    except errors.TusError as error:
        assert 400 <= error.status < 500
        return
    assert creation.length is None or 0 <= creation.length <= LIMITS.max_size
    assert creation.is_final == (creation.length is None and not creation.deferred)
    assert not (creation.is_final and creation.with_upload)
    if creation.is_final:
        assert creation.concat is not None
        ids = creation.concat.partial_ids
        assert 0 < len(ids) <= LIMITS.max_partials and len(set(ids)) == len(ids)
