"""audit.verify: the transparency-dev vectors, a real CT log, and systematically corrupted proofs."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import pytest

from audit import (
    VerificationError,
    root_from_consistency,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)
from audit.merkle import EMPTY_ROOT, leaf_hash
from tests.audit.naive import NaiveTree

VECTORS = Path(__file__).parent / "vectors"


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def vector_files(kind: str) -> list[Path]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert files
    return files


def rel(path: Path) -> str:
    return str(path.relative_to(VECTORS))


def outcome(call: Any, *args: Any) -> bool:
    """True when the call verifies, False when it raises VerificationError."""
    try:
        call(*args)
    except VerificationError:
        return False
    return True


# -- transparency-dev/merkle vectors ---------------------------------------------------------


@pytest.mark.parametrize("path", vector_files("inclusion"), ids=rel)
def test_inclusion_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [b64(p) for p in v["proof"] or []]
    ok = outcome(verify_inclusion, v["leafIdx"], v["treeSize"], b64(v["leafHash"]), proof, b64(v["root"]))
    assert ok is not v["wantErr"], v["desc"]


@pytest.mark.parametrize("path", vector_files("consistency"), ids=rel)
def test_consistency_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [b64(p) for p in v["proof"] or []]
    ok = outcome(verify_consistency, v["size1"], v["size2"], proof, b64(v["root1"]), b64(v["root2"]))
    assert ok is not v["wantErr"], v["desc"]


def test_vector_counts() -> None:
    # Every folder was copied: 5 numbered + additional (+ single-entry for inclusion).
    assert {p.parent.name for p in vector_files("inclusion")} >= {"0", "1", "2", "3", "4", "single-entry"}
    assert {p.parent.name for p in vector_files("consistency")} == {"0", "1", "2", "3", "4", "additional"}


def test_equal_sizes_decision() -> None:
    root = leaf_hash(b"x")
    verify_consistency(1, 1, [], root, root)
    verify_consistency(7, 7, [], root, root)
    with pytest.raises(VerificationError, match="not empty"):
        verify_consistency(7, 7, [root], root, root)
    with pytest.raises(VerificationError):
        verify_consistency(7, 7, [], root, leaf_hash(b"y"))
    # From the empty tree, nothing is proved, not even 0 -> 0.
    with pytest.raises(VerificationError, match="empty tree"):
        verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(VerificationError, match="empty tree"):
        verify_consistency(0, 3, [], EMPTY_ROOT, root)


# -- a real log: Google's argon2020 CT log, at 961,984,013 entries -----------------------------


def test_ct_log_inclusion() -> None:
    sth = json.loads((VECTORS / "ct-log-argon2020" / "sth.json").read_text())
    proof = json.loads((VECTORS / "ct-log-argon2020" / "proof.json").read_text())
    entries = json.loads((VECTORS / "ct-log-argon2020" / "entries.json").read_text())
    leaf = leaf_hash(b64(entries["entries"][0]["leaf_input"]))
    path = [b64(p) for p in proof["audit_path"]]
    root = b64(sth["sha256_root_hash"])
    assert proof["leaf_index"] == 10000
    verify_inclusion(10000, sth["tree_size"], leaf, path, root)
    with pytest.raises(VerificationError):
        verify_inclusion(10001, sth["tree_size"], leaf, path, root)
    with pytest.raises(VerificationError):
        other_leaf = leaf_hash(b64(entries["entries"][0]["leaf_input"]) + b"x")
        verify_inclusion(10000, sth["tree_size"], other_leaf, path, root)


def test_ct_log_consistency() -> None:
    sth = json.loads((VECTORS / "ct-log-argon2020" / "sth.json").read_text())
    proof = [b64(p) for p in json.loads((VECTORS / "ct-log-argon2020" / "consistency.json").read_text())["consistency"]]
    root1 = b64("AuIZ5V6sDUj1vn3Y1K85oOaQ7y+FJJKtyRTl1edIKBQ=")
    root2 = b64(sth["sha256_root_hash"])
    verify_consistency(3654490, sth["tree_size"], proof, root1, root2)
    assert root_from_consistency(3654490, sth["tree_size"], proof, root1) == root2
    with pytest.raises(VerificationError):
        verify_consistency(3654491, sth["tree_size"], proof, root1, root2)
    with pytest.raises(VerificationError):
        verify_consistency(3654490, sth["tree_size"], proof, root2, root2)


# -- systematic corruption of generated proofs -------------------------------------------------
#
# A proof does not authenticate the tree size by itself: two sizes whose proofs have the same
# shape (the same hashing steps) verify the same hashes. The size is bound by the signed
# checkpoint that carries the root. So a changed size must fail exactly when it changes the
# shape, and a changed size with the same shape must verify (the computation is identical).


def inclusion_shape(index: int, size: int) -> tuple[int, int, int] | None:
    if not 0 <= index < size:
        return None
    inner = (index ^ (size - 1)).bit_length()
    return inner, index & ((1 << inner) - 1), (index >> inner).bit_count()


def consistency_shape(size1: int, size2: int) -> tuple[bool, int, int, int] | None:
    if not 0 < size1 < size2:
        return None
    inner = ((size1 - 1) ^ (size2 - 1)).bit_length()
    border = ((size1 - 1) >> inner).bit_count()
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    mask = (size1 - 1) >> shift
    return size1 == 1 << shift, inner, mask & ((1 << inner) - 1), border


SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 31, 32, 33, 63, 100, 127]
rng = random.Random(6962)
TREE = NaiveTree([rng.randbytes(8) for _ in range(max(SIZES) + 2)])
JUNK = rng.randbytes(32)


def flipped_bits(proof: list[bytes]) -> list[list[bytes]]:
    variants = []
    for i, element in enumerate(proof):
        for bit in range(len(element) * 8):
            changed = bytearray(element)
            changed[bit // 8] ^= 1 << (bit % 8)
            variants.append(proof[:i] + [bytes(changed)] + proof[i + 1 :])
    return variants


def extended(proof: list[bytes], extra: list[bytes]) -> list[list[bytes]]:
    variants = [proof[:-1], proof[1:]] if proof else []
    for junk in extra:
        variants += [proof + [junk], [junk] + proof, proof[:1] + [junk] + proof[1:]]
    return variants


@pytest.mark.parametrize("size", SIZES)
def test_corrupted_inclusion_proofs_fail(size: int) -> None:
    root = TREE.root(size)
    for index in sorted({0, 1 % size, size // 2, size - 2 if size > 1 else 0, size - 1}):
        leaf = TREE.mth(index, index + 1)
        proof = TREE.inclusion(index, size)
        verify_inclusion(index, size, leaf, proof, root)
        assert root_from_inclusion(index, size, leaf, proof) == root
        for bad in flipped_bits(proof) + extended(proof, [JUNK, root, leaf, b"", b"\x00" * 33]):
            assert not outcome(verify_inclusion, index, size, leaf, bad, root)
        for bad_index, bad_size in [(index + 1, size), (index - 1, size), (index ^ 2, size),
                                    (index, size + 1), (index, size - 1), (index, size * 2), (index, size // 2)]:
            same = inclusion_shape(bad_index, bad_size) == inclusion_shape(index, size)
            assert outcome(verify_inclusion, bad_index, bad_size, leaf, proof, root) is same, (bad_index, bad_size)
        for bad_leaf, bad_root in [(JUNK, root), (leaf, JUNK), (leaf, EMPTY_ROOT), (leaf[:31], root), (leaf, root[:31]),
                                   (leaf + b"\x00", root)]:
            assert not outcome(verify_inclusion, index, size, bad_leaf, proof, bad_root)


@pytest.mark.parametrize("size2", [s for s in SIZES if s > 1])
def test_corrupted_consistency_proofs_fail(size2: int) -> None:
    root2 = TREE.root(size2)
    for size1 in sorted({1, 2 % size2 or 1, size2 // 2 or 1, size2 - 1}):
        root1 = TREE.root(size1)
        proof = TREE.consistency(size1, size2)
        verify_consistency(size1, size2, proof, root1, root2)
        for bad in flipped_bits(proof) + extended(proof, [JUNK, root1, root2, b"", proof[0]]) + [[]]:
            assert not outcome(verify_consistency, size1, size2, bad, root1, root2)
        for s1, s2 in [(size1 + 1, size2), (size1 - 1, size2), (size1 ^ 2, size2),
                       (size1, size2 + 1), (size1, size2 - 1), (size1, size2 * 2), (size1, size2 // 2)]:
            same = consistency_shape(s1, s2) == consistency_shape(size1, size2)
            assert outcome(verify_consistency, s1, s2, proof, root1, root2) is same, (s1, s2)
        for r1, r2 in [(root2, root1), (JUNK, root2), (root1, JUNK), (root1[:31], root2), (root1, root2 + b"\x00")]:
            assert not outcome(verify_consistency, size1, size2, proof, r1, r2)


def test_shape_rule_is_not_vacuous() -> None:
    # Same-shape size changes exist (that is why the checkpoint must sign the size) ...
    assert inclusion_shape(0, 5) == inclusion_shape(0, 6)
    assert consistency_shape(4, 6) == consistency_shape(4, 7)
    # ... and most changes are caught.
    assert inclusion_shape(0, 4) != inclusion_shape(0, 5)


@pytest.mark.parametrize(
    "args",
    [(-1, 5), (5, 5), (6, 5), (0, 0), (True, 5), ("0", 5), (0, 5.0)],
)
def test_bad_inclusion_arguments_fail(args: tuple[Any, Any]) -> None:
    leaf = leaf_hash(b"x")
    with pytest.raises(VerificationError):
        verify_inclusion(args[0], args[1], leaf, [leaf] * 3, leaf)
