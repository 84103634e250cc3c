"""Properties of the tus header parsers (transfer.headers), against anything a client can send.

Each parser either returns a value or raises ``BadRequest`` (a 400): never another
exception, which the handler would turn into a 500. Where a parser decodes, it agrees
with a naive reference written from the tus 1.0 text, and whatever it accepts respects
the documented limits.
"""

from __future__ import annotations

import base64
import re
import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

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

KEY_ALPHABET = string.ascii_letters + string.digits + "_.-"
HEX = "0123456789abcdef"

# Text as a hostile client might send it: anything at all, and text made of the pieces the
# grammar is built from (so the parsers are driven past their first check).
GRAMMAR_PIECES = st.sampled_from(
    [" ", "  ", ",", ";", "\t", "=", "==", "/", "-", "+", "a", "Zm9v", "AA==", "filename", "case", "sha256",
     "SHA1", "md5", "partial", "final;", "final", "/files/", "http://x/files/", "0", "9", "00000000000000000000",
     "\x00", "\r\n", "é", "٣", "\u2028", "\ufeff", "\U0001f600", HEX * 2]
)
HOSTILE_TEXT = st.one_of(st.text(), st.lists(GRAMMAR_PIECES, max_size=40).map("".join))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- Upload-Length / Upload-Offset -------------------------------------------------------


def reference_length(value: str) -> int | None:
    """Decimal ASCII digits, at most 20 of them, with surrounding white space ignored."""
    text = value.strip()
    if 1 <= len(text) <= 20 and all(c in string.digits for c in text):
        return int(text)
    return None


@settings(max_examples=300)
@given(HOSTILE_TEXT | st.integers(min_value=-(10**25), max_value=10**25).map(str))
@example("٣")  # a digit, but not an ASCII one
@example("1" * 21)
@example(" 0 ")
def test_length_is_a_decimal_integer_or_bad_request(value: str) -> None:
    expected = reference_length(value)
    if expected is None:
        with pytest.raises(BadRequest):
            parse_length(value, "Upload-Length")
    else:
        assert parse_length(value, "Upload-Length") == expected


# -- Upload-Metadata ---------------------------------------------------------------------

KEYS = st.text(alphabet=KEY_ALPHABET, min_size=1, max_size=64)
# Any text that can be a value: encodable as UTF-8 (no lone surrogates) and no NUL.
VALUE_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")
VALUES = st.text(alphabet=VALUE_CHARACTERS, max_size=60)


@st.composite
def value_near_limit(draw: st.DrawFn) -> str:
    """A value whose UTF-8 form is a few bytes either side of MAX_VALUE_BYTES."""
    head = draw(st.text(alphabet=VALUE_CHARACTERS, max_size=20))
    target = MAX_VALUE_BYTES + draw(st.integers(min_value=-3, max_value=3))
    return head + "a" * max(0, target - len(head.encode()))


METADATA = st.dictionaries(KEYS, VALUES | value_near_limit(), max_size=MAX_METADATA_PAIRS + 2)


@settings(max_examples=300)
@given(HOSTILE_TEXT)
@example("filename " + "=" * 8)
@example("k " + b64("\udcff".encode("utf-8", "surrogatepass")))
def test_metadata_parses_or_refuses_anything(header: str) -> None:
    try:
        metadata = parse_metadata(header)
    except BadRequest:
        return
    assert len(metadata) <= MAX_METADATA_PAIRS
    for key, value in metadata.items():
        assert re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", key)
        assert "\x00" not in value
        assert len(value.encode()) <= MAX_VALUE_BYTES


@settings(max_examples=200)
@given(METADATA)
def test_metadata_round_trips_within_the_limits(metadata: dict[str, str]) -> None:
    header = encode_metadata(metadata)
    fits = (
        len(metadata) <= MAX_METADATA_PAIRS
        and all(len(v.encode()) <= MAX_VALUE_BYTES for v in metadata.values())
        and len(header) <= MAX_METADATA_HEADER
    )
    if fits:
        assert parse_metadata(header) == metadata
    else:
        with pytest.raises(BadRequest):
            parse_metadata(header)


