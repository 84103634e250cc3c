"""RangeFile: a seekable file over an object read by byte ranges, compared with the bytes it stands
for; its requests counted, its memory held to one buffer, a short range reported, never hidden.
Ranges are read from a real file (as the S3 vault reads them with Range GETs)."""

from __future__ import annotations

import io
import random
import tracemalloc
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from transcode.seekable import RangeFile

MiB = 1024 * 1024


class Ranges:
    """Range requests against a local file, streamed and counted; ``short`` ends every answer that
    many bytes early (an object that changed, or a connection that dropped mid-range)."""

    def __init__(self, path: Path, short: int = 0) -> None:
        self.path = path
        self.short = short
        self.asked: list[tuple[int, int]] = []
        self.open = 0

    def __call__(self, start: int, end: int) -> BinaryIO:
        self.asked.append((start, end))
        self.open += 1
        file = self.path.open("rb", buffering=0)
        file.seek(start)
        return Body(self, file, max(0, end - start - self.short))  # type: ignore[return-value]  # a raw stream, as the vault's


class Body(io.RawIOBase):
    def __init__(self, ranges: Ranges, file: io.FileIO, length: int) -> None:
        super().__init__()
        self.ranges, self.file, self.left = ranges, file, length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with memoryview(buffer) as view:
            got = self.file.readinto(view[: min(len(view), self.left)]) or 0
        self.left -= got
        return got

    def close(self) -> None:
        if not self.closed:
            self.file.close()
            self.ranges.open -= 1
        super().close()


@pytest.fixture
def data(tmp_path: Path) -> tuple[bytes, Path]:
    content = random.Random(11).randbytes(100_000)
    path = tmp_path / "object.bin"
    path.write_bytes(content)
    return content, path


def test_it_reads_like_the_bytes_it_stands_for(data: tuple[bytes, Path]) -> None:
    content, path = data
    ranges = Ranges(path)
    reference = io.BytesIO(content)
    choice = random.Random(7)
    with RangeFile(len(content), ranges, buffer_size=4096) as remote:
        for _ in range(500):
            whence = choice.choice([io.SEEK_SET, io.SEEK_CUR, io.SEEK_END])
            offset = {io.SEEK_SET: choice.randrange(0, 110_000), io.SEEK_CUR: choice.randrange(-500, 500),
                      io.SEEK_END: -choice.randrange(0, 10_000)}[whence]
            if reference.tell() + offset < 0 and whence == io.SEEK_CUR:
                continue
            assert remote.seek(offset, whence) == reference.seek(offset, whence)
            size = choice.choice([0, 1, 22, 4095, 4096, 5000, 20_000])
            assert remote.read(size) == reference.read(size)
            assert remote.tell() == reference.tell()
        remote.seek(0)
        assert remote.read() == content
        assert remote.size == len(content) and remote.seekable() and remote.readable()
    assert ranges.open == 0  # every range stream it opened, it closed


def test_reading_through_costs_one_request_per_buffer(data: tuple[bytes, Path]) -> None:
    content, path = data
    ranges = Ranges(path)
    with RangeFile(len(content), ranges, buffer_size=10_000) as remote:
        while remote.read(777):
            pass
        assert remote.requests == len(ranges.asked) == 10
    assert ranges.asked == [(n, min(n + 10_000, len(content))) for n in range(0, len(content), 10_000)]


def test_small_seeks_within_the_buffer_cost_nothing(data: tuple[bytes, Path]) -> None:
    content, path = data
    ranges = Ranges(path)
    with RangeFile(len(content), ranges, buffer_size=8192) as remote:
        remote.seek(50_000)
        remote.read(10)
        for offset in (50_100, 50_000, 58_000, 50_500):
            remote.seek(offset)
            assert remote.read(100) == content[offset : offset + 100]
        assert len(ranges.asked) == 1


def test_a_large_read_goes_straight_to_the_caller_never_held_whole(tmp_path: Path) -> None:
    path = tmp_path / "large.bin"
    content = random.Random(3).randbytes(24 * MiB)
    path.write_bytes(content)
    ranges = Ranges(path)
    target = bytearray(16 * MiB)
    with RangeFile(len(content), ranges, buffer_size=MiB) as remote:
        remote.seek(5)
        tracemalloc.start()
        try:
            assert remote.readinto(target) == len(target)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert target == content[5 : 5 + 16 * MiB]
    assert ranges.asked == [(5, 5 + 16 * MiB)]  # one request, no buffer filled on the way
    # A few 1 MiB pieces in flight (read from the range stream, copied in), not the 16 MiB read.
    assert peak < 4 * MiB, f"{peak:,} bytes held to read 16 MiB"


def test_reads_are_whole_until_the_end_and_empty_after_it(data: tuple[bytes, Path]) -> None:
    content, path = data
    with RangeFile(len(content), Ranges(path), buffer_size=1000) as remote:
        remote.seek(len(content) - 10)
        assert remote.read(5000) == content[-10:]  # short only at the end
        assert remote.read(10) == b""
        remote.seek(len(content) + 500)  # past the end, as a file allows
        assert remote.read(10) == b""


def test_a_range_that_comes_back_short_is_an_error_naming_the_object(data: tuple[bytes, Path]) -> None:
    content, path = data
    with RangeFile(len(content), Ranges(path, short=1), buffer_size=1000, name="originals/abc") as remote:
        with pytest.raises(OSError, match=r"range 0-1000 of originals/abc ended after 999 bytes"):
            remote.read(10)


def test_bad_arguments_and_a_closed_file_are_refused(data: tuple[bytes, Path]) -> None:
    content, path = data
    with pytest.raises(ValueError, match="size"):
        RangeFile(-1, Ranges(path))
    with pytest.raises(ValueError, match="buffer_size"):
        RangeFile(10, Ranges(path), buffer_size=0)
    remote = RangeFile(len(content), Ranges(path))
    with pytest.raises(ValueError, match="negative seek position"):
        remote.seek(-1)
    with pytest.raises(ValueError, match="invalid whence"):
        remote.seek(0, 3)
    remote.close()
    for action in (remote.tell, lambda: remote.seek(0), lambda: remote.read(1)):
        with pytest.raises(ValueError, match="closed file"):
            action()


def test_an_empty_object_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    ranges = Ranges(path)
    with RangeFile(0, ranges) as remote:
        assert remote.read() == b"" and remote.read(10) == b""
    assert ranges.asked == []
