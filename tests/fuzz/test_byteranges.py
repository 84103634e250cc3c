"""Properties of the media headers (evidence.byteranges): Range against a naive reference of
RFC 9110 §14 as the module documents it, Content-Disposition against header injection and
for an exact round trip of the officer's filename, Repr-Digest round trip.

Header values reach these functions as Starlette gives them, decoded as Latin-1, so the Range
properties draw mostly Latin-1 text; any other text must give the same answers too.
"""

from __future__ import annotations

import base64
import re
import string
import unicodedata
from urllib.parse import unquote

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from evidence.http.ranges import ByteRange, Unsatisfiable, content_disposition, parse_range, repr_digest

LATIN1 = st.characters(codec="latin-1")
SIZES = st.integers(min_value=0, max_value=2**40) | st.integers(min_value=0, max_value=300)


# -- Range -------------------------------------------------------------------------------


def _number(digits: str) -> int:
    """The value of a run of ASCII digits of any length (int() refuses more than 4,300)."""
    value = 0
    for at in range(0, len(digits), 1000):
        chunk = digits[at : at + 1000]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def reference_range(header: str | None, size: int) -> ByteRange | type[Unsatisfiable] | None:
    """RFC 9110 §14.1.2 and §14.2, written plainly, with the module's documented choices: a
    header that does not parse is ignored (None); several ranges get the first satisfiable
    one; none satisfiable is a 416 (Unsatisfiable). White space around the parts is
    tolerated, as the module does; digits are ASCII only (RFC 5234 DIGIT)."""
    if header is None:
        return None
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    parsed = []
    for spec in specs.split(","):
        first, dash, last = spec.partition("-")
        first, last = first.strip(), last.strip()
        if not dash or not all(c in string.digits for c in first + last) or first == last == "":
            return None
        parsed.append((first, last))
    for first, last in parsed:
        if first == "":
            count = _number(last)
            if count == 0 or size == 0:
                continue
            return ByteRange(max(size - count, 0), size - 1)
        start = _number(first)
        if last != "" and _number(last) < start:
            return None
        if start >= size:
            continue
        return ByteRange(start, size - 1 if last == "" else min(_number(last), size - 1))
    return Unsatisfiable


def outcome(header: str | None, size: int) -> ByteRange | type[Unsatisfiable] | None:
    try:
        return parse_range(header, size)
    except Unsatisfiable:
        return Unsatisfiable


@st.composite
def number_text(draw: st.DrawFn, max_digits: int = 24) -> str:
    return draw(st.integers(min_value=0, max_value=10**max_digits).map(str) | st.sampled_from(["", "0", "00", "007"]))


UNITS = st.sampled_from(["bytes", "BYTES", "Bytes", " bytes ", "bytes ", "items", "byte", "", "bytes;"])
UNIT_SEPARATORS = st.sampled_from(["=", "=", "=", " = ", ":", ""])


@st.composite
def range_headers(draw: st.DrawFn, numbers: st.SearchStrategy[str], units: st.SearchStrategy[str] = UNITS,
                  separators: st.SearchStrategy[str] = UNIT_SEPARATORS) -> str:
    """Mostly well-formed Range headers, with the near misses a hostile client would try."""
    space = st.sampled_from(["", "", " ", "\t", "\xa0", "\x85"])
    specs = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        shape = draw(st.sampled_from(["int", "open", "suffix", "junk"]))
        a, b = draw(numbers), draw(numbers)
        spec = {"int": f"{a}-{b}", "open": f"{a}-", "suffix": f"-{b}",
                "junk": draw(st.sampled_from(["-", "", "1-2-3", "a-b", "0x1-2", "1..2", "+1-2", "1-+2", "½-1"]))}[shape]
        s1, s2, s3 = draw(space), draw(space), draw(space)
        specs.append(f"{s1}{spec.replace('-', s2 + '-' + s3, 1)}{draw(space)}")
    return f"{draw(units)}{draw(separators)}{','.join(specs)}"


@settings(max_examples=500)
@given(range_headers(number_text()) | st.text(alphabet=LATIN1) | st.text(), SIZES)
@example("bytes=١-٢", 100)  # digits, but not ASCII ones: not a range (RFC 5234 DIGIT)
@example("bytes=0-0", 0)
@example("bytes=-0", 1)
@example("bytes=0-,-1", 1)
@example("bytes=5-1,0-1", 10)  # one invalid spec spoils the whole header
@example("bytes=10-20,0-1", 10)
def test_range_agrees_with_the_rfc_reference(header: str, size: int) -> None:
    assert outcome(header, size) == reference_range(header, size)


