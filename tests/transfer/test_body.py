"""transfer.body: request bodies as the stores see them. Coalesced into blocks, cut at a
limit (too long: nothing counts), ended quietly when the client goes away, and checked
against Upload-Checksum before the last block is let through as good."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable

import pytest
from starlette.requests import ClientDisconnect

from transfer.body import BLOCK, VerifiedBody, received, verified
from transfer.errors import ChecksumMismatch, TooLarge
from transfer.headers import Checksum

pytestmark = pytest.mark.anyio

KiB = 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def stream(pieces: Iterable[bytes], then: BaseException | None = None) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece
    if then is not None:
        raise then


async def collect(blocks: AsyncIterator[bytes]) -> list[bytes]:
    return [block async for block in blocks]


def sha256(data: bytes) -> Checksum:
    return Checksum("sha256", hashlib.sha256(data).digest())


async def test_small_pieces_reach_the_store_in_blocks() -> None:
    pieces = [bytes([n % 256]) * (64 * KiB) for n in range(150)]  # 9.4 MiB in 64 KiB pieces
    blocks = await collect(received(stream(pieces), limit=10 * BLOCK))
    assert b"".join(blocks) == b"".join(pieces)
    assert [len(block) for block in blocks[:-1]] == [BLOCK] * (len(blocks) - 1)
    assert 0 < len(blocks[-1]) <= BLOCK


async def test_a_body_past_the_limit_is_refused_before_its_last_piece_is_passed_on() -> None:
    seen: list[bytes] = []
    with pytest.raises(TooLarge):
        async for block in received(stream([b"a" * 6, b"b" * 5]), limit=10):
            seen.append(block)
    assert seen == []  # nothing was handed on: the store counts none of it
    assert await collect(received(stream([b"a" * 6, b"b" * 4]), limit=10)) == [b"a" * 6 + b"b" * 4]


async def test_a_client_that_goes_away_ends_the_body_with_what_arrived() -> None:
    body = received(stream([b"first ", b"second"], then=ClientDisconnect()), limit=100)
    assert await collect(body) == [b"first second"]


async def test_an_empty_body_is_no_blocks() -> None:
    assert await collect(received(stream([]), limit=0)) == []


async def test_verified_passes_blocks_through_and_accepts_the_right_digest() -> None:
    assert await collect(verified(stream([b"abc", b"def"]), sha256(b"abcdef"))) == [b"abc", b"def"]


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "md5"])
async def test_verified_raises_after_the_last_block_when_the_digest_differs(algorithm: str) -> None:
    seen: list[bytes] = []
    wrong = Checksum(algorithm, hashlib.new(algorithm, b"abcdeX").digest())
    with pytest.raises(ChecksumMismatch, match=f"{algorithm} of the 6 bytes received"):
        async for block in verified(stream([b"abc", b"def"]), wrong):
            seen.append(block)
    # The store saw the blocks, and the error at the end tells it to count none of them.
    assert seen == [b"abc", b"def"]


async def test_a_spooled_body_is_checked_before_it_is_read_back() -> None:
    data = b"x" * (BLOCK + 5)
    spooled = VerifiedBody(None)
    try:
        await spooled.spool(stream([data[:100], data[100:]]), sha256(data))
        assert await collect(spooled.blocks()) == [data[:BLOCK], data[BLOCK:]]
    finally:
        spooled.close()
    refused = VerifiedBody(None)
    try:
        with pytest.raises(ChecksumMismatch):
            await refused.spool(stream([data]), sha256(b"other"))
    finally:
        refused.close()
