"""The rules every backend shares: which keys are the server's own, the errors' kinds, and
the stream type that open() returns."""

from __future__ import annotations

import io

import pytest

from evidence.errors import Conflict, InvalidInput, Unavailable
from evidence.vault.base import (
    KeyRefused,
    ObjectExists,
    RangeReader,
    SealNotConfirmed,
    VaultNotReady,
    VaultUnavailable,
    check_derivative_key,
    check_key,
)


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "originals/../../x", "/abs", "a//b", "a/./b", "sp ace", "a\\b", "", ".uploads/x",
            "originals/.hidden/x", "a/", "é", "a\nb", "a\x00b"]
)
def test_keys_that_are_not_server_generated_are_refused(key: str) -> None:
    with pytest.raises(KeyRefused):
        check_key(key)


@pytest.mark.parametrize("key", ["originals/0123/clip.mov", "derivatives/item-1/proxy.mp4", "a", "a.b-c_d/E9"])
def test_server_generated_keys_pass_unchanged(key: str) -> None:
    assert check_key(key) == key


def test_derivative_keys_never_name_an_original() -> None:
    assert check_derivative_key("derivatives/item/proxy.mp4") == "derivatives/item/proxy.mp4"
    with pytest.raises(KeyRefused, match="originals"):
        check_derivative_key("originals/item/video.mp4")
    with pytest.raises(KeyRefused):
        check_derivative_key("derivatives/../originals/item/video.mp4")


def test_errors_carry_their_kind() -> None:
    # A user's mistake is 4xx, the storage's trouble is 503 (retry later), never a 500.
    assert issubclass(KeyRefused, InvalidInput) and issubclass(ObjectExists, Conflict)
    for unavailable in (VaultUnavailable, VaultNotReady, SealNotConfirmed):
        assert issubclass(unavailable, Unavailable)


class Source(io.BytesIO):
    """A readable that gives at most ``step`` bytes a call, as a network body does."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__(data)
        self.step = step

    def read(self, size: int | None = -1) -> bytes:
        return super().read(self.step if size is None or size < 0 else min(size, self.step))


def test_range_reader_stops_at_its_length() -> None:
    reader = RangeReader(Source(b"0123456789", step=3), 7)
    assert reader.read() == b"0123456"
    assert reader.read() == b""


def test_range_reader_without_length_reads_to_the_end() -> None:
    with RangeReader(Source(b"0123456789", step=4), None) as reader:
        assert b"".join(iter(lambda: reader.read(2), b"")) == b"0123456789"


def test_range_reader_of_length_zero_reads_nothing() -> None:
    assert RangeReader(Source(b"abc", step=3), 0).read() == b""


def test_range_reader_closes_what_it_wraps_once() -> None:
    source = Source(b"abc", step=3)
    reader = RangeReader(source, None)
    reader.close()
    reader.close()
    assert source.closed and reader.closed
