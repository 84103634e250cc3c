"""Rebuilding a whole log's tree from its leaves, to check the stored one against it.

The leaves come in order, one at a time (`Rebuild.add`), and are grouped into aligned blocks of
2**block_level leaves. When a block is complete, its complete subtrees are hashed level by level
(one list comprehension per level: far quicker than growing a tree leaf by leaf) and compared with
the stored nodes, one level at a time, through a `StoredRange` the caller supplies: for a
database, one index range scan per level. Above the blocks only the tree's right border is kept,
so memory stays flat: one block of leaves and about log2(n) hashes.

The roots at the ``sizes`` asked for (the sizes of signed checkpoints) are collected on the way,
in `Rebuild.roots`.

A long log can be split between workers: a rebuild that starts at leaf ``first`` (a multiple of
the block size) hashes and checks its blocks before the border of the tree of ``first`` leaves is
known, since another worker is rebuilding those. What needs that border (the nodes above the
blocks, the roots at the sizes asked for) waits for `Rebuild.resolve`.

A stored node that differs or is missing raises `WrongNode`. Within one comparison (a block with
the nodes above it that the block completes) the wrong node over the earliest leaves is named,
the lowest of them if several start at the same leaf. Nodes stored where the tree has none are
the caller's to look for: `merkle.complete_node_count` says how many there should be.
Pure: no storage of its own, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from audit.errors import VerificationError
from audit.merkle import EMPTY_ROOT, StoredHash, fold, node_hash, range_nodes

BLOCK_LEVEL = 16  # 65,536 leaves hashed and compared together

# The stored nodes at ``level`` with index in [lo, hi), as (index, hash) pairs ordered by index.
StoredRange = Callable[[int, int, int], Sequence[tuple[int, StoredHash]]]


class WrongNode(VerificationError):
    """A stored node differs from the one the leaves give, or is missing."""

    def __init__(self, level: int, index: int) -> None:
        self.level, self.index = level, index
        self.first = index << level  # the leaves it covers: first..last
        self.last = self.first + (1 << level) - 1
        super().__init__(f"the stored tree node over entries {self.first}..{self.last} is wrong or missing")


class Rebuild:
    """The tree over leaves [first, ...), rebuilt block by block and checked against ``stored``."""

    def __init__(
        self, stored: StoredRange, sizes: Iterable[int] = (), *, first: int = 0, block_level: int = BLOCK_LEVEL,
    ) -> None:
        if type(block_level) is not int or not 0 <= block_level <= 40:
            raise ValueError(f"block level must be an int from 0 to 40, not {block_level!r}")
        if type(first) is not int or first < 0 or first % (1 << block_level):
            raise ValueError(f"a rebuild starts at a multiple of the block size {1 << block_level}, not {first!r}")
        self.block_level = block_level
        self.block = 1 << block_level
        self.first = first
        self._stored = stored
        self._sizes = sorted({size for size in sizes if size > first})  # the others are not in these leaves
        self.reset()

    def reset(self) -> None:
        """Back to no leaves, to read [first, ...) again."""
        self.roots: dict[int, bytes] = {}  # the root at each size asked for, once known
        self._start = self.first  # first leaf of the current block
        self._leaves: list[bytes] = []
        # The hashes of root_nodes(start), left to right; None while the leaves before `first` are
        # being rebuilt elsewhere.
        self._border: list[bytes] | None = [] if self.first == 0 else None
        # What waits for that border, in the order it arose: ("root", size, hashes inside the
        # blocks) and ("block", block start, block root).
        self._pending: list[tuple[str, int, list[bytes]]] = []
        self._tail: list[list[bytes]] = [[]]  # the levels of the last, partial block, once finished
        self._tail_end = self.first

    @property
    def size(self) -> int:
        """The number of leaves before the next one (counting those before ``first``)."""
        return self._start + len(self._leaves)

    def add(self, leaf: bytes) -> None:
        """The next leaf hash (32 bytes; not checked here, as it is the hot path)."""
        leaves = self._leaves
        leaves.append(leaf)
        if len(leaves) == self.block:
            self._block(final=False)

    def finish(self) -> None:
        """After the last leaf (or before reporting a bad one): check the partial block's nodes."""
        self._block(final=True)
        self._tail_end = self.size

    def resolve(self, border: Sequence[bytes]) -> None:
        """The border of the tree of ``first`` leaves (its `border`), from whoever rebuilt it: the roots
        and the nodes above the blocks that were waiting for it."""
        if self._border is not None:
            raise ValueError("the border before this rebuild's first leaf is already known")
        if len(border) != self.first.bit_count():
            raise ValueError(f"a tree of {self.first} leaves has a border of {self.first.bit_count()} hashes, "
                             f"not {len(border)}")
        self._border = known = list(border)
        pending, self._pending = self._pending, []
        for kind, position, hashes in pending:
            if kind == "root":
                self.roots[position] = fold(known + hashes)
            else:
                above = self._join(position, hashes[0])
                if above:
                    self._compare(position, [[] for _ in range(self.block_level + 1)] + above)

    def border(self) -> list[bytes]:
        """The hashes of `merkle.root_nodes` (size), left to right: what `resolve` takes (after `finish`)."""
        if self._border is None:
            raise ValueError("the border before this rebuild's first leaf is not known yet")
        if self._leaves and self._tail_end != self.size:
            raise ValueError("leaves were added after finish()")
        start, tail = self._start, self._tail
        inside = [tail[level][index - (start >> level)] for level, index in range_nodes(start, self.size)]
        return self._border + inside

    def root(self) -> bytes:
        """The root of the tree of all the leaves so far (after `finish`)."""
        border = self.border()
        return fold(border) if border else EMPTY_ROOT

    def _block(self, final: bool) -> None:
        start, leaves = self._start, self._leaves
        levels = block_levels(leaves)
        end = start + len(leaves)
        for size in self._sizes:
            if start < size <= end:
                inside = [levels[level][index - (start >> level)] for level, index in range_nodes(start, size)]
                if self._border is None:
                    self._pending.append(("root", size, inside))
                else:
                    self.roots[size] = fold(self._border + inside)
        full = len(leaves) == self.block and not final
        if full:
            block_root = levels[self.block_level][0]
            if self._border is None:
                self._pending.append(("block", start, [block_root]))
            else:
                levels += self._join(start, block_root)
        self._compare(start, levels)
        if full:
            self._start, self._leaves = end, []
        else:
            self._tail = levels

    def _join(self, start: int, block_root: bytes) -> list[list[bytes]]:
        """The block's root joins the border; the nodes above the blocks that this completes, one per level."""
        border = self._border
        if border is None:  # pragma: no cover - both callers know it
            raise ValueError("the border before this rebuild's first leaf is not known yet")
        made: list[list[bytes]] = []
        value, index = block_root, start >> self.block_level
        while index & 1:
            value = node_hash(border.pop(), value)
            index >>= 1
            made.append([value])
        border.append(value)
        return made

    def _compare(self, start: int, levels: list[list[bytes]]) -> None:
        """Every node in ``levels`` (level L starting at index start >> L) against the stored ones."""
        first_bad: tuple[int, int] | None = None  # (first leaf, level)
        for level, made in enumerate(levels):
            if not made:
                continue
            lo = start >> level
            index = first_difference(self._stored(level, lo, lo + len(made)), lo, made)
            if index is not None and (first_bad is None or (index << level, level) < first_bad):
                first_bad = (index << level, level)
        if first_bad is not None:
            first, level = first_bad
            raise WrongNode(level, first >> level)


def block_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """The complete subtrees over ``leaves`` (an aligned block, or the start of one), level by level:
    level 0 is ``leaves`` itself, and each level above has the parents of the pairs below it."""
    levels = [leaves]
    current = leaves
    while len(current) >= 2:
        current = [node_hash(current[i], current[i + 1]) for i in range(0, len(current) - 1, 2)]
        levels.append(current)
    return levels


def first_difference(stored: Sequence[tuple[int, StoredHash]], lo: int, made: Sequence[bytes]) -> int | None:
    """The first index from ``lo`` whose stored hash (``stored``: (index, hash) pairs in index order,
    none outside [lo, lo + len(made))) differs from ``made`` or is missing; None if all agree."""
    if len(stored) == len(made) and all(bytes(h) == m for (_, h), m in zip(stored, made, strict=True)):
        return None
    found = {index: bytes(h) for index, h in stored}
    for offset, digest in enumerate(made):
        if found.get(lo + offset) != digest:
            return lo + offset
    return None  # all agree; rows outside the range are not this function's to judge
