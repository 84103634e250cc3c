"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing and proofs over stored subtrees.

Hashing (RFC 9162 section 2.1.1): a leaf is SHA-256(0x00 || entry), an interior node
SHA-256(0x01 || left || right), and the empty tree's root is SHA-256 of nothing.

Storage is the caller's business. The caller keeps the hash of every *complete* subtree, keyed
``(level, index)``: node (level, index) covers leaves [index * 2**level, (index + 1) * 2**level),
and level 0 holds the leaf hashes. Complete subtrees never change once the log has grown past
them, so the store is append-only: `nodes_to_store_on_append` says what one append adds.

Every RFC 9162 subtree that is not complete lies on the tree's right border and is made of
complete ones, so any root or proof element is a fold of at most log2(n) stored nodes. Each
proof is therefore split the way transparency-dev/merkle splits it: a function that says which
stored nodes it needs (``*_nodes``; the caller fetches them all in one query) and a function that
builds the proof from those nodes (``*_from``). Neither touches storage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

from audit.errors import VerificationError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeId = tuple[int, int]
# A stored hash as database drivers hand it back (psycopg and sqlite3 give bytes, others a memoryview).
StoredHash = bytes | bytearray | memoryview
Nodes = Mapping[NodeId, StoredHash]

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one log entry."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return _sha256(b"\x01" + left + right).digest()


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a subtree from the hashes of the complete subtrees that tile it (`range_nodes`),
    left to right: folded from the right, as RFC 9162 joins a subtree's unequal halves."""
    if not hashes:
        raise ValueError("nothing to fold: an empty tree's root is EMPTY_ROOT")
    value = hashes[-1]
    for left in reversed(hashes[:-1]):
        value = node_hash(left, value)
    return value


# -- appending --------------------------------------------------------------------------


def append_needs(size_before: int) -> list[NodeId]:
    """The stored nodes that appending a leaf to a tree of ``size_before`` leaves will read."""
    _check_size(size_before)
    needs = []
    level, index = 0, size_before
    while index & 1:
        needs.append((level, index - 1))
        level, index = level + 1, index >> 1
    return needs


def nodes_to_store_on_append(
    size_before: int, leaf: bytes, get: Callable[[int, int], StoredHash]
) -> list[tuple[int, int, bytes]]:
    """The complete nodes that appending the leaf hash ``leaf`` creates, the leaf itself first.

    ``get(level, index)`` returns an already stored node; it is called for `append_needs`
    (size_before) only: the left siblings that the new leaf completes.
    """
    _check_size(size_before)
    _check_hash(leaf, "leaf hash")
    created = [(0, size_before, leaf)]
    value, level, index = leaf, 0, size_before
    while index & 1:
        left = _checked(get(level, index - 1), level, index - 1)
        value = node_hash(left, value)
        level, index = level + 1, index >> 1
        created.append((level, index, value))
    return created