@settings(max_examples=300)
@given(range_headers(number_text()) | st.text(alphabet=LATIN1), SIZES)
def test_a_chosen_range_lies_inside_the_representation(header: str, size: int) -> None:
    chosen = outcome(header, size)
    if isinstance(chosen, ByteRange):
        assert 0 <= chosen.start <= chosen.end < size
        assert chosen.length == chosen.end - chosen.start + 1
        assert chosen.content_range(size) == f"bytes {chosen.start}-{chosen.end}/{size}"


@settings(max_examples=50)
@given(range_headers(st.integers(min_value=4_290, max_value=6_000).map(lambda n: "9" * n)), SIZES)
@example("bytes=" + "1" * 4_301 + "-", 100)
@example("bytes=-" + "0" * 5_000 + "1", 100)  # leading zeros count too: int() limits digits, not value
def test_range_with_numbers_of_any_length_agrees_with_the_reference(header: str, size: int) -> None:
    # int() refuses more than 4,300 digits; a client may send 16 KB of them.
    assert outcome(header, size) == reference_range(header, size)


# -- Content-Disposition -----------------------------------------------------------------

ATTR_CHARS = set(string.ascii_letters + string.digits + "!#$&+-.^_`|~%")
HEADER = re.compile(r"(attachment|inline); filename=\"([^\"\\]*)\"; filename\*=UTF-8''([^;]*)")
NASTY = st.sampled_from(["\r", "\n", "\r\n", "\x00", '"', "\\", "/", ";", "'", "%", "%0d%0a", "\u2028", "\u202e",
                         "\ufeff", "\x7f", "\x85", "..", " ", "\udcff", "é", "监控", "\U0001f4f9"])


def expected_name(filename: str) -> str:
    """What the officer's filename must come back as from filename*: its last path segment
    (either separator), without control or format characters, trimmed, no leading dots."""
    name = re.split(r"[/\\]", filename)[-1]
    name = "".join(c for c in name if not unicodedata.category(c).startswith("C"))
    return name.strip().lstrip(".") or "download"


@settings(max_examples=400)
@given(st.text() | st.lists(NASTY | st.text(max_size=3), max_size=12).map("".join), st.sampled_from(["attachment", "inline"]))
@example("line\r\nSet-Cookie: x=1.mp4", "attachment")
@example('a"; filename*=UTF-8\'\'evil.exe', "attachment")
def test_content_disposition_is_one_safe_header_that_round_trips(filename: str, disposition: str) -> None:
    header = content_disposition(filename, disposition)
    # Nothing that could end the header or smuggle another: ASCII, no control characters.
    assert header.isascii()
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in header)
    match = HEADER.fullmatch(header)
    assert match, header
    assert match.group(1) == disposition
    fallback, exact = match.group(2), match.group(3)
    assert fallback and fallback == fallback.strip()
    assert set(exact) <= ATTR_CHARS
    assert unquote(exact, errors="strict") == expected_name(filename)


PLAIN_NAME = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn"), exclude_characters="/\\"),
    min_size=1,
    max_size=80,
)


@settings(max_examples=300)
@given(PLAIN_NAME)
@example("CCTV 2024-03-01 23.59.59 (cam 4).mp4")
@example("Überwachung – Kamera ü.mp4")
@example("%41%0d%0a.mp4")
def test_a_plain_filename_comes_back_exactly(filename: str) -> None:
    assume(filename == filename.strip() and not filename.startswith("."))
    header = content_disposition(filename)
    exact = header.split("; filename*=UTF-8''", 1)[1]
    assert unquote(exact, errors="strict") == filename


# -- Repr-Digest -------------------------------------------------------------------------


@settings(max_examples=100)
@given(st.binary(min_size=32, max_size=32))
def test_repr_digest_round_trips(digest: bytes) -> None:
    value = repr_digest(digest.hex())
    match = re.fullmatch(r"sha-256=:([A-Za-z0-9+/]+={0,2}):", value)
    assert match
    assert base64.b64decode(match.group(1), validate=True) == digest
