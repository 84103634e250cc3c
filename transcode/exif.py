"""The EXIF tags of a photo, listed for the reviewer: a short {tag name: text} dict.

Read from the first bytes of the original only (the JPEG's APP1 segment, PNG's ``eXIf`` chunk,
WebP's ``EXIF`` chunk, or a TIFF's own first directory), and parsed by Pillow's EXIF reader,
which reads the TIFF directory structure in Python and never touches pixels (decoding stays
with ffmpeg, under its bounds). The block is hostile: every tag is optional, anything that
does not parse is left out, and nothing here raises for what the bytes say.

Pure: no I/O.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from fractions import Fraction
from typing import Any, Final

from PIL import ExifTags, Image

MAX_TAGS: Final = 100
MAX_VALUE: Final = 200  # characters of one value's text
MAX_BLOCK: Final = 1 << 20  # an EXIF block is at most 64 KiB in a JPEG; others are held to this

_EXIF_IFD, _GPS_IFD, _INTEROP_IFD = 0x8769, 0x8825, 0xA005
# Pointers to other directories and thumbnails: where things are, not what the photo is.
_POINTERS = frozenset({_EXIF_IFD, _GPS_IFD, _INTEROP_IFD, 0x0201, 0x0202, 0x0111, 0x0117, 0x014A})
_ORIENTATION: Final = 0x0112


def read(head: bytes) -> dict[str, str]:
    """The EXIF tags found in ``head`` (the first bytes of an image), at most ``MAX_TAGS``,
    each value as text of at most ``MAX_VALUE`` characters; binary values are left out. GPS
    coordinates are given in decimal degrees as ``GPSPosition`` too. Empty when there are none
    or the block does not parse."""
    block = find_block(head)
    if not block:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about corrupt blocks; a hostile one is expected
        return _tags(block)


def find_block(head: bytes) -> bytes | None:
    """The raw EXIF (TIFF-structured) block in the image's first bytes, or None."""
    try:
        if head.startswith(b"\xff\xd8"):
            return _jpeg(head)
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return _chunk(_png_chunks(head), b"eXIf")
        if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
            return _chunk(_webp_chunks(head), b"EXIF")
        if head.startswith((b"II*\x00", b"MM\x00*")):
            return head[:MAX_BLOCK]
    except (struct.error, IndexError):
        return None
    return None


def _jpeg(head: bytes) -> bytes | None:
    at = 2
    while at + 4 <= len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0xDA or marker == 0xD9:  # start of scan, end of image: no metadata follows
            return None
        (length,) = struct.unpack_from(">H", head, at + 2)
        if length < 2:
            return None
        body = head[at + 4 : at + 2 + length]
        if marker == 0xE1 and body.startswith(b"Exif\x00\x00"):
            return body[6:]
        at += 2 + length
    return None


def _png_chunks(head: bytes) -> Iterator[tuple[bytes, bytes]]:
    at = 8
    while at + 8 <= len(head):
        length, kind = struct.unpack_from(">I4s", head, at)
        yield kind, head[at + 8 : at + 8 + min(length, MAX_BLOCK)]
        if kind == b"IDAT":
            return
        at += 12 + length


def _webp_chunks(head: bytes) -> Iterator[tuple[bytes, bytes]]:
    at = 12
    while at + 8 <= len(head):
        kind, length = struct.unpack_from("<4sI", head, at)
        yield kind, head[at + 8 : at + 8 + min(length, MAX_BLOCK)]
        at += 8 + length + (length & 1)


def _chunk(chunks: Iterator[tuple[bytes, bytes]], wanted: bytes) -> bytes | None:
    for kind, body in chunks:
        if kind == wanted:
            return body.removeprefix(b"Exif\x00\x00")
    return None


def _tags(block: bytes) -> dict[str, str]:
    exif = Image.Exif()
    try:
        exif.load(block)
        base = dict(exif)
    except Exception:  # Pillow raises many types on malformed directories: no tags
        return {}
    found: dict[str, str] = {}
    _add(found, base, ExifTags.TAGS)
    for pointer in (_EXIF_IFD, _GPS_IFD):
        if pointer not in base:
            continue
        directory = _directory(exif, pointer)
        _add(found, directory, ExifTags.GPSTAGS if pointer == _GPS_IFD else ExifTags.TAGS)
        if pointer == _GPS_IFD:
            position = _position(directory)
            if position and len(found) < MAX_TAGS:
                found["GPSPosition"] = position
    return found


def _directory(exif: Image.Exif, pointer: int) -> dict[int, Any]:
    try:
        return dict(exif.get_ifd(pointer))
    except Exception:  # a broken sub-directory: the rest of the block still counts
        return {}


def _add(found: dict[str, str], directory: dict[int, Any], names: dict[int, str]) -> None:
    for tag, value in directory.items():
        if len(found) >= MAX_TAGS:
            return
        if not isinstance(tag, int) or tag in _POINTERS:
            continue
        text = _text(value)
        if text is None:
            continue
        name = names.get(tag) or f"Tag 0x{tag:04x}"
        found.setdefault(name, text)


def _text(value: Any) -> str | None:
    """A value as short text, or None for binary data (maker notes, thumbnails, undecoded bytes)."""
    if isinstance(value, bytes):
        return None
    if isinstance(value, str):
        text = value.replace("\x00", "").strip()
        if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text):
            return None
    elif isinstance(value, tuple):
        if len(value) > 16 or any(isinstance(v, (bytes, tuple)) for v in value):
            return None
        parts = [_text(v) for v in value]
        text = ", ".join(p for p in parts if p is not None)
    elif isinstance(value, (int, float, Fraction)) or hasattr(value, "numerator"):
        text = _number(value)
    else:
        return None
    return text[:MAX_VALUE] if text else None


def _number(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return ""
    if number != number or number in (float("inf"), float("-inf")):  # NaN (a 0/0 rational) or infinite
        return ""
    return str(int(number)) if number.is_integer() else f"{number:.6g}"


def _position(gps: dict[int, Any]) -> str | None:
    """"51.500733, -0.124625": latitude and longitude in decimal degrees, south and west negative."""
    latitude = _degrees(gps.get(2), gps.get(1))
    longitude = _degrees(gps.get(4), gps.get(3))
    if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
        return None
    return f"{latitude:.6f}, {longitude:.6f}"


def _degrees(value: Any, ref: Any) -> float | None:
    try:
        degrees, minutes, seconds = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    total = degrees + minutes / 60 + seconds / 3600
    if total != total:
        return None
    return -total if str(ref).strip().upper() in ("S", "W") else total


def orientation(head: bytes) -> int | None:
    """The EXIF Orientation (1-8) in the image's first bytes, if any."""
    block = find_block(head)
    if not block:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            exif = Image.Exif()
            exif.load(block)
            value = exif.get(_ORIENTATION)
        except Exception:
            return None
    return value if isinstance(value, int) and 1 <= value <= 8 else None
