"""Pure verification of RFC 9162 inclusion and consistency proofs (section 2.1.3.2 / 2.1.4.2).

Written without reference to how proofs are built (audit/merkle.py), following the bit
arithmetic of transparency-dev/merkle's verifier: an inclusion proof for leaf ``index`` in a tree
of ``size`` leaves has an *inner* part, the siblings below the level where the paths to ``index``
and to the last leaf ``size - 1`` meet, and a *border* part, the left siblings above it (one per
set bit of ``index`` above that level).

Every failure raises `VerificationError`. Hash lengths are checked (32 bytes) for everything
that gets hashed.

Edge cases, decided deliberately (and pinned by the transparency-dev vectors):

- Equal sizes: ``verify_consistency(n, n, [], root1, root2)`` holds exactly when ``root1 ==
  root2`` byte for byte and the proof is empty; nothing is hashed, so the roots are compared as
  given, whatever their length (a tree is consistent with itself; whether a root is well formed
  is checked where it is read, in `Checkpoint.parse`). A non-empty proof for equal sizes fails.
- Size 0: a consistency proof *from* the empty tree proves nothing, so ``size1 == 0`` always
  fails, even 0 to 0. A caller holding a checkpoint of size 0 checks its root against
  ``merkle.EMPTY_ROOT`` instead.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from audit.errors import VerificationError
from audit.merkle import HASH_SIZE, node_hash


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``leaf_index`` of the tree of ``tree_size`` with ``root``."""
    _check_matches(root_from_inclusion(leaf_index, tree_size, leaf_hash, proof), root, "inclusion proof")


def root_from_inclusion(leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for the tree of ``tree_size`` holding ``leaf_hash`` at ``leaf_index``."""
    _check_int(leaf_index, "leaf index")
    _check_int(tree_size, "tree size")
    if not 0 <= leaf_index < tree_size:
        raise VerificationError(f"leaf index {leaf_index} is not in a tree of {tree_size} leaves")
    _check_hash(leaf_hash, "leaf hash")
    _check_proof(proof)
    inner, border = _decompose(leaf_index, tree_size)
    if len(proof) != inner + border:
        raise VerificationError(
            f"inclusion proof has {len(proof)} hashes; leaf {leaf_index} of {tree_size} needs {inner + border}"
        )
    value = _chain_inner(leaf_hash, proof[:inner], leaf_index)
    return _chain_border(value, proof[inner:])


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the tree of ``size1`` with ``root1``."""
    _check_matches(root_from_consistency(size1, size2, proof, root1), root2, "consistency proof (second root)")


def root_from_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes) -> bytes:
    """Check ``proof`` against ``root1`` and return the root it implies for the tree of ``size2``."""
    _check_int(size1, "tree size")
    _check_int(size2, "tree size")
    if size2 < size1:
        raise VerificationError(f"tree size went backwards: {size1} then {size2}")
    if size1 == 0:
        raise VerificationError("a consistency proof from the empty tree proves nothing (size1 is 0)")
    if size1 == size2:
        if proof:
            raise VerificationError(f"sizes are equal ({size1}) but the consistency proof is not empty")
        if not isinstance(root1, bytes):
            raise VerificationError("first root must be bytes")
        return root1
    if not proof:
        raise VerificationError(f"consistency proof from {size1} to {size2} is empty")
    _check_proof(proof)

    # The proof is, apart from its first hash, the upper part of the inclusion proof of the
    # subtree that ends the old tree: the largest complete subtree ending at size1, at level
    # `shift`. That first hash is omitted when the subtree is the whole old tree (size1 a power
    # of two), since it is root1.
    inner, border = _decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    if size1 == 1 << shift:
        seed, rest = root1, proof
    else:
        seed, rest = proof[0], proof[1:]
    if len(rest) != inner + border:
        want = inner + border + (0 if size1 == 1 << shift else 1)
        raise VerificationError(f"consistency proof has {len(proof)} hashes; {size1} to {size2} needs {want}")

    mask = (size1 - 1) >> shift
    # The old root uses only the hashes left of the path; the new root uses all of them.
    old = _chain_inner_left_only(seed, rest[:inner], mask)
    old = _chain_border(old, rest[inner:])
    _check_matches(old, root1, "consistency proof (first root)")
    new = _chain_inner(seed, rest[:inner], mask)
    return _chain_border(new, rest[inner:])


def _decompose(index: int, size: int) -> tuple[int, int]:
    """(inner, border) lengths of the inclusion proof of leaf ``index`` in a tree of ``size``."""
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, sibling in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(sibling, seed)
        else:
            seed = node_hash(seed, sibling)
    return seed


def _chain_inner_left_only(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, sibling in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(sibling, seed)
    return seed


def _chain_border(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for sibling in proof:
        seed = node_hash(sibling, seed)
    return seed


def _check_matches(calculated: bytes, expected: bytes, what: str) -> None:
    if not isinstance(expected, bytes) or not hmac.compare_digest(calculated, expected):
        raise VerificationError(f"{what} does not lead to the expected root")


def _check_int(value: int, what: str) -> None:
    if type(value) is not int or value < 0:
        raise VerificationError(f"{what} must be a non-negative integer, not {value!r}")


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise VerificationError(f"{what} must be {HASH_SIZE} bytes")


def _check_proof(proof: Sequence[bytes]) -> None:
    for i, element in enumerate(proof):
        if not isinstance(element, bytes) or len(element) != HASH_SIZE:
            raise VerificationError(f"proof hash {i} is not {HASH_SIZE} bytes")
