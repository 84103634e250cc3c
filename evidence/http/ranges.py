"""HTTP header logic for serving media, as pure functions: Range (RFC 9110 §14),
Content-Disposition (RFC 6266 with RFC 8187/5987 ``filename*``) and Repr-Digest (RFC 9530)."""

from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

_SPEC = re.compile(r"\s*([0-9]*)\s*-\s*([0-9]*)\s*")
# More than any representation we serve has bytes (sizes are below 2**63). A longer number is
# read as this: int() refuses more than 4,300 digits, and a client may send 16 KB of them.
_BEYOND = 10**19


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` to ``end`` inclusive, as Content-Range counts them."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable(Exception):
    """No range of the header overlaps the representation: answer 416."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range to send for a ``Range`` header on a representation of ``size`` bytes.

    ``None`` means "send all of it (200)": no header, a unit other than bytes, or a header
    that does not parse (RFC 9110 says to ignore those). Several ranges are answered with
    the first satisfiable one alone (a 206 with a single Content-Range is a valid answer,
    and players only ever ask for one). Raises Unsatisfiable when none can be satisfied.
    """
    if header is None:
        return None
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    parsed: list[tuple[str, str]] = []
    for spec in specs.split(","):
        match = _SPEC.fullmatch(spec)
        if match is None or match.group(1) == match.group(2) == "":
            return None
        parsed.append((match.group(1), match.group(2)))
    for first, last in parsed:
        if first == "":  # suffix: the last N bytes
            count = _number(last)
            if count == 0 or size == 0:
                continue
            return ByteRange(max(size - count, 0), size - 1)
        if last != "" and _less(last, first):
            return None  # invalid syntax: ignore the whole header
        start = _number(first)
        if start >= size:
            continue
        end = size - 1 if last == "" else min(_number(last), size - 1)
        return ByteRange(start, end)
    raise Unsatisfiable(f"bytes */{size}")


def _number(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) < len(str(_BEYOND)) else _BEYOND


def _less(a: str, b: str) -> bool:
    """Whether the number ``a`` is less than ``b``, exactly, however many digits either has."""
    a, b = a.lstrip("0"), b.lstrip("0")
    return (len(a), a) < (len(b), b)


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """A header that names ``filename`` safely: an ASCII fallback with nothing that could
    end the quoted string or the header, and the exact name (minus any folder) in
    ``filename*``. The name is the officer's; it may hold anything."""
    name = re.split(r"[/\\]", filename)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")  # controls, CR/LF, format chars
    name = name.strip().lstrip(".") or "download"
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = re.sub(r'[^A-Za-z0-9 !#$&+\-.^_`|~()\[\]{}=@,;\']', "_", fallback).strip() or "download"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def repr_digest(sha256_hex: str) -> str:
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256_hex)).decode()}:"
