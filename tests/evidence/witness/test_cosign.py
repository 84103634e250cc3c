"""Two witnesses, each `evidence witness serve` in its own process, cosign a real server's ledger
over real HTTP as it grows (consistency proofs from the size each last saw); one down delays
nothing and catches up later; the CLI checks a quorum of cosignatures, on the ledger and offline
in a report; a fork made by editing the database and re-signing with the real key, and a
rollback, are refused with the spec's codes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from audit import Checkpoint as SignedCheckpoint
from audit import TreeBuilder, canonical, leaf_hash
from audit.cosignature import CosignatureVerifier, cosignatures
from audit.witness import format_request
from evidence.custody import ledger, report
from evidence.custody.actions import Action
from evidence.models import Checkpoint, CheckpointCosignature, CustodyEvent, WitnessState
from evidence.runtime import Runtime
from tests.evidence.custody import history
from tests.evidence.custody.ledgers import record
from tests.evidence.witness.processes import WitnessProcess, keygen
from tests.support.server import Server


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def cosigned_by(rt: Runtime) -> tuple[int, set[str]]:
    """The latest checkpoint's size and the witnesses (vkeys) that cosigned it."""
    with rt.db.sessions() as session:
        latest = ledger.latest_checkpoint(session)
        if latest is None:
            return 0, set()
        return latest.size, set(session.scalars(select(CheckpointCosignature.witness)
                                                .where(CheckpointCosignature.checkpoint_size == latest.size)))


def witness_size(witness: WitnessProcess) -> int:
    (state,) = witness.state.glob("*.json")
    return int(json.loads(state.read_text())["size"])


@pytest.fixture
def forces(make_server: Callable[..., Server], tmp_path: Path,
           database_url: str) -> Iterator[tuple[Server, Runtime, WitnessProcess, WitnessProcess]]:
    server = make_server({"EVIDENCE_DATABASE_URL": database_url} if database_url else {}, start=False)
    rt = server.runtime()
    witnesses: list[WitnessProcess] = []
    try:
        log = f"{rt.ledger_keys.origin}={rt.ledger_keys.signer.verifier_key()}"
        witnesses = [WitnessProcess(tmp_path / f"w{n}", f"witness.force-{n}.example", [log]).start() for n in (1, 2)]
        server.env.update({
            "EVIDENCE_WITNESSES": ",".join(f"{w.url}={w.vkey}" for w in witnesses),
            "EVIDENCE_CHECKPOINT_INTERVAL_SECONDS": "0.2", "EVIDENCE_WITNESS_TIMEOUT_SECONDS": "3",
        })
        server.start()
        yield server, rt, witnesses[0], witnesses[1]
    finally:
        for witness in witnesses:
            witness.stop()
        rt.close()


