"""Hashes in one pass: known vectors, streams of every kind the pipeline reads, several blocks,
progress, and memory that stays at one block however large the stream."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
from pathlib import Path

import pytest
from botocore.response import StreamingBody

from transcode.hashing import BLOCK, hash_stream
from transcode.seekable import RangeFile

# FIPS 180-2 and RFC 1321 test vectors.
ABC = {
    "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    "md5": "900150983cd24fb0d6963f7d28e17f72",
    "sha1": "a9993e364706816aba3e25717850c26c9cd0d89d",
}
EMPTY = {
    "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "md5": "d41d8cd98f00b204e9800998ecf8427e",
    "sha1": "da39a3ee5e6b4b0d3255bfef95601890afd80709",
}


def test_the_published_vectors() -> None:
    assert hash_stream(io.BytesIO(b"abc"), ("md5", "sha1")) == (ABC, 3)
    assert hash_stream(io.BytesIO(b""), ("sha256", "md5", "sha1")) == (EMPTY, 0)


def test_sha256_always_and_first_whatever_is_asked() -> None:
    digests, _ = hash_stream(io.BytesIO(b"abc"), ("sha1", "sha1", "sha256"))
    assert list(digests) == ["sha256", "sha1"]
    assert list(hash_stream(io.BytesIO(b"abc"), ())[0]) == ["sha256"]


def test_an_unknown_algorithm_is_refused_before_anything_is_read() -> None:
    stream = io.BytesIO(b"abc")
    with pytest.raises(ValueError, match="unsupported hash algorithm"):
        hash_stream(stream, ("md5", "crc32", "sha512"))
    assert stream.tell() == 0


@pytest.fixture(scope="module")
def data() -> bytes:
    return os.urandom(2 * BLOCK + 12345)  # two whole blocks and a part


def expected(data: bytes) -> dict[str, str]:
    return {name: hashlib.new(name, data).hexdigest() for name in ("sha256", "md5", "sha1")}


def test_across_blocks_with_progress_after_each(data: bytes) -> None:
    seen: list[int] = []
    digests, size = hash_stream(io.BytesIO(data), ("md5", "sha1"), seen.append)
    assert (digests, size) == (expected(data), len(data))
    assert seen == [BLOCK, 2 * BLOCK, len(data)]


def test_every_kind_of_stream_the_pipeline_reads(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "original.bin"
    path.write_bytes(data)
    want = (expected(data), len(data))
    with open(path, "rb") as buffered, open(path, "rb", buffering=0) as raw:
        assert hash_stream(buffered, ("md5", "sha1")) == want
        assert hash_stream(raw, ("md5", "sha1")) == want

    def opener(start: int, end: int) -> io.BufferedReader:
        handle = open(path, "rb")  # RangeFile closes each range it opens
        handle.seek(start)
        return handle

    with RangeFile(len(data), opener, buffer_size=BLOCK // 3) as ranges:  # the vault's S3 ranges
        assert hash_stream(ranges, ("md5", "sha1")) == want
    # An SDK's body: read() only, no readinto.
    body = StreamingBody(io.BytesIO(data), len(data))
    assert hash_stream(body, ("md5", "sha1")) == want  # type: ignore[arg-type]  # an IOBase, not typed as BinaryIO


def test_memory_stays_at_one_block_however_large_the_stream(tmp_path: Path) -> None:
    big = tmp_path / "sparse.bin"
    with open(big, "wb") as out:
        out.truncate(16 * BLOCK)  # 64 MiB of zeros that take no disk
    tracemalloc.start()
    try:
        with open(big, "rb", buffering=0) as stream:
            digests, size = hash_stream(stream, ("md5", "sha1"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == 16 * BLOCK
    assert digests["sha256"] == hashlib.sha256(bytes(16 * BLOCK)).hexdigest()
    assert peak < 1.5 * BLOCK, f"peak {peak:,} bytes while hashing {size:,}"
