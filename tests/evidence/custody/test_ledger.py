"""The custody ledger in the database, on SQLite and PostgreSQL: appends, proofs against the signed
roots, checkpoints, and concurrent writers that never fork the log. (`audit verify` catching edits
made behind the log's back: test_verify.py.)"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update

from audit import Entry, VerificationError, generate_signer, leaf_hash, verify_consistency, verify_inclusion
from evidence import custody, migrate
from evidence.custody import ledger
from evidence.custody import verify as ledger_check
from evidence.custody.actions import Action
from evidence.models import Checkpoint, CustodyEvent, LedgerHead, LedgerNode
from evidence.runtime import Runtime
from evidence.settings import Settings
from tests.evidence.custody.ledgers import ACTOR


def test_an_entry_is_stored_as_its_canonical_body(log: Runtime) -> None:
    with log.db.sessions() as session:
        row = session.get_one(CustodyEvent, 3)
        entry = Entry.decode(row.body)
        head = session.get_one(LedgerHead, ledger.HEAD_ID)
        nodes = session.scalar(select(text("count(*)")).select_from(LedgerNode))
    assert (entry.seq, entry.action, entry.subject["upload"]) == (3, Action.UPLOAD_CREATED, f"{3:032x}")
    assert (row.action, row.actor, row.case_ref, row.item_id) == ("upload.created", entry.actor, "OP-LEDGER", None)
    assert row.details == entry.details == {"filename": "CCTV 3.mp4", "size": 3000}
    assert row.leaf_hash == leaf_hash(row.body)
    assert head.size == 40 and len(head.frontier) == (40).bit_count() and nodes == 2 * 40 - (40).bit_count()


def test_proofs_verify_against_the_signed_roots(log: Runtime) -> None:
    with log.db.sessions() as session:
        sizes = [c.size for c in session.scalars(select(Checkpoint).order_by(Checkpoint.size))]
        assert sizes == [11, 25, 40]
        for size in sizes:
            root = ledger.root(session, size)
            for seq in range(size):
                leaf = session.get_one(CustodyEvent, seq).leaf_hash
                verify_inclusion(seq, size, leaf, ledger.inclusion_proof(session, seq, size), root)
        for first in range(1, 40):
            verify_consistency(
                first, 40, ledger.consistency_proof(session, first, 40), ledger.root(session, first), ledger.root(session, 40)
            )


def test_proofs_past_the_log_are_refused(log: Runtime) -> None:
    with log.db.sessions() as session:
        for ask in (lambda: ledger.root(session, 41), lambda: ledger.inclusion_proof(session, 40, 40),
                    lambda: ledger.inclusion_proof(session, 0, 41), lambda: ledger.consistency_proof(session, 5, 4),
                    lambda: ledger.consistency_proof(session, 1, 41), lambda: ledger.root(session, -1)):
            with pytest.raises(ValueError):
                ask()


def test_a_missing_node_fails_a_proof_plainly(log: Runtime) -> None:
    with log.db.transaction() as session:
        session.execute(delete(LedgerNode).where(LedgerNode.level == 3, LedgerNode.index == 0))
    with log.db.sessions() as session, pytest.raises(VerificationError, match="missing node"):
        ledger.root(session, 8)


def test_a_checkpoint_is_only_signed_when_there_is_something_new(log: Runtime) -> None:
    with log.db.transaction() as session:
        assert ledger.sign_checkpoint(session, log.ledger_keys, ACTOR) is None
        signed = ledger.sign_checkpoint(session, log.ledger_keys, ACTOR, force=True)
        assert signed is not None and signed.size == 41
    with log.db.sessions() as session:
        entry = Entry.decode(session.get_one(CustodyEvent, 40).body)
    # The checkpoint's own record is the last entry it covers.
    assert (entry.action, entry.details) == (Action.CHECKPOINT_SIGNED, {
        "origin": log.ledger_keys.origin, "size": 41, "previous_size": 40})


def test_a_checkpoint_that_would_fork_the_log_is_not_signed(log: Runtime) -> None:
    """The previous signed root no longer matches the stored tree: signing again would sign a fork."""
    forged = update(Checkpoint).where(Checkpoint.size == 40).values(root=bytes(32))
    with log.db.transaction() as session:
        session.execute(forged)
    with log.db.transaction() as session, pytest.raises(VerificationError):
        ledger.sign_checkpoint(session, log.ledger_keys, ACTOR, force=True)


def test_a_checkpoint_is_read_only_under_its_key_and_origin(log: Runtime) -> None:
    keys = log.ledger_keys
    with log.db.sessions() as session:
        note = session.get_one(Checkpoint, 25).note
    signed = ledger.read_checkpoint(note, keys.verifier, keys.origin)
    assert (signed.origin, signed.size) == (keys.origin, 25)
    with pytest.raises(VerificationError, match="not 'another/log'"):
        ledger.read_checkpoint(note, keys.verifier, "another/log")
    other = ledger.Keys(keys.origin, generate_signer(keys.origin))
    with pytest.raises(VerificationError):
        ledger.read_checkpoint(note, other.verifier)


# -- concurrent writers -------------------------------------------------------------------


def _append_many(data_dir: str, database_url: str, count: int, writer: int) -> None:
    rt = Runtime.build(Settings(data_dir=Path(data_dir), database_url=database_url))
    try:
        for n in range(count):
            with rt.db.transaction() as session:
                custody.record(session, Action.UPLOAD_CREATED, {"upload": f"{writer:04x}{n:028x}"},
                               f"user:w{writer}@x", {"n": n})
            if n % 10 == 0:
                with rt.db.transaction() as session:
                    ledger.sign_checkpoint(session, rt.ledger_keys, ACTOR)
    finally:
        rt.close()


@pytest.mark.postgres
def test_concurrent_processes_never_fork_the_log(tmp_path: Path, postgres_url: str) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=postgres_url)
    rt = Runtime.build(settings)  # makes the keys every writer then shares
    migrate.upgrade(rt.db.engine)
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_many, args=(str(settings.data_dir), postgres_url, 40, w)) for w in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
        assert process.exitcode == 0
    try:
        with rt.db.sessions() as session:
            seqs = list(session.scalars(select(CustodyEvent.seq).order_by(CustodyEvent.seq)))
            uploads = session.scalar(text("SELECT count(*) FROM custody_events WHERE action = 'upload.created'"))
            result = ledger_check.verify(session, rt.ledger_keys.verifier, rt.ledger_keys.origin)
        assert seqs == list(range(len(seqs)))
        assert uploads == 160
        assert result.ok and result.checkpoints >= 4, result.problem
    finally:
        rt.close()
