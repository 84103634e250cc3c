"""Hashes of a stream in one pass: SHA-256 always, MD5 and SHA-1 when asked for."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable
from typing import BinaryIO

BLOCK = 4 * 1024 * 1024
ALGORITHMS = ("sha256", "md5", "sha1")


def hash_stream(
    stream: BinaryIO,
    algorithms: Iterable[str] = ("sha256",),
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, str], int]:
    """Read ``stream`` to its end once; return ``({algorithm: hex digest}, bytes read)``."""
    names = list(dict.fromkeys(["sha256", *algorithms]))
    unknown = set(names) - set(ALGORITHMS)
    if unknown:
        raise ValueError(f"unsupported hash algorithm(s): {', '.join(sorted(unknown))}")
    # usedforsecurity=False lets MD5 and SHA-1 run on FIPS-restricted hosts: here they
    # are legacy identifiers for forensic tools, SHA-256 is the one relied on.
    digests = {name: hashlib.new(name, usedforsecurity=name == "sha256") for name in names}
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    fill = _filler(stream)
    total = 0
    while n := fill(buffer):
        chunk = view[:n]
        for digest in digests.values():
            digest.update(chunk)
        total += n
        if progress is not None:
            progress(total)
    return {name: digest.hexdigest() for name, digest in digests.items()}, total


def _filler(stream: BinaryIO) -> Callable[[bytearray], int | None]:
    """``readinto`` where the stream has it (every io stream, the vault's included): each block
    lands in the one buffer, never copied; otherwise ``read``, copied in."""
    if isinstance(stream, io.RawIOBase | io.BufferedIOBase):
        return stream.readinto

    def fill(buffer: bytearray) -> int:
        data = stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    return fill
