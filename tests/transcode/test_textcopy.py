"""Text files (transcode.textcopy, pure): recognised from their first bytes, copied as UTF-8."""

from __future__ import annotations

from transcode.textcopy import Encoding, encoding_of, make_copy

TEXT = "Zoë's statement, 1 March 2024 — 12:34.\n"


def test_what_is_text() -> None:
    assert encoding_of(TEXT.encode()) == Encoding("utf-8", 0)
    assert encoding_of(b"\xef\xbb\xbf" + TEXT.encode()) == Encoding("utf-8", 3)
    assert encoding_of(b"\xff\xfe" + TEXT.encode("utf-16-le")) == Encoding("utf-16-le", 2)
    assert encoding_of(b"\xfe\xff" + TEXT.encode("utf-16-be")) == Encoding("utf-16-be", 2)
    assert encoding_of("Café au lait, two sugars please.\n".encode("cp1252") * 3) == Encoding("utf-8", 0)  # a few bad bytes: still text
    for binary in (b"", b"   \n", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), b"SQLite format 3\x00",
                   bytes(range(256)), TEXT.encode("utf-16-le"), b"\xff\xfe" + bytes(100)):
        assert encoding_of(binary) is None, binary[:16]


def test_a_copy_cut_inside_a_character_leaves_it_out() -> None:
    data = ("a" * 9 + "€").encode()  # the euro sign is three bytes: 9..11
    copy = make_copy(data[:10], len(data), Encoding("utf-8", 0))
    assert (copy.text, copy.bytes_used, copy.cut, copy.replaced) == (b"a" * 9, 9, True, 0)
    whole = make_copy(data, len(data), Encoding("utf-8", 0))
    assert (whole.text.decode(), whole.cut) == ("a" * 9 + "€", False)
    utf16 = b"\xff\xfe" + "ab".encode("utf-16-le")
    odd = make_copy(utf16[:5], len(utf16), Encoding("utf-16-le", 2))  # half of "b"
    assert (odd.text, odd.bytes_used) == (b"a", 4)


def test_invalid_bytes_are_replaced_and_counted() -> None:
    copy = make_copy(b"ok \xff\xfe end", 10, Encoding("utf-8", 0))
    assert copy.text.decode() == "ok \ufffd\ufffd end" and copy.replaced == 2
