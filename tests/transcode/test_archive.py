"""ZIP manifests: phone-extraction-like archives, zip bombs, damaged archives, and archives read by
range requests (a RangeFile, as the pipeline reads them from S3)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from transcode.archive import (
    ArchiveError,
    ArchiveRefused,
    EntryUnreadable,
    Limits,
    Reader,
    build_manifest,
    manifest_json,
)
from transcode.seekable import RangeFile

MiB = 1024 * 1024
WHEN = (2023, 5, 17, 14, 3, 22)
ZEROS = bytes(MiB)

# --- building and damaging archives -------------------------------------------------------------


def make_zip(files: list[tuple[str, bytes, int]], comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, method in files:
            archive.writestr(zipfile.ZipInfo(name, WHEN), data, compress_type=method)
        archive.comment = comment
    return buffer.getvalue()


def zeros_zip(path: Path, name: str, mib: int, method: int) -> None:
    """One entry of ``mib`` MiB of zeros, written a MiB at a time: never held in memory."""
    # A name, not a ZipInfo, so that the archive's method and level apply.
    with (
        zipfile.ZipFile(path, "w", compression=method, compresslevel=9) as archive,
        archive.open(name, "w") as entry,
    ):
        for _ in range(mib):
            entry.write(ZEROS)


# Offsets of fields in the local (PK\3\4) and central (PK\1\2) headers.
_LOCAL = {"flags": 6, "method": 8, "crc": 14, "compressed": 18, "size": 22}
_CENTRAL = {"flags": 8, "method": 10, "crc": 16, "compressed": 20, "size": 24}
_FORMAT = {"flags": "<H", "method": "<H", "crc": "<L", "compressed": "<L", "size": "<L"}


def header_offsets(data: bytes | bytearray, name: str) -> tuple[int, int]:
    encoded = name.encode()
    local = next(
        at for at in _find_all(data, b"PK\x03\x04") if data[at + 30 : at + 30 + len(encoded)] == encoded
    )
    central = next(
        at for at in _find_all(data, b"PK\x01\x02") if data[at + 46 : at + 46 + len(encoded)] == encoded
    )
    return local, central


def patch(data: bytes, name: str, **fields: int) -> bytes:
    """Rewrite header fields of entry ``name`` in both its local and its central header."""
    out = bytearray(data)
    local, central = header_offsets(out, name)
    for field, value in fields.items():
        struct.pack_into(_FORMAT[field], out, local + _LOCAL[field], value)
        struct.pack_into(_FORMAT[field], out, central + _CENTRAL[field], value)
    return bytes(out)


def patch_file(path: Path, name: str, **fields: int) -> None:
    """``patch`` for an archive on disk, touching only its headers."""
    with path.open("r+b") as file:
        head = file.read(30 + len(name))
        file.seek(-22, os.SEEK_END)
        (central,) = struct.unpack_from("<L", file.read(22), 16)  # a one-entry archive without a comment
        file.seek(central)
        assert head == b"PK\x03\x04" + head[4:30] + name.encode()
        assert file.read(46 + len(name))[46:] == name.encode()
        local = 0
        for field, value in fields.items():
            for at, offsets in ((local, _LOCAL), (central, _CENTRAL)):
                file.seek(at + offsets[field])
                file.write(struct.pack(_FORMAT[field], value))


def _find_all(data: bytes | bytearray, needle: bytes) -> Iterator[int]:
    at = data.find(needle)
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)


def manifest_of(data: bytes, **kwargs: Any) -> dict[str, Any]:
    return build_manifest(io.BytesIO(data), **kwargs)


def by_path(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["path"]: entry for entry in manifest["entries"]}


def bounded(run: Callable[[], object]) -> tuple[BaseException, float, int]:
    """Run ``run`` expecting it to raise; return the exception, seconds taken, and peak traced memory."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ArchiveError) as caught:
            run()
        return caught.value, time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- a phone extraction ------------------------------------------------------------------------

RANDOM = random.Random(4)
PHOTO = b"\xff\xd8\xff\xe1" + RANDOM.randbytes(300 * 1024)
DATABASE = b"SQLite format 3\x00" + b"INSERT INTO messages VALUES ('see you at 9');\n" * 20000
INNER = make_zip([("inner/secret.txt", b"not listed by the outer manifest", zipfile.ZIP_DEFLATED)])
NOTES = "Документы/写真 ü.txt"
EXTRACTION = [
    ("DCIM/100APPLE/IMG_0001.JPG", PHOTO, zipfile.ZIP_STORED),
    ("WhatsApp/Databases/msgstore.db", DATABASE, zipfile.ZIP_DEFLATED),
    ("WhatsApp/Media/", b"", zipfile.ZIP_STORED),
    ("backup.zip", INNER, zipfile.ZIP_DEFLATED),
    (NOTES, "заметки".encode() * 1000, zipfile.ZIP_BZIP2),
    ("logs/system.log", b"boot ok\n" * 50000, zipfile.ZIP_LZMA),
]