def reference_value(raw: bytes) -> str | None:
    """What one base64 value decodes to, or None where the server must refuse it."""
    if len(raw) > MAX_VALUE_BYTES:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


@settings(max_examples=300)
@given(st.binary(max_size=64) | st.binary(min_size=MAX_VALUE_BYTES - 2, max_size=MAX_VALUE_BYTES + 2))
@example(b"\xed\xa0\x80")  # a UTF-8-encoded surrogate: not UTF-8
@example("é".encode() * (MAX_VALUE_BYTES // 2))
@example(b"a" * (MAX_VALUE_BYTES + 1))
def test_metadata_value_is_utf8_text_or_refused(raw: bytes) -> None:
    header = f"description {b64(raw)}"
    expected = reference_value(raw)
    if expected is None or len(header) > MAX_METADATA_HEADER:
        with pytest.raises(BadRequest):
            parse_metadata(header)
    else:
        assert parse_metadata(header) == {"description": expected}


@settings(max_examples=50)
@given(st.integers(min_value=MAX_METADATA_PAIRS - 2, max_value=MAX_METADATA_PAIRS + 2), st.booleans())
def test_metadata_pair_count_limit(count: int, with_values: bool) -> None:
    metadata = {f"k{i}": ("v" if with_values else "") for i in range(count)}
    if count <= MAX_METADATA_PAIRS:
        assert parse_metadata(encode_metadata(metadata)) == metadata
    else:
        with pytest.raises(BadRequest):
            parse_metadata(encode_metadata(metadata))


@settings(max_examples=50)
@given(st.integers(min_value=-4, max_value=4))
def test_metadata_header_length_limit(delta: int) -> None:
    # Three values of under MAX_VALUE_BYTES each, padded with spaces (allowed around pairs)
    # to a header of exactly MAX_METADATA_HEADER + delta characters.
    core = encode_metadata({"a": "x" * 3000, "b": "y" * 3000, "c": "z" * 3000})
    header = core + " " * (MAX_METADATA_HEADER + delta - len(core))
    assert len(header) == MAX_METADATA_HEADER + delta
    if delta <= 0:
        assert parse_metadata(header) == {"a": "x" * 3000, "b": "y" * 3000, "c": "z" * 3000}
    else:
        with pytest.raises(BadRequest):
            parse_metadata(header)


# -- Upload-Checksum ---------------------------------------------------------------------


@settings(max_examples=300)
@given(HOSTILE_TEXT)
def test_checksum_parses_or_refuses_anything(header: str) -> None:
    try:
        found = parse_checksum(header)
    except BadRequest:
        return
    assert found is not None
    assert found.algorithm in CHECKSUM_ALGORITHMS


@settings(max_examples=200)
@given(
    st.sampled_from(CHECKSUM_ALGORITHMS).flatmap(
        lambda name: st.tuples(*(st.sampled_from([c, c.upper()]) for c in name)).map("".join)
    ),
    st.binary(min_size=1, max_size=64),
    st.sampled_from(["", " ", "\t"]),
)
def test_checksum_round_trips(algorithm: str, digest: bytes, padding: str) -> None:
    assert parse_checksum(f"{padding}{algorithm} {b64(digest)}{padding}") == Checksum(algorithm.lower(), digest)


# -- Upload-Concat -----------------------------------------------------------------------

UPLOAD_IDS = st.text(alphabet=HEX, min_size=32, max_size=32)
COLLECTIONS = st.sampled_from(["/files/", "/files", "/api/tus/files/"])


@st.composite
def partial_url(draw: st.DrawFn, collection: str, upload_id: str) -> str:
    path = collection.rstrip("/") + "/" + upload_id
    if draw(st.booleans()):
        return path
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "x-tus+v1.0"]))
    host = draw(st.sampled_from(["evidence.police.uk", "127.0.0.1:8000", "[::1]:443", "user@host"]))
    return f"{scheme}://{host}{path}"


