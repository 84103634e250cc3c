"""audit.witness: the C2SP tlog-witness request and 409 bodies (the spec's example request, byte
for byte), and the witness's rule with the spec's status codes."""

from __future__ import annotations

import base64

import pytest

from audit import Checkpoint, TreeBuilder, consistency_proof_from, leaf_hash
from audit.witness import (
    LogState,
    MalformedRequest,
    Refusal,
    check_update,
    format_request,
    format_size,
    parse_request,
    parse_size,
)

# From github.com/C2SP/C2SP tlog-witness.md (commit 8d7756274916fb9efd94da8bc7264019e3fe46e4).
SPEC_REQUEST = """old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=
""".encode()


def test_the_spec_example_request() -> None:
    request = parse_request(SPEC_REQUEST)
    assert request.old == 20852014
    assert base64.b64encode(request.proof[0]).decode() == "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw="
    assert len(request.proof) == 4
    assert request.note.startswith("example.com/behind-the-sofa\n20852163\n")
    assert request.body() == SPEC_REQUEST  # and written back byte for byte


@pytest.mark.parametrize("body", [
    b"old 01\n\nx\n", b"old -1\n\nx\n", b"old 1", b"old  1\n\nx\n", b"Old 1\n\nx\n", b"old 1\nAAAA\n\nx\n",
    b"old 1\n" + b"PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n" * 64 + b"\nx\n", b"\xff\n\n",
    b"old 18446744073709551616\n\nx\n", b"old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw\n\nx\n",
])
def test_malformed_requests(body: bytes) -> None:
    with pytest.raises(MalformedRequest):
        parse_request(body)


def test_sizes() -> None:
    assert format_size(0) == b"0\n" and parse_size(b"20852163\n") == 20852163
    for bad in (b"", b"1", b"01\n", b"1\n\n", b"x\n", b" 1\n"):
        with pytest.raises(MalformedRequest):
            parse_size(bad)
    with pytest.raises(ValueError):
        format_request(-1, [], "x")


def _tree(leaves: int) -> tuple[TreeBuilder, dict[tuple[int, int], bytes]]:
    tree, nodes = TreeBuilder(), {}
    for n in range(leaves):
        for level, index, digest in tree.append(leaf_hash(n.to_bytes(4, "big"))):
            nodes[(level, index)] = digest
    return tree, nodes


def _checkpoint(size: int) -> Checkpoint:
    tree, _ = _tree(size)
    return Checkpoint("log.example", size, tree.root())


def test_the_rule() -> None:
    _, nodes = _tree(20)
    c5, c12, c20 = _checkpoint(5), _checkpoint(12), _checkpoint(20)
    # First time: from 0 with an empty proof.
    state = check_update(None, 0, [], c5)
    assert state == LogState(5, c5.root)
    # Then from where the witness stands, with a consistency proof.
    state = check_update(state, 5, consistency_proof_from(5, 12, nodes), c12)
    assert state == LogState(12, c12.root)
    assert check_update(state, 12, [], c12) == state  # the same checkpoint again
    proof = consistency_proof_from(12, 20, nodes)

    def refused(old: int, proof: list[bytes], checkpoint: Checkpoint) -> Refusal:
        with pytest.raises(Refusal) as caught:
            check_update(state, old, proof, checkpoint)
        return caught.value

    assert (refused(5, [], c12).status, refused(5, [], c12).size) == (409, 12)  # not where the witness stands
    assert refused(0, [], c20).status == 409  # a client that does not know: told the size
    assert refused(12, [], c5).status == 400  # old larger than the checkpoint: a rollback
    forked = Checkpoint("log.example", 12, leaf_hash(b"another history"))
    assert (refused(12, [], forked).status, refused(12, [], forked).size) == (409, 12)  # same size, other root
    assert refused(12, proof[:-1], c20).status == 422
    bad = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    assert refused(12, bad, c20).status == 422
    assert refused(12, proof, Checkpoint("log.example", 20, leaf_hash(b"fork"))).status == 422
    assert check_update(state, 12, proof, c20) == LogState(20, c20.root)
    with pytest.raises(Refusal) as caught:
        check_update(None, 0, proof, c20)
    assert caught.value.status == 422  # a proof from 0 must be empty
