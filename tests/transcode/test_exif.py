"""A photo's EXIF tags (transcode.exif, pure): found in JPEG, PNG, WebP and TIFF heads, bounded,
binary values left out, GPS in degrees; systematically corrupted blocks never raise."""

from __future__ import annotations

import io
import random
import warnings

from PIL import Image

from transcode import exif


def tagged(fmt: str, extra: dict[int, object] | None = None) -> bytes:
    tags = Image.Exif()
    tags[0x0112] = 6
    tags[0x010F] = "Police Issue Camera"
    tags.get_ifd(0x8769)[0x9003] = "2024:03:01 12:34:56"
    tags.get_ifd(0x8769)[0x927C] = b"\x00\x01maker note"
    gps = tags.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "S", (33.0, 51.0, 54.5), "E", (151.0, 12.0, 36.0)
    for tag, value in (extra or {}).items():
        tags[tag] = value
    out = io.BytesIO()
    Image.new("RGB", (16, 8), (10, 20, 30)).save(out, fmt, exif=tags.tobytes())
    return out.getvalue()


def test_tags_from_each_format_with_gps_in_degrees() -> None:
    for fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        found = exif.read(tagged(fmt))
        assert found["Make"] == "Police Issue Camera", fmt
        assert found["Orientation"] == "6" and found["DateTimeOriginal"] == "2024:03:01 12:34:56", fmt
        assert found["GPSPosition"] == "-33.865139, 151.210000", fmt  # south and east
        assert "MakerNote" not in found, fmt
        assert exif.orientation(tagged(fmt)) == 6, fmt


def test_no_exif_and_not_an_image() -> None:
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, "JPEG")
    assert exif.read(out.getvalue()) == {} and exif.orientation(out.getvalue()) is None
    for head in (b"", b"\xff\xd8", b"\xff\xd8\xff\xe1\x00", b"plain text", b"\x89PNG\r\n\x1a\n\x00\x00"):
        assert exif.read(head) == {}


def test_bounded_count_and_length_and_no_control_characters() -> None:
    many = {0xC000 + n: f"value {n}" for n in range(150)}  # tags no standard names: named by number
    found = exif.read(tagged("JPEG", many))
    assert len(found) == exif.MAX_TAGS and "Tag 0xc000" in found
    found = exif.read(tagged("JPEG", {0x010E: "x" * 5000, 0x0131: "bad\x01\x02value"}))
    assert found["ImageDescription"] == "x" * exif.MAX_VALUE
    assert "Software" not in found and found["Make"] == "Police Issue Camera"  # control characters: not text to show


def test_systematically_corrupted_blocks_never_raise() -> None:
    data = tagged("JPEG")
    block = exif.find_block(data)
    assert block is not None
    start = data.index(block)
    rng = random.Random(13)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and never leak Pillow's warnings
        for at in range(len(block)):  # every byte of the block set to 0xFF in turn, then to 0x00
            for value in (0xFF, 0x00):
                broken = bytearray(data)
                broken[start + at] = value
                found = exif.read(bytes(broken))
                assert all(isinstance(v, str) and len(v) <= exif.MAX_VALUE for v in found.values())
        for _ in range(500):  # and random damage, and cuts
            broken = bytearray(data)
            for _ in range(rng.randint(1, 30)):
                broken[start + rng.randrange(len(block))] = rng.randrange(256)
            assert isinstance(exif.read(bytes(broken[: rng.randint(2, len(broken))])), dict)
