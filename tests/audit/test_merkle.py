"""audit.merkle against the naive RFC 9162 reference, on every tree size from 1 to 300."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Mapping, Sequence

import pytest

from audit import VerificationError, verify_consistency, verify_inclusion
from audit.merkle import (
    EMPTY_ROOT,
    NodeId,
    TreeBuilder,
    append_needs,
    complete_node_count,
    consistency_nodes,
    consistency_proof_from,
    fold,
    inclusion_nodes,
    inclusion_proof_from,
    leaf_hash,
    node_hash,
    nodes_to_store_on_append,
    range_nodes,
    root_from,
    root_nodes,
)
from tests.audit.naive import NaiveTree

MAX_SIZE = 300
rng = random.Random(9162)
ENTRIES = [rng.randbytes(rng.randrange(0, 40)) for _ in range(MAX_SIZE)]
NAIVE = NaiveTree(ENTRIES)


class Recorder(Mapping[NodeId, bytes]):
    """A node store that remembers which nodes were read."""

    def __init__(self, nodes: dict[NodeId, bytes]) -> None:
        self.nodes = nodes
        self.read: list[NodeId] = []

    def __getitem__(self, key: NodeId) -> bytes:
        self.read.append(key)
        return self.nodes[key]

    def __iter__(self) -> Iterator[NodeId]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)


def build_store() -> tuple[dict[NodeId, bytes], list[bytes]]:
    """Append every entry through nodes_to_store_on_append; the store and the root after each size."""
    store: dict[NodeId, bytes] = {}
    roots = [EMPTY_ROOT]
    for size, entry in enumerate(ENTRIES):
        asked: list[NodeId] = []

        def get(level: int, index: int, asked: list[NodeId] = asked) -> bytes:
            asked.append((level, index))
            return store[(level, index)]

        created = nodes_to_store_on_append(size, leaf_hash(entry), get)
        assert asked == append_needs(size)
        assert created[0] == (0, size, leaf_hash(entry))
        for level, index, value in created:
            assert (level, index) not in store
            # A complete node is the RFC hash of exactly the leaves it covers.
            assert value == NAIVE.mth(index << level, (index + 1) << level)
            store[(level, index)] = value
        roots.append(root_from(size + 1, store))
    return store, roots


STORE, ROOTS = build_store()


def test_hashes() -> None:
    assert EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"l" * 32, b"r" * 32) == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()
    # The RFC 6962 reference root of the 8 CT test leaves (transparency-dev/merkle's verify_test.go).
    leaves = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f"]]
    builder = TreeBuilder()
    for leaf in leaves:
        builder.append(leaf_hash(leaf))
    assert builder.root().hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def test_roots_match_the_reference_at_every_size() -> None:
    builder = TreeBuilder()
    assert root_from(0, STORE) == EMPTY_ROOT == builder.root()
    for size in range(1, MAX_SIZE + 1):
        created = builder.append(leaf_hash(ENTRIES[size - 1]))
        assert all(STORE[(level, index)] == value for level, index, value in created)
        assert ROOTS[size] == NAIVE.root(size) == builder.root(), size
        assert len(root_nodes(size)) == size.bit_count()
        resumed = TreeBuilder.resume(size, STORE)
        assert resumed.root() == ROOTS[size]
        assert builder.border() == resumed.border() == [STORE[node] for node in root_nodes(size)]
        assert fold(builder.border()) == ROOTS[size]
        if size < MAX_SIZE:
            resumed.append(leaf_hash(ENTRIES[size]))
            assert resumed.root() == NAIVE.root(size + 1)


def inclusion_cases() -> Iterator[tuple[int, int]]:
    for size in range(1, MAX_SIZE + 1):
        indices: Sequence[int]
        if size <= 70 or size in (127, 128, 129, 255, 256, 257, 300):
            indices = range(size)
        else:
            indices = sorted({0, size - 1, *rng.sample(range(size), min(size, 6))})
        for index in indices:
            yield index, size


def test_inclusion_proofs_match_the_reference() -> None:
    checked = 0
    for index, size in inclusion_cases():
        wanted = inclusion_nodes(index, size)
        store = Recorder(STORE)
        proof = inclusion_proof_from(index, size, store)
        assert proof == NAIVE.inclusion(index, size), (index, size)
        assert sorted(store.read) == sorted(wanted) and len(set(wanted)) == len(wanted)
        verify_inclusion(index, size, leaf_hash(ENTRIES[index]), proof, ROOTS[size])
        checked += 1
    assert checked > 3000


def consistency_cases() -> Iterator[tuple[int, int]]:
    for size2 in range(1, MAX_SIZE + 1):
        firsts: Sequence[int]
        if size2 <= 40:
            firsts = range(1, size2 + 1)
        else:
            firsts = sorted({1, size2 - 1, size2, *rng.sample(range(1, size2 + 1), 5)})
        for size1 in firsts:
            yield size1, size2


def test_consistency_proofs_match_the_reference() -> None:
    for size1, size2 in consistency_cases():
        wanted = consistency_nodes(size1, size2)
        store = Recorder(STORE)
        proof = consistency_proof_from(size1, size2, store)
        assert proof == NAIVE.consistency(size1, size2), (size1, size2)
        assert sorted(store.read) == sorted(wanted) and len(set(wanted)) == len(wanted)
        verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2])


def test_fold_joins_the_tiles_of_a_subtree() -> None:
    for begin, end in ((0, 1), (0, 13), (8, 13), (64, 100), (0, 300)):
        tiles = [STORE[node] for node in range_nodes(begin, end)]
        assert fold(tiles) == NAIVE.mth(begin, end)
    with pytest.raises(ValueError, match="EMPTY_ROOT"):
        fold([])


def test_complete_node_count_is_what_appends_store() -> None:
    assert [complete_node_count(size) for size in (0, 1, 2, 3, 4, 5)] == [0, 1, 3, 4, 7, 8]
    for size in range(MAX_SIZE + 1):
        assert complete_node_count(size) == sum(1 for level, index in STORE if (index + 1) << level <= size)
    assert complete_node_count(10**6) == sum(10**6 >> level for level in range(20))
    with pytest.raises(ValueError):
        complete_node_count(-1)


def test_range_nodes_tile_the_range() -> None:
    for begin in range(70):
        for end in range(begin, 140):
            covered: list[int] = []
            for level, index in range_nodes(begin, end):
                covered.extend(range(index << level, (index + 1) << level))
            assert covered == list(range(begin, end))


@pytest.mark.parametrize("size", [2**20, 10**6, 10**6 + 1, 2**40 + 12345, 2**53 - 1])
def test_node_lists_stay_small_at_large_sizes(size: int) -> None:
    # One query fetches everything: O(log n) nodes per proof.
    bits = size.bit_length()
    for index in (0, 1, size // 3, size - 2, size - 1):
        assert len(inclusion_nodes(index, size)) <= 2 * bits
    for size1 in (1, 2, 3, size // 2, size // 2 + 1, size - 1):
        assert len(consistency_nodes(size1, size)) <= 3 * bits
    assert len(root_nodes(size)) == size.bit_count()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        inclusion_nodes(5, 5)
    with pytest.raises(ValueError):
        inclusion_nodes(-1, 5)
    with pytest.raises(ValueError):
        consistency_nodes(0, 5)
    with pytest.raises(ValueError):
        consistency_nodes(6, 5)
    with pytest.raises(ValueError):
        root_nodes(-1)
    with pytest.raises(ValueError):
        nodes_to_store_on_append(0, b"short", lambda level, index: b"")
    assert consistency_nodes(5, 5) == [] and consistency_proof_from(5, 5, {}) == []


def test_missing_or_damaged_nodes_fail_verification() -> None:
    nodes = {node: STORE[node] for node in inclusion_nodes(3, 100)}
    del nodes[next(iter(nodes))]
    with pytest.raises(VerificationError, match="missing"):
        inclusion_proof_from(3, 100, nodes)
    damaged = {node: STORE[node][:31] for node in root_nodes(100)}
    with pytest.raises(VerificationError, match="32-byte"):
        root_from(100, damaged)
    with pytest.raises(VerificationError, match="32-byte"):
        nodes_to_store_on_append(1, leaf_hash(b"x"), lambda level, index: b"")
    # What database drivers return is accepted.
    assert root_from(100, {node: memoryview(STORE[node]) for node in root_nodes(100)}) == ROOTS[100]
