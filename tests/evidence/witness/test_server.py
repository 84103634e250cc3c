"""``evidence witness keygen`` and ``serve``: the witness in its own process over real HTTP,
answering every case of C2SP tlog-witness's add-checkpoint with the spec's status code, and
keeping its state across a restart."""

from __future__ import annotations

import base64
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit import Checkpoint, NoteSigner, TreeBuilder, consistency_proof_from, generate_signer, leaf_hash
from audit.cosignature import CosignatureVerifier, cosignatures
from audit.witness import SIZE_CONTENT_TYPE, format_request
from evidence.witness.server import MAX_BODY
from tests.evidence.witness.processes import WitnessProcess, keygen
from tests.support.server import EVIDENCE

ORIGIN = "force-a.example/custody-ledger"


class Log:
    """A log of numbered leaves, signed by its own key."""

    def __init__(self, signer: NoteSigner) -> None:
        self.signer = signer
        self.tree = TreeBuilder()
        self.nodes: dict[tuple[int, int], bytes] = {}

    def grow(self, to: int) -> Checkpoint:
        while self.tree.size < to:
            for level, index, digest in self.tree.append(leaf_hash(self.tree.size.to_bytes(4, "big"))):
                self.nodes[(level, index)] = digest
        return Checkpoint(ORIGIN, self.tree.size, self.tree.root())

    def body(self, old: int, checkpoint: Checkpoint, signer: NoteSigner | None = None) -> bytes:
        proof = consistency_proof_from(old, checkpoint.size, self.nodes) if 0 < old < checkpoint.size else []
        return format_request(old, proof, (signer or self.signer).sign(checkpoint.text()))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WitnessProcess, Log]]:
    log = Log(generate_signer(ORIGIN))
    witness = WitnessProcess(tmp_path_factory.mktemp("witness"), "witness.force-b.example",
                             [f"{ORIGIN}={log.signer.verifier_key()}"]).start()
    try:
        yield witness, log
    finally:
        witness.stop()


def test_keygen_writes_a_private_key_and_prints_its_verifier_key(tmp_path: Path) -> None:
    vkey = keygen("witness.example/w1", tmp_path / "w.key")
    assert stat.S_IMODE((tmp_path / "w.key").stat().st_mode) == 0o600
    assert (tmp_path / "w.key").read_text().startswith("PRIVATE+KEY+witness.example/w1+")
    assert CosignatureVerifier.from_vkey(vkey).name == "witness.example/w1"
    again = subprocess.run([EVIDENCE, "witness", "keygen", "x", "--out", str(tmp_path / "w.key")],
                           capture_output=True, text=True)
    assert again.returncode == 1 and "never overwritten" in again.stderr
    assert (tmp_path / "w.key").read_text().startswith("PRIVATE+KEY+witness.example/w1+")


def test_add_checkpoint_as_the_spec_says(setup: tuple[WitnessProcess, Log]) -> None:
    witness, log = setup
    trusted = CosignatureVerifier.from_vkey(witness.vkey)
    first = log.grow(5)
    answer = witness.add_checkpoint(log.body(0, first))
    assert answer.status_code == 200, answer.text
    note = log.signer.sign(first.text())
    assert len(cosignatures(note + answer.text, [trusted])) == 1  # a cosignature of exactly this checkpoint

    # 409: the old size is not the witness's (a client that does not know, or a rollback).
    answer = witness.add_checkpoint(log.body(0, log.grow(5)))
    assert (answer.status_code, answer.content) == (409, b"5\n")
    assert answer.headers["content-type"] == SIZE_CONTENT_TYPE
    # Grown, with a consistency proof from 5.
    second = log.grow(13)
    answer = witness.add_checkpoint(log.body(5, second))
    assert answer.status_code == 200 and len(cosignatures(log.signer.sign(second.text()) + answer.text, [trusted]))
    # A rollback: an older checkpoint, from where the witness stands (400) or from its own size (409).
    assert witness.add_checkpoint(format_request(13, [], log.signer.sign(first.text()))).status_code == 400
    assert witness.add_checkpoint(log.body(5, second)).content == b"13\n"
    # A fork at the same size: another root, signed with the log's real key.
    forked = Checkpoint(ORIGIN, 13, leaf_hash(b"another history"))
    answer = witness.add_checkpoint(format_request(13, [], log.signer.sign(forked.text())))
    assert (answer.status_code, answer.content) == (409, b"13\n")
    # A fork further on: the proof from 13 does not lead to the witness's root.
    third = log.grow(21)
    proof = consistency_proof_from(13, 21, log.nodes)
    other = Checkpoint(ORIGIN, 21, leaf_hash(b"a third history"))
    assert witness.add_checkpoint(format_request(13, proof, log.signer.sign(other.text()))).status_code == 422
    assert witness.add_checkpoint(format_request(13, proof[1:], log.signer.sign(third.text()))).status_code == 422
    # Unknown log (404), a signature by another key (403), and malformed bodies (400).
    stranger = generate_signer("force-c.example/ledger")
    assert witness.add_checkpoint(format_request(0, [], stranger.sign(
        Checkpoint("force-c.example/ledger", 1, leaf_hash(b"x")).text()))).status_code == 404
    impostor = generate_signer(ORIGIN)
    assert witness.add_checkpoint(log.body(13, third, impostor)).status_code == 403
    assert witness.add_checkpoint(b"old 13\n\nnot a note").status_code == 400
    assert witness.add_checkpoint(b"old 013\n\n" + log.signer.sign(third.text()).encode()).status_code == 400
    # Too large: refused before it is read whole.
    assert witness.add_checkpoint(b"old 0\n" + b"x" * MAX_BODY).status_code == 413
    # None of those moved the witness: the right request still works, from 13.
    answer = witness.add_checkpoint(log.body(13, third))
    assert answer.status_code == 200, answer.text
    line = answer.text
    assert line.startswith("— witness.force-b.example ") and line.endswith("\n") and line.count("\n") == 1
    assert len(base64.b64decode(line.split(" ")[2])) == 4 + 8 + 64


def test_the_state_survives_a_restart(setup: tuple[WitnessProcess, Log]) -> None:
    witness, log = setup
    latest = log.grow(30)
    assert witness.add_checkpoint(log.body(log_size(witness, log), latest)).status_code == 200
    witness.stop()
    witness.start()
    answer = witness.add_checkpoint(log.body(0, latest))
    assert (answer.status_code, answer.content) == (409, b"30\n")
    # One small file per log, named by the origin's hash, nothing else left behind.
    files = sorted(p.suffix for p in witness.state.iterdir())
    assert files == [".json", ".lock"]


def log_size(witness: WitnessProcess, log: Log) -> int:
    """Where the witness stands, as it says in a 409."""
    answer = witness.add_checkpoint(log.body(0, log.grow(log.tree.size)))
    return int(answer.content) if answer.status_code == 409 else 0