@pytest.fixture(scope="module")
def extraction() -> bytes:
    return make_zip(EXTRACTION, comment="UFED export — case 42".encode())


def test_every_entry_is_listed_in_archive_order_with_sizes_and_hashes(extraction: bytes) -> None:
    manifest = manifest_of(extraction)

    assert [entry["path"] for entry in manifest["entries"]] == [name for name, _, _ in EXTRACTION]
    for (name, data, method), entry in zip(EXTRACTION, manifest["entries"], strict=True):
        assert entry["is_dir"] is name.endswith("/")
        assert entry["size"] == len(data)
        assert entry["crc32"] == f"{zipfile.crc32(data):08x}"
        assert entry["method"] == {0: "stored", 8: "deflate", 12: "bzip2", 14: "lzma"}[method]
        assert entry["modified"] == "2023-05-17T14:03:22"
        assert entry["problem"] is None and entry["encrypted"] is False
        assert entry["sha256"] == (None if entry["is_dir"] else sha256(data))
    entries = by_path(manifest)
    assert entries["WhatsApp/Databases/msgstore.db"]["compressed_size"] < len(DATABASE) // 10
    assert entries["backup.zip"]["archive"] is True
    assert [path for path, entry in entries.items() if entry["archive"]] == ["backup.zip"]
    assert not any("secret" in path for path in entries)  # nested archives are not expanded
    assert manifest["comment"] == "UFED export — case 42"
    assert manifest["archive_size"] == len(extraction)
    assert manifest["warnings"] == []
    assert manifest["totals"] == {
        "entries": 6,
        "files": 5,
        "directories": 1,
        "archives": 1,
        "problems": 0,
        "size": sum(len(data) for _, data, _ in EXTRACTION),
        "compressed_size": sum(entry["compressed_size"] for entry in manifest["entries"]),
        "hashed_bytes": sum(len(data) for _, data, _ in EXTRACTION),
    }
    assert "no time zone" in manifest["times"]


def test_manifest_json_is_stable(extraction: bytes) -> None:
    first = manifest_json(manifest_of(extraction))
    assert first == manifest_json(manifest_of(extraction))
    assert json.loads(first) == manifest_of(extraction)
    assert NOTES.encode() in first  # UTF-8, not \u escapes
    assert list(json.loads(first)) == sorted(json.loads(first))


def test_names_without_the_utf8_flag_are_read_as_cp437() -> None:
    data = make_zip([("caf?.txt", b"espresso", zipfile.ZIP_STORED)])
    data = data.replace(b"caf?.txt", b"caf\x82.txt")  # 0x82 is é in code page 437
    assert [entry["path"] for entry in manifest_of(data)["entries"]] == ["café.txt"]