def test_two_witnesses_cosign_the_ledger(forces: tuple[Server, Runtime, WitnessProcess, WitnessProcess],
                                         tmp_path: Path) -> None:
    server, rt, one, two = forces
    both = {one.vkey, two.vkey}
    item = history.record(rt).item_id
    first, _ = wait_for("both witnesses to cosign", lambda: (found := cosigned_by(rt))[1] == both and found)
    assert witness_size(one) == witness_size(two) == first

    # The ledger grows: both cosign the new checkpoint, from the size each last cosigned.
    record(rt, 5)
    second, _ = wait_for("a larger checkpoint cosigned by both",
                         lambda: (found := cosigned_by(rt))[0] > first and found[1] == both and found)
    assert witness_size(one) == witness_size(two) == second
    # Cosignatures call for no endless round of checkpoints: the ledger comes to rest.
    with rt.db.sessions() as session:
        size = ledger.size(session)
    time.sleep(1.5)
    assert cosigned_by(rt)[0] == second
    with rt.db.sessions() as session:
        assert ledger.size(session) == size
        # One checkpoint.cosigned entry per cosignature received, naming the witness and the size.
        entries = session.scalars(select(CustodyEvent).where(CustodyEvent.action == Action.CHECKPOINT_COSIGNED)).all()
        rows = session.scalars(select(CheckpointCosignature)).all()
        assert sorted((e.details["witness_key"], e.details["size"]) for e in entries) == \
            sorted((r.witness, r.checkpoint_size) for r in rows)
        assert {e.details["witness"] for e in entries} == {"witness.force-1.example", "witness.force-2.example"}

    # One witness down: appends and checkpoints go on, cosigned by the other.
    two.stop()
    record(rt, 3, 100)
    third, _ = wait_for("a checkpoint cosigned by the witness still up",
                        lambda: (found := cosigned_by(rt))[0] > second and found[1] == {one.vkey} and found)
    with rt.db.sessions() as session:
        state = session.get_one(WitnessState, two.vkey)
        assert state.problem is not None and "unreachable" in state.problem and state.size == second
    assert witness_size(two) == second
    # It comes back and catches up, with a proof from the size it last saw.
    two.start()
    latest, _ = wait_for("the witness that was down to catch up",
                         lambda: (found := cosigned_by(rt))[1] == both and found[0] >= third and found)
    assert witness_size(two) == latest

    # The CLI: the latest checkpoint carries both cosignatures; a key that is not a witness's fails.
    done = server.cli("audit", "verify", "--witness", one.vkey, "--witness", two.vkey, "--quorum", "2")
    assert "carries 2 valid cosignature(s)" in done.stdout
    stranger = keygen("witness.force-1.example", tmp_path / "stranger.key")
    failed = server.cli("audit", "verify", "--witness", stranger, "--quorum", "1", check=False)
    assert failed.returncode == 1 and "0 valid cosignature(s)" in " ".join(failed.stderr.split())

    # A report carries the cosigned checkpoint, checked offline with a quorum of 2.
    out = tmp_path / "report.json"
    server.cli("audit", "report", item, "--format", "json", "-o", str(out))
    vkey = rt.ledger_keys.signer.verifier_key()

    def verify_report(path: Path, *keys: str, quorum: int = 2) -> Any:
        args = [arg for key in keys for arg in ("--witness", key)]
        return server.cli("audit", "verify-report", str(path), "--public-key", vkey, *args, "--quorum", str(quorum),
                          check=False)

    assert verify_report(out, one.vkey, two.vkey).returncode == 0
    # The HTML form embeds the same report: checked the same way.
    server.cli("audit", "report", item, "--format", "html", "-o", str(tmp_path / "report.html"))
    done = verify_report(tmp_path / "report.html", one.vkey, two.vkey)
    assert done.returncode == 0 and "carries 2 valid cosignature(s)" in done.stdout
    assert verify_report(out, one.vkey, stranger, quorum=1).returncode == 0
    wrong = verify_report(out, stranger, two.vkey)
    assert wrong.returncode == 1 and "1 valid cosignature(s)" in " ".join(wrong.stderr.split())
    # One cosignature line cut: refused, even once the force re-signs the report with its own key.
    issued = json.loads(out.read_bytes())
    line = next(line for line in issued["checkpoint"].splitlines(keepends=True) if "witness.force-2.example" in line)
    cut = {k: v for k, v in issued.items() if k != "signature"}
    cut["checkpoint"] = issued["checkpoint"].replace(line, "")
    (tmp_path / "cut.json").write_bytes(canonical({**cut, "signature": issued["signature"]}))
    refused = verify_report(tmp_path / "cut.json", one.vkey, two.vkey)
    assert refused.returncode == 1 and "signature does not cover" in " ".join(refused.stderr.split())
    resigned = {**cut, "signature": rt.ledger_keys.signer.sign(report._SIGNED.format(digest=report._digest(cut)))}
    (tmp_path / "resigned.json").write_bytes(canonical(resigned))
    refused = verify_report(tmp_path / "resigned.json", one.vkey, two.vkey)
    assert refused.returncode == 1 and "1 valid cosignature(s) from the 2 given witness key(s); 2 needed" in \
        " ".join(refused.stderr.split())
    assert verify_report(tmp_path / "resigned.json", one.vkey, two.vkey, quorum=1).returncode == 0

    # The report's export is recorded, and cosigned in turn; then the server stops.
    latest, _ = wait_for("the export's checkpoint to be cosigned", lambda: (found := cosigned_by(rt))[1] == both
                         and found[0] > latest and witness_size(one) == witness_size(two) == found[0] and found)
    server.stop()

    # A rollback: an older checkpoint of the real log, offered again.
    with rt.db.sessions() as session:
        old_note = session.get_one(Checkpoint, first).note
    answer = one.add_checkpoint(format_request(0, [], old_note))
    assert (answer.status_code, answer.content) == (409, f"{latest}\n".encode())
    assert one.add_checkpoint(format_request(latest, [], old_note)).status_code == 400

    # A fork: an entry edited in the database, the tree recomputed and signed with the real key
    # at the size the witnesses last cosigned. Both refuse it (409, same size, another root).
    with rt.db.transaction() as session:
        body = session.scalars(select(CustodyEvent.body).where(CustodyEvent.seq == 0)).one()
        edited = body.replace(b"Operation Halford", b"Operation Halfort")  # any change of the signed bytes
        assert edited != body
        session.execute(update(CustodyEvent).where(CustodyEvent.seq == 0).values(body=edited))
        tree = TreeBuilder()
        for body in session.scalars(select(CustodyEvent.body).where(CustodyEvent.seq < latest)
                                    .order_by(CustodyEvent.seq)):
            tree.append(leaf_hash(body))
        forged = SignedCheckpoint(rt.ledger_keys.origin, latest, tree.root())
        note = rt.ledger_keys.signer.sign(forged.text())
        session.execute(delete(CheckpointCosignature).where(CheckpointCosignature.checkpoint_size == latest))
        session.execute(update(Checkpoint).where(Checkpoint.size == latest).values(root=forged.root, note=note))
    for witness in (one, two):
        answer = witness.add_checkpoint(format_request(latest, [], note))
        assert (answer.status_code, answer.content) == (409, f"{latest}\n".encode())
    # Asked by the ledger itself (the server restarted on the edited database): refused the same way.
    server.start()
    wait_for("both witnesses to refuse the forked checkpoint", lambda: all(
        (state := _state(rt, w.vkey)) is not None and state.problem is not None and "409" in state.problem
        for w in (one, two)))
    with rt.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(CheckpointCosignature)
                              .where(CheckpointCosignature.checkpoint_size == latest)) == 0
    assert witness_size(one) == witness_size(two) == latest
    assert cosignatures(note, [CosignatureVerifier.from_vkey(one.vkey)]) == {}


def _state(rt: Runtime, key: str) -> WitnessState | None:
    with rt.db.sessions() as session:
        return session.get(WitnessState, key)
