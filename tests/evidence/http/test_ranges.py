"""Range, Content-Disposition and Repr-Digest headers, as pure functions."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import unquote

import pytest

from evidence.http.ranges import ByteRange, Unsatisfiable, content_disposition, parse_range, repr_digest


@pytest.mark.parametrize(
    "header, size, expected",
    [
        (None, 100, None),
        ("bytes=0-0", 100, ByteRange(0, 0)),
        ("bytes=0-99", 100, ByteRange(0, 99)),
        ("bytes=10-19", 100, ByteRange(10, 19)),
        ("bytes=50-", 100, ByteRange(50, 99)),
        ("bytes=90-500", 100, ByteRange(90, 99)),  # clipped to the end
        ("bytes=-10", 100, ByteRange(90, 99)),
        ("bytes=-500", 100, ByteRange(0, 99)),  # suffix longer than the file: all of it
        ("bytes= 5 - 9 ", 100, ByteRange(5, 9)),
        ("BYTES=5-9", 100, ByteRange(5, 9)),
        ("bytes=200-300, 5-9", 100, ByteRange(5, 9)),  # first satisfiable of several
        ("bytes=0-1,4-5", 100, ByteRange(0, 1)),  # several: the first alone
        # Not understood: ignored (send everything), as RFC 9110 says.
        ("items=0-5", 100, None),
        ("bytes=5-1", 100, None),
        ("bytes=abc", 100, None),
        ("bytes=-", 100, None),
        ("bytes=1-2-3", 100, None),
        ("bytes", 100, None),
        ("bytes=0x10-20", 100, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header, size", [("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=-0", 100),
                                          ("bytes=0-", 0), ("bytes=-5", 0), ("bytes=150-160,200-", 100)])
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


@pytest.mark.parametrize("header, expected", [
    ("bytes=0-" + "9" * 5_000, ByteRange(0, 99)),  # past int()'s 4,300 digits: clipped like any other
    ("bytes=-" + "9" * 5_000, ByteRange(0, 99)),
    ("bytes=-" + "0" * 5_000 + "1", ByteRange(99, 99)),  # leading zeros count for int(), not for the value
    ("bytes=" + "0" * 5_000 + "7-" + "0" * 5_000 + "9", ByteRange(7, 9)),
    ("bytes=" + "9" * 5_000 + "-" + "8" * 5_000, None),  # last before first, exactly: ignored
    ("bytes=" + "9" * 5_000 + "-,5-9", ByteRange(5, 9)),
    ("bytes=٣-٩", None),  # digits are ASCII digits only
])
def test_numbers_of_any_length(header: str, expected: ByteRange | None) -> None:
    assert parse_range(header, 100) == expected
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=" + "1" * 4_301 + "-", 100)


def test_content_range() -> None:
    assert ByteRange(10, 19).content_range(100) == "bytes 10-19/100"
    assert ByteRange(10, 19).length == 10


@pytest.mark.parametrize(
    "name, fallback, exact",
    [
        ("CCTV 01.mp4", "CCTV 01.mp4", "CCTV 01.mp4"),
        ('a"b\\c.mp4', "c.mp4", "c.mp4"),  # a backslash is a folder separator on the officer's machine
        ('say "hi".mp4', "say _hi_.mp4", 'say "hi".mp4'),
        ("../../etc/passwd", "passwd", "passwd"),
        ("C:\\Users\\pc\\cam.avi", "cam.avi", "cam.avi"),
        ("line\r\nSet-Cookie: x=1.mp4", "lineSet-Cookie_ x=1.mp4", "lineSet-Cookie: x=1.mp4"),
        ("Überwachung ü.mp4", "Uberwachung u.mp4", "Überwachung ü.mp4"),
        ("监控.mp4", ".mp4", "监控.mp4"),
        ("", "download", "download"),
        ("..", "download", "download"),
        ("%41;.mp4", "_41;.mp4", "%41;.mp4"),  # some browsers decode % in filename=
    ],
)
def test_content_disposition(name: str, fallback: str, exact: str) -> None:
    header = content_disposition(name)
    assert header.isascii() and "\r" not in header and "\n" not in header
    head, star = header.split("; filename*=UTF-8''")
    assert head == f'attachment; filename="{fallback}"'
    assert all(c.isalnum() or c in "%-._~" for c in star)  # nothing but attr-chars and escapes
    assert unquote(star) == exact


def test_repr_digest() -> None:
    digest = hashlib.sha256(b"evidence").hexdigest()
    assert repr_digest(digest) == f"sha-256=:{base64.b64encode(hashlib.sha256(b'evidence').digest()).decode()}:"