def test_progress_rises_to_the_archive_size(extraction: bytes) -> None:
    seen: list[int] = []
    manifest_of(extraction, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == len(extraction)


# --- bombs and absurd archives -----------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """256 MiB of zeros, deflated: about 1030:1, the most deflate can do."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    zeros_zip(path, "zeros.bin", 256, zipfile.ZIP_DEFLATED)
    return path


def test_a_zip_bomb_is_refused_before_decompressing(bomb: Path) -> None:
    assert bomb.stat().st_size < MiB
    with bomb.open("rb") as file:
        error, seconds, peak = bounded(lambda: build_manifest(file))
    assert type(error) is ArchiveRefused
    assert "expands beyond 1000:1" in str(error) and "zip bomb?" in str(error)
    assert seconds < 1 and peak < 4 * MiB


def test_a_bomb_that_lies_about_its_size_is_stopped_at_the_lie(bomb: Path, tmp_path: Path) -> None:
    liar = tmp_path / "liar.zip"
    liar.write_bytes(bomb.read_bytes())
    patch_file(liar, "zeros.bin", size=4096)
    with liar.open("rb") as file:
        error, seconds, peak = bounded(lambda: build_manifest(file))
    assert type(error) is ArchiveRefused
    assert "beyond the 4,096 bytes its header declares" in str(error)
    assert seconds < 1 and peak < 8 * MiB


def test_a_lying_bzip2_bomb_is_stopped_without_expanding_in_memory(tmp_path: Path) -> None:
    # zipfile's own reader would expand this in one call (64 MiB from a few hundred bytes).
    path = tmp_path / "bzip2-liar.zip"
    zeros_zip(path, "zeros.bin", 64, zipfile.ZIP_BZIP2)
    assert path.stat().st_size < 4096
    patch_file(path, "zeros.bin", size=4096)
    with path.open("rb") as file:
        error, seconds, peak = bounded(lambda: build_manifest(file))
    assert type(error) is ArchiveRefused
    assert seconds < 1 and peak < 8 * MiB


def test_the_reader_gives_each_entry_as_the_manifest_hashed_it(extraction: bytes) -> None:
    manifest = manifest_of(extraction)
    with Reader(io.BytesIO(extraction)) as reader:
        for index, entry in enumerate(manifest["entries"]):
            out = io.BytesIO()
            assert reader.extract(index, entry["path"], out) == (entry["sha256"] or sha256(b""), entry["size"])
            assert reader.head(index, entry["path"], 10) == out.getvalue()[:10]
        with pytest.raises(ArchiveError, match=r"no entry 0 named 'other\.jpg'"):  # not the archive its manifest lists
            reader.head(0, "other.jpg", 10)
        with pytest.raises(ArchiveError):
            reader.extract(len(manifest["entries"]), "logs/system.log", io.BytesIO())


def test_the_reader_refuses_what_the_manifest_refuses(bomb: Path, tmp_path: Path) -> None:
    with bomb.open("rb") as file, pytest.raises(ArchiveRefused):
        Reader(file)  # the declarations are checked before anything is read
    liar = tmp_path / "liar.zip"
    liar.write_bytes(bomb.read_bytes())
    patch_file(liar, "zeros.bin", size=4096)
    with liar.open("rb") as file, Reader(file) as reader:
        out = io.BytesIO()
        with pytest.raises(ArchiveRefused, match="beyond the 4,096 bytes its header declares"):
            reader.extract(0, "zeros.bin", out)
        assert len(out.getvalue()) <= 4096  # stopped at the lie, not after
    locked = patch(make_zip([("secret.jpg", PHOTO, zipfile.ZIP_STORED)]), "secret.jpg", flags=0x1)
    with Reader(io.BytesIO(locked)) as reader, pytest.raises(EntryUnreadable, match="encrypted"):
        reader.head(0, "secret.jpg", 10)
    corrupt = patch(make_zip([("a.jpg", PHOTO, zipfile.ZIP_STORED)]), "a.jpg", crc=0)
    with Reader(io.BytesIO(corrupt)) as reader, pytest.raises(EntryUnreadable, match="CRC-32 mismatch"):
        reader.extract(0, "a.jpg", io.BytesIO())


def test_overlapping_entries_are_refused() -> None:
    data = make_zip([("a.bin", ZEROS, zipfile.ZIP_DEFLATED)])
    _, central = header_offsets(data, "a.bin")
    end = data.rindex(b"PK\x05\x06")
    record = data[central:end]  # the one central directory record, listed twice
    eocd = bytearray(data[end:])
    struct.pack_into("<HHL", eocd, 8, 2, 2, 2 * len(record))
    twice = data[:central] + record + record + bytes(eocd)
    with pytest.raises(ArchiveRefused, match="overlap"):
        manifest_of(twice)


def test_an_absurd_entry_count_is_refused_before_the_directory_is_read() -> None:
    data = make_zip([(f"f{i}", b"x", zipfile.ZIP_STORED) for i in range(1001)])
    assert len(manifest_of(data, limits=Limits(max_entries=1001))["entries"]) == 1001
    with pytest.raises(ArchiveRefused, match="declares 1,001 entries, more than the limit of 1,000"):
        manifest_of(data, limits=Limits(max_entries=1000))


def test_a_zip64_entry_count_is_read_from_the_zip64_end_record() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(0xFFFF):  # the classic record can only say 0xFFFF: "see the ZIP64 record"
            archive.writestr(f"f{i}", b"")
    with pytest.raises(ArchiveRefused, match="declares 65,535 entries"):
        manifest_of(buffer.getvalue(), limits=Limits(max_entries=0xFFFE))


def test_an_entry_count_that_lies_is_caught_after_the_directory_is_read() -> None:
    data = bytearray(make_zip([(f"f{i}", b"x", zipfile.ZIP_STORED) for i in range(1001)]))
    struct.pack_into("<HH", data, data.rindex(b"PK\x05\x06") + 8, 5, 5)
    with pytest.raises(ArchiveRefused, match="holds 1,001 entries"):
        manifest_of(bytes(data), limits=Limits(max_entries=1000))


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (Limits(max_entry_uncompressed=MiB), "entry 'big.bin' declares 2,097,152 bytes"),
        (Limits(max_total_uncompressed=3 * MiB), "archive declares 4,194,304 bytes uncompressed"),
        (Limits(max_ratio=100, ratio_floor=MiB), "expands beyond 100:1"),
    ],
)
def test_declared_sizes_beyond_the_limits_are_refused(limits: Limits, message: str) -> None:
    data = make_zip([("big.bin", bytes(2 * MiB), zipfile.ZIP_DEFLATED), ("big2.bin", bytes(2 * MiB), 8)])
    with pytest.raises(ArchiveRefused, match=message):
        manifest_of(data, limits=limits)
    assert manifest_of(data)["totals"]["hashed_bytes"] == 4 * MiB  # within the default limits


