"""A read-only, seekable file over an object fetched by byte ranges (a ZIP held in S3)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MiB = 1024 * 1024
BUFFER = 8 * MiB
_PIECE = 1 * MiB  # most bytes taken from a range stream in one read()

Opener = Callable[[int, int], BinaryIO]


class RangeFile(io.RawIOBase):
    """``size`` bytes whose range ``[start, end)`` is ``opener(start, end)``, a stream to read and close.

    One read-ahead buffer of ``buffer_size`` bytes makes sequential reads cost one range request per
    buffer and keeps zipfile's small seeks (end record, central directory, entry headers) cheap. A read
    at least as large as the buffer goes straight into the caller's memory, so memory stays at one
    buffer whatever the object's size. ``readinto`` fills the request completely (short only at the
    end of the object): zipfile reads structures with a single ``read(n)`` and takes a short answer
    for corruption.
    """

    def __init__(self, size: int, opener: Opener, *, buffer_size: int = BUFFER, name: str = "") -> None:
        if size < 0:
            raise ValueError("size must be >= 0")
        if buffer_size < 1:
            raise ValueError("buffer_size must be >= 1")
        super().__init__()
        self._size = size
        self._opener = opener
        self._buffer_size = buffer_size
        self._buffer: bytes | bytearray = b""
        self._buffer_start = 0
        self._pos = 0
        self.name = name
        self.requests = 0  # range requests made so far (for tests and benchmarks)

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"invalid whence ({whence!r})")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def readinto(self, b: WriteableBuffer) -> int:
        self._checkClosed()
        with memoryview(b) as raw, raw.cast("B") as view:
            want = min(len(view), max(0, self._size - self._pos))
            done = 0
            while done < want:
                offset = self._pos - self._buffer_start
                if 0 <= offset < len(self._buffer):
                    n = min(len(self._buffer) - offset, want - done)
                    with memoryview(self._buffer) as held:
                        view[done : done + n] = held[offset : offset + n]
                elif want - done >= self._buffer_size:
                    n = want - done
                    self._fetch_into(self._pos, view[done : done + n])
                else:
                    self._fill(self._pos)
                    continue
                done += n
                self._pos += n
            return done

    def close(self) -> None:
        self._buffer = b""
        super().close()

    def _fill(self, start: int) -> None:
        self._buffer = b""  # drop the old buffer first: never two in memory
        data = bytearray(min(self._size, start + self._buffer_size) - start)
        self._fetch_into(start, memoryview(data))
        self._buffer = data
        self._buffer_start = start

    def _fetch_into(self, start: int, view: memoryview) -> None:
        end = start + len(view)
        self.requests += 1
        stream = self._opener(start, end)
        try:
            got = 0
            while got < len(view):
                piece = stream.read(min(len(view) - got, _PIECE))
                if not piece:
                    raise OSError(f"range {start}-{end} of {self.name or 'object'} ended after {got} bytes")
                view[got : got + len(piece)] = piece
                got += len(piece)
        finally:
            stream.close()
