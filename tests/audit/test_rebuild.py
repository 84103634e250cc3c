"""audit.rebuild against the naive RFC 9162 reference: roots, borders and every stored node checked,
whole or split between two workers, with small blocks so that every path is taken."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import pytest

from audit.merkle import EMPTY_ROOT, NodeId, StoredHash, complete_node_count, leaf_hash, root_nodes
from audit.rebuild import Rebuild, WrongNode, block_levels, first_difference
from tests.audit.naive import NaiveTree

MAX_SIZE = 140
rng = random.Random(6962)
ENTRIES = [rng.randbytes(rng.randrange(0, 30)) for _ in range(MAX_SIZE)]
LEAVES = [leaf_hash(entry) for entry in ENTRIES]
NAIVE = NaiveTree(ENTRIES)
# Every complete subtree of the largest tree, as the reference computes it: what a correct store holds.
STORE: dict[NodeId, bytes] = {
    (level, index): NAIVE.mth(index << level, (index + 1) << level)
    for level in range(MAX_SIZE.bit_length())
    for index in range(MAX_SIZE >> level)
}


class Store:
    """A node store answering range reads as a database would, remembering what was read."""

    def __init__(self, nodes: Mapping[NodeId, StoredHash]) -> None:
        self.nodes = nodes
        self.reads: list[tuple[int, int, int]] = []

    def __call__(self, level: int, lo: int, hi: int) -> Sequence[tuple[int, StoredHash]]:
        self.reads.append((level, lo, hi))
        return [(index, self.nodes[(level, index)]) for index in range(lo, hi) if (level, index) in self.nodes]


def rebuilt(store: Store, size: int, sizes: Sequence[int] = (), first: int = 0, block_level: int = 2) -> Rebuild:
    tree = Rebuild(store, sizes, first=first, block_level=block_level)
    for leaf in LEAVES[first:size]:
        tree.add(leaf)
    tree.finish()
    return tree


def split(store: Store, size: int, first: int, block_level: int, sizes: Sequence[int] = ()) -> Rebuild:
    """Leaves [first, size) rebuilt before [0, first), then joined, as two processes do it."""
    later = rebuilt(store, size, sizes, first, block_level)
    earlier = rebuilt(store, first, [s for s in sizes if s <= first], 0, block_level)
    later.resolve(earlier.border())
    later.roots.update(earlier.roots)
    return later


@pytest.mark.parametrize("block_level", [0, 1, 2, 3, 5, 16])
def test_roots_and_borders_match_the_reference(block_level: int) -> None:
    for size in range(MAX_SIZE + 1):
        tree = rebuilt(Store(STORE), size, range(1, size + 1), block_level=block_level)
        assert tree.size == size
        assert tree.root() == NAIVE.root(size), (block_level, size)
        assert tree.border() == [STORE[node] for node in root_nodes(size)]
        assert tree.roots == {s: NAIVE.root(s) for s in range(1, size + 1)}
    assert rebuilt(Store(STORE), 0).root() == EMPTY_ROOT


@pytest.mark.parametrize("block_level", [0, 2, 3])
def test_every_stored_node_is_read_once(block_level: int) -> None:
    for size in (0, 1, 7, 8, 9, 64, 100, MAX_SIZE):
        store = Store(STORE)
        rebuilt(store, size, block_level=block_level)
        read = [(level, index) for level, lo, hi in store.reads for index in range(lo, hi)]
        assert len(read) == len(set(read)) == complete_node_count(size)
        assert all(index < size >> level for level, index in read)
        # One range read per level per block, and one per node completed above the blocks.
        blocks = -(-size >> block_level) if size else 0
        assert len(store.reads) <= blocks * (block_level + 1) + (size >> block_level)


@pytest.mark.parametrize("block_level", [0, 2, 3])
def test_a_split_rebuild_matches_the_whole(block_level: int) -> None:
    block = 1 << block_level
    for size in range(0, 70 if block_level else 24):
        for first in range(block, size + 1, block):
            store = Store(STORE)
            tree = split(store, size, first, block_level, range(1, size + 1))
            assert tree.root() == NAIVE.root(size), (size, first)
            assert tree.roots == {s: NAIVE.root(s) for s in range(1, size + 1)}, (size, first)
            read = [(level, index) for level, lo, hi in store.reads for index in range(lo, hi)]
            assert sorted(read) == sorted(set(read)) and len(read) == complete_node_count(size)


def damaged(node: NodeId, how: str) -> dict[NodeId, StoredHash]:
    nodes: dict[NodeId, StoredHash] = dict(STORE)
    if how == "missing":
        del nodes[node]
    elif how == "wrong":
        nodes[node] = bytes(32)
    else:  # one bit, in the form a driver may hand back
        flipped = bytearray(STORE[node])
        flipped[7] ^= 1
        nodes[node] = memoryview(bytes(flipped))
    return nodes


@pytest.mark.parametrize("block_level", [1, 3])
@pytest.mark.parametrize("how", ["missing", "wrong", "bit"])
def test_every_wrong_node_is_named(block_level: int, how: str) -> None:
    size = 77
    for level in range(size.bit_length()):
        for index in range(size >> level):
            store = Store(damaged((level, index), how))
            with pytest.raises(WrongNode) as caught:
                rebuilt(store, size, block_level=block_level)
            assert (caught.value.level, caught.value.index) == (level, index)
            assert (caught.value.first, caught.value.last) == (index << level, ((index + 1) << level) - 1)


def test_every_wrong_node_is_named_when_the_rebuild_is_split() -> None:
    """Whichever worker meets it: the one after the split, the one before, or the join (resolve)."""
    size, first, block_level = 77, 32, 2
    raised_in = set()
    for level in range(size.bit_length()):
        for index in range(size >> level):
            later = Rebuild(Store(damaged((level, index), "wrong")), first=first, block_level=block_level)
            earlier = Rebuild(Store(damaged((level, index), "wrong")), block_level=block_level)
            stage = "later"
            with pytest.raises(WrongNode) as caught:
                for leaf in LEAVES[first:size]:
                    later.add(leaf)
                later.finish()
                stage = "earlier"
                for leaf in LEAVES[:first]:
                    earlier.add(leaf)
                earlier.finish()
                stage = "join"
                later.resolve(earlier.border())
            raised_in.add(stage)
            assert (caught.value.level, caught.value.index) == (level, index)
    assert raised_in == {"later", "earlier", "join"}


def test_of_several_wrong_nodes_the_earliest_is_named() -> None:
    nodes = dict(STORE)
    nodes[(0, 5)] = nodes[(2, 0)] = bytes(32)  # leaves 5, and leaves 0..3
    with pytest.raises(WrongNode, match=r"entries 0\.\.3 is wrong"):
        rebuilt(Store(nodes), 16, block_level=3)
    nodes = dict(STORE)
    nodes[(1, 2)] = nodes[(0, 4)] = bytes(32)  # both start at leaf 4: the lower one
    with pytest.raises(WrongNode, match=r"entries 4\.\.4 is wrong"):
        rebuilt(Store(nodes), 16, block_level=3)


def test_block_levels_and_first_difference() -> None:
    levels = block_levels(LEAVES[:8])
    assert [len(level) for level in levels] == [8, 4, 2, 1] and levels[3][0] == NAIVE.root(8)
    assert [len(level) for level in block_levels(LEAVES[:5])] == [5, 2, 1]
    made = [STORE[(1, i)] for i in range(4, 8)]
    assert first_difference([(i, STORE[(1, i)]) for i in range(4, 8)], 4, made) is None
    assert first_difference([(i, STORE[(1, i)]) for i in (4, 5, 7)], 4, made) == 6
    assert first_difference([(4, STORE[(1, 4)]), (5, bytes(32)), (6, STORE[(1, 6)]), (7, b"")], 4, made) == 5


def test_misuse_is_refused() -> None:
    store = Store(STORE)
    with pytest.raises(ValueError, match="multiple of the block size"):
        Rebuild(store, first=6, block_level=2)
    with pytest.raises(ValueError, match="block level"):
        Rebuild(store, block_level=-1)
    later = rebuilt(store, 20, first=8, block_level=2)
    with pytest.raises(ValueError, match="not known yet"):
        later.border()
    with pytest.raises(ValueError, match="border of 1 hashes, not 2"):
        later.resolve([bytes(32), bytes(32)])
    later.resolve([STORE[(3, 0)]])
    with pytest.raises(ValueError, match="already known"):
        later.resolve([STORE[(3, 0)]])
    assert later.root() == NAIVE.root(20)
    later.add(LEAVES[20])
    with pytest.raises(ValueError, match="after finish"):
        later.root()


def test_reset_starts_again() -> None:
    tree = Rebuild(Store(STORE), [3, 9], block_level=2)
    for entry in ENTRIES[:3]:  # a reader that failed part way through a block, with other leaves
        tree.add(leaf_hash(entry + b"x"))
    tree.reset()
    assert tree.size == 0 and tree.roots == {}
    for leaf in LEAVES[:9]:
        tree.add(leaf)
    tree.finish()
    assert tree.roots == {3: NAIVE.root(3), 9: NAIVE.root(9)} and tree.root() == NAIVE.root(9)