@settings(max_examples=200)
@given(COLLECTIONS, st.lists(UPLOAD_IDS, min_size=1, max_size=20, unique=True), st.data())
def test_concat_final_returns_the_listed_ids_in_order(collection: str, ids: list[str], data: st.DataObject) -> None:
    urls = [data.draw(partial_url(collection, upload_id)) for upload_id in ids]
    separator = data.draw(st.sampled_from([" ", "  ", "\t"]))
    header = "final;" + separator.join(urls)
    assert parse_concat(header, collection) == ConcatRequest("final", tuple(ids))


@settings(max_examples=300)
@given(HOSTILE_TEXT, COLLECTIONS)
@example("final;/files/" + "0" * 32 + "/../" + "1" * 32, "/files/")
@example("final;/files/" + "A" * 32, "/files/")
@example("final;/other/" + "0" * 32, "/files/")
def test_concat_parses_or_refuses_anything(header: str, collection: str) -> None:
    try:
        found = parse_concat(header, collection)
    except BadRequest:
        return
    assert found is not None
    if found.kind == "partial":
        assert found.partial_ids == ()
    else:
        assert found.kind == "final"
        assert found.partial_ids
        assert all(is_upload_id(upload_id) for upload_id in found.partial_ids)


# -- upload ids --------------------------------------------------------------------------


@st.composite
def near_upload_ids(draw: st.DrawFn) -> str:
    """A valid id with one character replaced, one added or one removed."""
    upload_id = draw(UPLOAD_IDS)
    at = draw(st.integers(min_value=0, max_value=31))
    other = draw(st.sampled_from("ABCDEFGg/.-_ \n\t\x00٠０" + HEX))
    return draw(st.sampled_from([upload_id[:at] + other + upload_id[at + 1 :], upload_id[:at] + other + upload_id[at:],
                                 upload_id[:at] + upload_id[at + 1 :]]))


@settings(max_examples=300)
@given(UPLOAD_IDS | near_upload_ids() | st.text())
@example("0" * 32 + "\n")
@example("٠" * 32)
def test_upload_id_is_exactly_32_lowercase_hex(value: str) -> None:
    assert is_upload_id(value) == (len(value) == 32 and all(c in HEX for c in value))


@settings(max_examples=200)
@given(st.lists(UPLOAD_IDS, min_size=1, max_size=12), st.integers(min_value=1, max_value=10), COLLECTIONS)
@example(["0" * 32] * 3, 10, "/files/")  # one partial listed three times
def test_concat_final_takes_each_partial_once_and_at_most_the_limit(
    ids: list[str], max_partials: int, collection: str
) -> None:
    header = "final;" + " ".join(collection.rstrip("/") + "/" + upload_id for upload_id in ids)
    if len(ids) > max_partials or len(set(ids)) < len(ids):
        with pytest.raises(BadRequest):
            parse_concat(header, collection, max_partials)
    else:
        assert parse_concat(header, collection, max_partials) == ConcatRequest("final", tuple(ids))


@settings(max_examples=200)
@given(HOSTILE_TEXT | st.lists(UPLOAD_IDS, max_size=8).map(lambda ids: "final;" + " ".join(f"/files/{i}" for i in ids)),
       st.integers(min_value=1, max_value=5))
def test_concat_never_returns_more_than_the_limit_or_a_repeat(header: str, max_partials: int) -> None:
    try:
        found = parse_concat(header, "/files/", max_partials)
    except BadRequest:
        return
    assert found is not None
    assert len(found.partial_ids) <= max_partials
    assert len(set(found.partial_ids)) == len(found.partial_ids)