class TreeBuilder:
    """A tree grown one leaf at a time, keeping only the right border (log2(n) hashes).

    For recomputing a whole log in one pass (`append` returns the nodes it completes, so they can
    be compared with the stored ones), or for appending without a read per append.
    """

    def __init__(self) -> None:
        self.size = 0
        self._border: list[bytes] = []  # hashes of root_nodes(size), left to right

    @classmethod
    def resume(cls, size: int, nodes: Nodes) -> TreeBuilder:
        """A builder for an existing tree, from `root_nodes` (size)."""
        builder = cls()
        builder.size = size
        builder._border = [_get(nodes, level, index) for level, index in root_nodes(size)]
        return builder

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add the leaf hash ``leaf``; the complete nodes it creates, as in `nodes_to_store_on_append`."""
        _check_hash(leaf, "leaf hash")
        border = self._border
        index = self.size
        created = [(0, index, leaf)]
        value, level = leaf, 0
        while index & 1:
            value = node_hash(border.pop(), value)
            level, index = level + 1, index >> 1
            created.append((level, index, value))
        border.append(value)
        self.size += 1
        return created

    def root(self) -> bytes:
        return fold(self._border) if self._border else EMPTY_ROOT

    def border(self) -> list[bytes]:
        """The hashes of `root_nodes` (size), left to right: what `resume` takes back."""
        return list(self._border)


# -- which stored nodes a root or a proof needs ------------------------------------------------


def range_nodes(begin: int, end: int) -> list[NodeId]:
    """The complete subtrees that tile leaves [begin, end), left to right, each as large as fits.

    For a subtree of the RFC 9162 tree (``begin`` a multiple of a power of two >= end - begin),
    folding their hashes from the right gives that subtree's hash.
    """
    if not 0 <= begin <= end:
        raise ValueError(f"bad leaf range [{begin}, {end})")
    found = []
    while begin < end:
        # Largest aligned block starting at begin that fits before end.
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        found.append((level, begin >> level))
        begin += 1 << level
    return found


def complete_node_count(size: int) -> int:
    """How many complete subtrees (stored nodes) a tree of ``size`` leaves has.

    The sum over levels of size >> level, which is 2 * size minus the number of set bits.
    """
    _check_size(size)
    return 2 * size - size.bit_count()


def root_nodes(size: int) -> list[NodeId]:
    """The stored nodes whose fold is the root of a tree of ``size`` leaves (one per set bit)."""
    _check_size(size)
    return range_nodes(0, size)


def inclusion_nodes(index: int, size: int) -> list[NodeId]:
    """The stored nodes an inclusion proof for leaf ``index`` in a tree of ``size`` needs."""
    return _flatten(_inclusion_ranges(index, size))


def consistency_nodes(size1: int, size2: int) -> list[NodeId]:
    """The stored nodes a consistency proof from tree size ``size1`` to ``size2`` needs."""
    return _flatten(_consistency_ranges(size1, size2))


# -- roots and proofs from those nodes --------------------------------------------------------


def root_from(size: int, nodes: Nodes) -> bytes:
    """The root of a tree of ``size`` leaves (RFC 9162 MTH), from `root_nodes` (size)."""
    if size == 0:
        return EMPTY_ROOT
    return fold([_get(nodes, level, index) for level, index in root_nodes(size)])


def inclusion_proof_from(index: int, size: int, nodes: Nodes) -> list[bytes]:
    """RFC 9162 section 2.1.3.1 PATH(index, D[size]), from `inclusion_nodes` (index, size)."""
    return [_range_hash(begin, end, nodes) for begin, end in _inclusion_ranges(index, size)]


def consistency_proof_from(size1: int, size2: int, nodes: Nodes) -> list[bytes]:
    """RFC 9162 section 2.1.4.1 PROOF(size1, D[size2]), from `consistency_nodes` (size1, size2)."""
    return [_range_hash(begin, end, nodes) for begin, end in _consistency_ranges(size1, size2)]


# -- the proof shapes, as leaf ranges -----------------------------------------------------------
#
# Node (level, j) of the RFC 9162 tree of n leaves covers [j * 2**level, min((j + 1) * 2**level, n));
# it exists when it starts before n, and it is the root once 2**level >= n. A node whose right
# child would start at or past n is the same subtree as its left child, which is why a sibling
# that starts past n is simply skipped.


def _path_ranges(level: int, index: int, size: int) -> list[tuple[int, int]]:
    """The siblings on the way from node (level, index) up to the root of a tree of ``size``."""
    ranges = []
    top = (size - 1).bit_length()  # levels below the root
    while level < top:
        begin = (index ^ 1) << level
        if begin < size:
            ranges.append((begin, min(begin + (1 << level), size)))
        level, index = level + 1, index >> 1
    return ranges


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    _check_size(size)
    if type(index) is not int or not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of {size} leaves")
    return _path_ranges(0, index, size)


def _consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    _check_size(size1)
    _check_size(size2)
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2} (needs 0 < size1 <= size2)")
    if size1 == size2:
        return []
    # The largest complete subtree that ends at size1 is where the old tree's right border
    # starts; its path up the new tree proves both roots. When it is the whole old tree
    # (size1 a power of two) the verifier already has its hash: root1.
    level = (size1 & -size1).bit_length() - 1
    index = (size1 - 1) >> level
    first = [] if index == 0 else [(size1 - (1 << level), size1)]
    return first + _path_ranges(level, index, size2)


def _flatten(ranges: list[tuple[int, int]]) -> list[NodeId]:
    return [node for begin, end in ranges for node in range_nodes(begin, end)]


def _range_hash(begin: int, end: int, nodes: Nodes) -> bytes:
    return fold([_get(nodes, level, index) for level, index in range_nodes(begin, end)])


def _get(nodes: Nodes, level: int, index: int) -> bytes:
    try:
        value = nodes[(level, index)]
    except KeyError:
        raise VerificationError(f"Merkle node ({level}, {index}) is missing from storage") from None
    return _checked(value, level, index)


def _checked(value: StoredHash, level: int, index: int) -> bytes:
    if isinstance(value, bytearray | memoryview):  # what some database drivers hand back
        value = bytes(value)
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise VerificationError(f"stored Merkle node ({level}, {index}) is not a {HASH_SIZE}-byte hash")
    return value


def _check_size(size: int) -> None:
    if type(size) is not int or size < 0:
        raise ValueError(f"tree size must be a non-negative int, not {size!r}")


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes")
