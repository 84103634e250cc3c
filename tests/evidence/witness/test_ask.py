"""The ledger asking one witness (evidence.witness.cosign.ask), against a real witness process:
a cosignature is verified against the configured key before it is kept; a 409 is followed once
from the witness's size; a witness that is down, or answers for another key, leaves nothing
behind but the reason, and the EVIDENCE_WITNESSES setting is strict."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from audit.cosignature import CosignatureVerifier
from evidence import migrate
from evidence.custody.actions import Action
from evidence.models import CheckpointCosignature, CustodyEvent, WitnessState
from evidence.runtime import Runtime
from evidence.settings import Settings
from evidence.witness.config import Witness, parse_witnesses
from evidence.witness.cosign import ask, needs_checkpoint
from tests.evidence.custody.ledgers import checkpoint, record
from tests.evidence.witness.processes import WitnessProcess, keygen
from tests.support.s3 import free_port


@pytest.fixture
def rt(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    runtime = Runtime.build(Settings(data_dir=tmp_path / "data", database_url=database_url))
    migrate.upgrade(runtime.db.engine)
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def witness(rt: Runtime, tmp_path: Path) -> Iterator[WitnessProcess]:
    process = WitnessProcess(tmp_path / "w", "witness.force-b.example",
                             [f"{rt.ledger_keys.origin}={rt.ledger_keys.signer.verifier_key()}"]).start()
    try:
        yield process
    finally:
        process.stop()


def _counts(rt: Runtime) -> tuple[int, int]:
    with rt.db.sessions() as session:
        return (session.scalar(select(func.count()).select_from(CheckpointCosignature)) or 0,
                session.scalar(select(func.count()).select_from(CustodyEvent)
                               .where(CustodyEvent.action == Action.CHECKPOINT_COSIGNED)) or 0)


def _problem(rt: Runtime, key: str) -> str | None:
    with rt.db.sessions() as session:
        return session.get_one(WitnessState, key).problem


def test_asking_one_witness(rt: Runtime, witness: WitnessProcess, tmp_path: Path) -> None:
    record(rt, 10)
    first = checkpoint(rt).size
    trusted = Witness(witness.url, CosignatureVerifier.from_vkey(witness.vkey))
    # Answered for another key (the URL is the witness's, the configured key is not): nothing kept.
    impostor = Witness(witness.url, CosignatureVerifier.from_vkey(keygen("witness.force-b.example", tmp_path / "k")))
    assert ask(rt.db, impostor, first, 5) == "its answer holds no cosignature by its configured key"
    assert _counts(rt) == (0, 0)
    # The witness did cosign (and now stands at `first`); with its real key, asking again gives
    # the same checkpoint's cosignature (old == size: same root), kept and recorded once.
    assert ask(rt.db, trusted, first, 5) is None
    assert _counts(rt) == (1, 1)
    with rt.db.sessions() as session:
        assert not needs_checkpoint(session)  # only the cosignature entry is new

    # We forget where the witness stands: its 409 says, and the request is made again from there.
    record(rt, 7, 10)
    with rt.db.sessions() as session:
        assert needs_checkpoint(session)  # something besides cosignatures: a checkpoint is due
    second = checkpoint(rt).size
    with rt.db.transaction() as session:
        session.get_one(WitnessState, trusted.key).size = 0
    assert ask(rt.db, trusted, second, 5) is None
    with rt.db.sessions() as session:
        assert session.get_one(WitnessState, trusted.key).size == second
    assert _counts(rt) == (2, 2)

    # Down: the reason is kept, nothing else.
    down = Witness(f"http://127.0.0.1:{free_port()}", trusted.verifier)
    problem = ask(rt.db, down, second, 2)
    assert problem is not None and problem.startswith("unreachable")
    assert _counts(rt) == (2, 2)


def test_the_setting_is_strict(tmp_path: Path) -> None:
    vkey = keygen("witness.example/w1", tmp_path / "w.key")
    (found,) = parse_witnesses(f" https://witness.example/sub/={vkey} ,")
    assert found.url == "https://witness.example/sub" and found.key == vkey
    for bad in (f"witness.example={vkey}", f"ftp://witness.example={vkey}", "https://witness.example",
                f"https://a.example={vkey},https://b.example={vkey}", "https://a.example=" + vkey[:-2]):
        with pytest.raises(ValueError):
            parse_witnesses(bad)
    with pytest.raises(ValueError, match="witness"):
        Settings(witnesses=f"https://a.example={vkey[:-1]}")