# --- damaged entries and archives --------------------------------------------------------------


def damaged(how: str) -> bytes:
    files = [
        ("a.txt", b"first" * 1000, zipfile.ZIP_DEFLATED),
        ("b.txt", b"second" * 1000, zipfile.ZIP_DEFLATED),
        ("c.txt", b"third", zipfile.ZIP_STORED),
    ]
    data = make_zip(files)
    if how == "encrypted":
        return patch(data, "b.txt", flags=0x1)
    if how == "bad CRC":
        return patch(data, "b.txt", crc=0xDEADBEEF)
    if how == "unsupported method":
        return patch(data, "b.txt", method=9)
    if how == "corrupt data":
        local, _ = header_offsets(data, "b.txt")
        start = local + 30 + len("b.txt")
        return data[:start] + b"\xff" * 8 + data[start + 8 :]
    raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "problem"),
    [
        ("encrypted", "encrypted entry"),
        ("bad CRC", "CRC-32 mismatch"),
        ("unsupported method", "compression method 9 (deflate64) is not supported"),
        ("corrupt data", "corrupt compressed data"),
    ],
)
def test_a_damaged_entry_is_recorded_and_the_rest_is_hashed(how: str, problem: str) -> None:
    manifest = manifest_of(damaged(how))
    entries = by_path(manifest)
    assert problem in entries["b.txt"]["problem"]
    assert entries["b.txt"]["sha256"] is None
    assert manifest["warnings"] == [f"b.txt: {entries['b.txt']['problem']}"]
    assert manifest["totals"]["problems"] == 1
    assert entries["a.txt"]["sha256"] == sha256(b"first" * 1000)
    assert entries["c.txt"]["sha256"] == sha256(b"third")


def test_a_file_that_is_not_a_zip_is_an_archive_error() -> None:
    with pytest.raises(ArchiveError, match="not a ZIP archive") as caught:
        manifest_of(b"%PDF-1.7\n" + RANDOM.randbytes(5000))
    assert type(caught.value) is ArchiveError


def test_a_truncated_zip_is_an_archive_error(extraction: bytes) -> None:
    with pytest.raises(ArchiveError, match=r"not a ZIP archive .*cut short") as caught:
        manifest_of(extraction[: len(extraction) // 2])
    assert type(caught.value) is ArchiveError


def test_a_damaged_central_directory_is_an_archive_error(extraction: bytes) -> None:
    _, central = header_offsets(extraction, "backup.zip")
    broken = extraction[:central] + b"XXXX" + extraction[central + 4 :]
    with pytest.raises(ArchiveError, match="corrupt ZIP archive") as caught:
        manifest_of(broken)
    assert type(caught.value) is ArchiveError


# --- by range requests ------------------------------------------------------------------------


class CountingOpener:
    """Range requests against a local file, counted (standing in for S3 GET with a Range header)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ranges: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> BinaryIO:
        self.ranges.append((start, end))
        with self.path.open("rb") as file:
            file.seek(start)
            return io.BytesIO(file.read(end - start))


def range_file(path: Path, **kwargs: Any) -> tuple[RangeFile, CountingOpener]:
    opener = CountingOpener(path)
    return RangeFile(path.stat().st_size, opener, **kwargs), opener


def test_a_range_file_gives_the_same_manifest_with_few_requests(extraction: bytes, tmp_path: Path) -> None:
    path = tmp_path / "extraction.zip"
    path.write_bytes(extraction)
    remote, opener = range_file(path)
    with remote, path.open("rb") as local:
        assert manifest_json(build_manifest(remote)) == manifest_json(build_manifest(local))
    assert len(opener.ranges) <= 3


def test_a_range_file_reads_a_large_archive_one_buffer_per_request(tmp_path: Path) -> None:
    video = RANDOM.randbytes(12 * MiB)
    path = tmp_path / "large.zip"
    path.write_bytes(make_zip([("DCIM/clip.mp4", video, zipfile.ZIP_STORED), *EXTRACTION]))
    remote, opener = range_file(path, buffer_size=MiB)
    with remote:
        manifest = build_manifest(remote)
    assert by_path(manifest)["DCIM/clip.mp4"]["sha256"] == sha256(video)
    assert len(opener.ranges) <= 13 + 3
    assert max(end - start for start, end in opener.ranges) <= MiB
