"""transfer.headers: the pure tus header parsers, with the hostile inputs a client can send."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable

import pytest

from transfer.errors import BadRequest
from transfer.headers import (
    CHECKSUM_ALGORITHMS,
    MAX_METADATA_HEADER,
    MAX_METADATA_PAIRS,
    MAX_VALUE_BYTES,
    Checksum,
    ConcatRequest,
    encode_metadata,
    is_upload_id,
    parse_checksum,
    parse_concat,
    parse_length,
    parse_metadata,
)

UID = "0123456789abcdef0123456789abcdef"
UID2 = "fedcba9876543210fedcba9876543210"
UID3 = "00000000000000000000000000000003"


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def refused(call: Callable[..., object], *args: object, match: str) -> None:
    with pytest.raises(BadRequest, match=match) as caught:
        call(*args)
    assert caught.value.status == 400


# -- lengths ---------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("42", 42), (" 7 ", 7), ("0001", 1),
                                                 ("99999999999999999999", 99999999999999999999)])
def test_length_accepts_decimal_digits(value: str, expected: int) -> None:
    assert parse_length(value, "Upload-Length") == expected


def test_length_absent_is_none() -> None:
    assert parse_length(None, "Upload-Length") is None


@pytest.mark.parametrize("value", ["", " ", "-1", "+1", "1.5", "1e3", "0x10", "ten", "1 2", "١٢",
                                   "123456789012345678901"])
def test_length_refuses_anything_else(value: str) -> None:
    refused(parse_length, value, "Upload-Offset", match="Upload-Offset must be a non-negative integer")


# -- metadata --------------------------------------------------------------------------


def test_metadata_decodes_pairs() -> None:
    header = f"filename {b64('CCTV 01.mp4')},case {b64('OP-HALFORD')},description {b64('Café – ünïcode ✓')}"
    assert parse_metadata(header) == {
        "filename": "CCTV 01.mp4",
        "case": "OP-HALFORD",
        "description": "Café – ünïcode ✓",
    }


def test_metadata_tolerates_spaces_around_pairs() -> None:
    assert parse_metadata(f" filename {b64('a')} ,  case {b64('b')}") == {"filename": "a", "case": "b"}


@pytest.mark.parametrize("header", [None, "", "   "])
def test_metadata_absent_or_blank_is_empty(header: str | None) -> None:
    assert parse_metadata(header) == {}


def test_metadata_key_without_value_is_empty_string() -> None:
    assert parse_metadata(f"flag,filename {b64('x')}") == {"flag": "", "filename": "x"}
    assert parse_metadata("flag ") == {"flag": ""}


def test_metadata_keeps_path_like_filenames_verbatim() -> None:
    # The filename is evidence (often the only time source); it never becomes a path.
    assert parse_metadata(f"filename {b64('../../etc/passwd')}") == {"filename": "../../etc/passwd"}


@pytest.mark.parametrize("value", ["not-base64!", "YQ", "YQ=", "Y\tQ==", "_-8=", "YQ==YQ==", "===="])
def test_metadata_refuses_bad_base64(value: str) -> None:
    refused(parse_metadata, f"filename {value}", match="'filename' is not valid base64")


def test_metadata_refuses_extra_fields_in_a_pair() -> None:
    refused(parse_metadata, f"filename {b64('a')} {b64('b')}", match="pairs must be 'key base64value'")
    refused(parse_metadata, f"filename  {b64('a')}", match="pairs must be 'key base64value'")


def test_metadata_refuses_empty_pairs() -> None:
    refused(parse_metadata, f"filename {b64('a')},", match="pairs must be")
    refused(parse_metadata, f"filename {b64('a')},,case {b64('b')}", match="pairs must be")
    refused(parse_metadata, f"filename {b64('a')}, {b64('b')}", match="keys must be")


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"caf\xe9", b"\xc3\x28", b"\xed\xa0\x80"])
def test_metadata_refuses_non_utf8(raw: bytes) -> None:
    refused(parse_metadata, f"filename {b64(raw)}", match="'filename' is not UTF-8 text")


@pytest.mark.parametrize("text", ["\x00", "evil.mp4\x00.txt", "a\x00"])
def test_metadata_refuses_nul(text: str) -> None:
    refused(parse_metadata, f"filename {b64(text)}", match="'filename' contains a NUL character")


def test_metadata_value_limit_is_exact() -> None:
    at_limit = "é" * (MAX_VALUE_BYTES // 2)  # two bytes each: the limit is on bytes, not characters
    assert parse_metadata(f"description {b64(at_limit)}") == {"description": at_limit}
    refused(parse_metadata, f"description {b64(at_limit + 'x')}",
            match=f"'description' is longer than {MAX_VALUE_BYTES} bytes")


def test_metadata_header_limit_is_exact() -> None:
    value = b64("x" * 3000)  # 4000 characters
    header = ",".join(f"d{i} {value}" for i in range(4))
    header += ",pad " + b64("y" * ((MAX_METADATA_HEADER - len(header) - 5) * 3 // 4))
    assert len(header) <= MAX_METADATA_HEADER
    assert len(parse_metadata(header)) == 5
    refused(parse_metadata, header + ",z", match=f"Upload-Metadata is longer than {MAX_METADATA_HEADER} bytes")


def test_metadata_key_count_limit_is_exact() -> None:
    pairs = [f"k{i} {b64(str(i))}" for i in range(MAX_METADATA_PAIRS)]
    assert len(parse_metadata(",".join(pairs))) == MAX_METADATA_PAIRS
    refused(parse_metadata, ",".join([*pairs, "one_more"]), match=f"more than {MAX_METADATA_PAIRS} keys")


def test_metadata_refuses_repeated_keys() -> None:
    refused(parse_metadata, f"case {b64('OP-1')},filename {b64('a')},case {b64('OP-2')}",
            match="key 'case' is repeated")


def test_metadata_keys_are_case_sensitive() -> None:
    assert parse_metadata(f"case {b64('a')},Case {b64('b')}") == {"case": "a", "Case": "b"}


@pytest.mark.parametrize("key", ["file/name", "../x", "ключ", "a:b", "k" * 65, "a;b", "k\tey", "a=b", "a\u00e9"])
def test_metadata_refuses_bad_keys(key: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_metadata(f"{key} {b64('v')}")
    assert caught.value.status == 400


def test_metadata_accepts_the_widest_allowed_key() -> None:
    key = "A-z_0.9" + "k" * 57
    assert len(key) == 64
    assert parse_metadata(f"{key} {b64('v')}") == {key: "v"}


def test_metadata_round_trips_through_encoding() -> None:
    metadata = {"filename": "../CCTV, cam 3 ✓.mp4", "case": "OP 1/2", "flag": ""}
    encoded = encode_metadata(metadata)
    assert encoded.endswith(",flag")
    assert parse_metadata(encoded) == metadata


# -- checksum --------------------------------------------------------------------------


def test_checksum_algorithms_are_the_advertised_three() -> None:
    assert CHECKSUM_ALGORITHMS == ("sha1", "sha256", "md5")


@pytest.mark.parametrize("algorithm", CHECKSUM_ALGORITHMS)
def test_checksum_parses_each_algorithm(algorithm: str) -> None:
    digest = hashlib.new(algorithm, b"chunk").digest()
    assert parse_checksum(f"{algorithm} {b64(digest)}") == Checksum(algorithm, digest)
    assert parse_checksum(f"{algorithm.upper()} {b64(digest)}") == Checksum(algorithm, digest)


def test_checksum_absent_is_none() -> None:
    assert parse_checksum(None) is None


@pytest.mark.parametrize("algorithm", ["crc32", "sha512", "sha-256", "md4", "blake2b", "none"])
def test_checksum_refuses_unsupported_algorithms(algorithm: str) -> None:
    refused(parse_checksum, f"{algorithm} {b64(b'x' * 20)}", match="unsupported checksum algorithm")


@pytest.mark.parametrize("header", ["sha1", "", "sha1  " + b64(b"x"), f"sha1 {b64(b'x')} extra"])
def test_checksum_refuses_malformed_headers(header: str) -> None:
    refused(parse_checksum, header, match="Upload-Checksum must be")


@pytest.mark.parametrize("digest", ["not-base64!", "YQ", "2jmj7l5rSw0yVb/vlWAYkK/YBwk"])
def test_checksum_refuses_bad_base64(digest: str) -> None:
    refused(parse_checksum, f"sha1 {digest}", match="digest is not valid base64")


# -- concatenation ---------------------------------------------------------------------


def test_concat_absent_is_none() -> None:
    assert parse_concat(None, "/files/") is None


def test_concat_partial() -> None:
    assert parse_concat("partial", "/files/") == ConcatRequest("partial")
    assert parse_concat(" partial ", "/files/") == ConcatRequest("partial")


def test_concat_final_takes_paths_and_absolute_urls_in_order() -> None:
    header = f"final;/files/{UID2} http://127.0.0.1:8000/files/{UID}  HTTPS://evidence.example/files/{UID3}"
    assert parse_concat(header, "/files/") == ConcatRequest("final", (UID2, UID, UID3))
    assert parse_concat(f"final;/files/{UID}", "/files") == ConcatRequest("final", (UID,))


@pytest.mark.parametrize("second", [f"/files/{UID}", f"http://127.0.0.1:8000/files/{UID}", f"HTTPS://x/files/{UID}"])
def test_concat_final_refuses_an_upload_named_twice_in_any_form(second: str) -> None:
    refused(parse_concat, f"final;/files/{UID} /files/{UID2} {second}", "/files/",
            match=f"names partial upload {UID} more than once")


def test_concat_final_takes_at_most_max_partials() -> None:
    ids = [f"{n:032x}" for n in range(1001)]
    assert parse_concat("final;" + " ".join(f"/files/{i}" for i in ids[:1000]), "/files/", 1000) == \
        ConcatRequest("final", tuple(ids[:1000]))
    refused(parse_concat, "final;" + " ".join(f"/files/{i}" for i in ids), "/files/", 1000,
            match="lists 1001 partial uploads; this server takes at most 1000")


def test_concat_final_counts_before_it_parses() -> None:
    """The 50,000-fold list of the report: refused on its count alone, in far less time
    than parsing it would take."""
    header = "final;" + " ".join([f"/files/{UID}"] * 50_000)
    started = time.perf_counter()
    refused(parse_concat, header, "/files/", 1000, match="lists 50000 partial uploads")
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    "url",
    [
        f"/other/{UID}",  # another path on this host
        f"http://127.0.0.1:8000/api/v1/uploads/{UID}",
        f"/files/../api/{UID}",
        f"/files/{UID}/../{UID2}",
        f"/files/{UID}/",
        f"/files/{UID}?x=1",
        f"/files/{UID}#frag",
        f"/files/{UID.upper()}",
        f"/files/{UID[:-1]}",
        f"/files/{UID}0",
        f"/files/sub/{UID}",
        f"//evil.example/files/{UID}",  # scheme-relative: another host
        f"files/{UID}",  # relative
        UID,  # a bare id is not a URL
        f"ftp:/files/{UID}x",
        "/files/",
    ],
)
def test_concat_final_refuses_urls_outside_the_collection(url: str) -> None:
    refused(parse_concat, f"final;/files/{UID2} {url}", "/files/",
            match="Upload-Concat names an upload that is not on this server")


def test_concat_refuses_url_under_a_differently_mounted_collection() -> None:
    refused(parse_concat, f"final;/files/{UID}", "/tus/", match="not on this server")


def test_concat_refuses_a_long_url_without_echoing_all_of_it() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_concat("final;/x/" + "a" * 10_000, "/files/")
    assert len(caught.value.message) < 400


@pytest.mark.parametrize("header", ["final", "final;", "final; ", "Final;/files/" + UID, "partial;x", "final:" + UID,
                                    "", "partials"])
def test_concat_refuses_malformed_headers(header: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_concat(header, "/files/")
    assert caught.value.status == 400


# -- upload ids ------------------------------------------------------------------------


def test_upload_ids_are_32_lowercase_hex() -> None:
    assert is_upload_id(UID)
    for bad in ("", UID.upper(), UID[:-1], UID + "0", "../" + UID[3:], UID[:-1] + "g", UID + "\n"):
        assert not is_upload_id(bad)
