"""The custody ledger in the database: appends, proofs, checkpoints, and `audit verify`
catching every kind of edit made to the stored log behind its back."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update

from audit import Checkpoint as SignedCheckpoint
from audit import generate_signer, leaf_hash, root_nodes, verify_consistency, verify_inclusion
from evidence import custody, migrate
from evidence.custody import ledger
from evidence.custody import verify as ledger_check
from evidence.models import Checkpoint, CustodyEvent, LedgerHead, LedgerNode
from evidence.runtime import Runtime
from evidence.settings import Settings

ACTOR = "system:test@host"


@pytest.fixture
def rt(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    runtime = Runtime.build(Settings(data_dir=tmp_path / "data", database_url=database_url))
    migrate.upgrade(runtime.db.engine)
    try:
        yield runtime
    finally:
        runtime.close()


def record(rt: Runtime, count: int, start: int = 0) -> None:
    with rt.db.transaction() as session:
        for n in range(start, start + count):
            custody.record(
                session, "upload.created", {"case": "OP-LEDGER", "upload": f"{n:032x}"}, "user:pc@force.police.uk",
                {"filename": f"CCTV {n}.mp4", "size": n * 1000},
            )


def checkpoint(rt: Runtime) -> Checkpoint:
    with rt.db.transaction() as session:
        ledger.sign_checkpoint(session, rt.ledger_keys, ACTOR)
    with rt.db.sessions() as session:
        found = ledger.latest_checkpoint(session)
        assert found is not None
        return found


@pytest.fixture
def log(rt: Runtime) -> Runtime:
    """37 entries with checkpoints at 11 and 25 and at the end (40)."""
    record(rt, 10)
    checkpoint(rt)
    record(rt, 13, 10)
    checkpoint(rt)
    record(rt, 14, 23)
    checkpoint(rt)
    return rt


def verdict(rt: Runtime) -> ledger_check.Result:
    with rt.db.sessions() as session:
        return ledger_check.verify(session, rt.ledger_keys.verifier, rt.ledger_keys.origin)


def edit(rt: Runtime, *statements: object) -> None:
    with rt.db.transaction() as session:
        for statement in statements:
            session.execute(statement)  # type: ignore[arg-type]


def test_an_untouched_log_verifies(log: Runtime) -> None:
    result = verdict(log)
    assert result.ok, result.problem
    assert (result.entries, result.checkpoints) == (40, 3)


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


def test_a_checkpoint_is_only_signed_when_there_is_something_new(log: Runtime) -> None:
    with log.db.transaction() as session:
        assert ledger.sign_checkpoint(session, log.ledger_keys, ACTOR) is None


@pytest.mark.parametrize(
    ("column", "value"),
    [("actor", "user:someone-else@force.police.uk"), ("action", "upload.completed"), ("case_ref", "OP-OTHER")],
)
def test_an_edited_column_is_caught_at_its_entry(log: Runtime, column: str, value: str) -> None:
    edit(log, update(CustodyEvent).where(CustodyEvent.seq == 17).values({column: value}))
    result = verdict(log)
    assert not result.ok and result.seq == 17, result.problem


def test_an_edited_body_is_caught_at_its_entry(log: Runtime) -> None:
    with log.db.sessions() as session:
        body = session.get_one(CustodyEvent, 5).body
    forged = body.replace(b"CCTV 5", b"CCTV 9")
    assert forged != body
    edit(log, update(CustodyEvent).where(CustodyEvent.seq == 5).values(body=forged))
    result = verdict(log)
    assert not result.ok and result.seq == 5, result.problem


def test_an_edit_carried_through_leaf_and_node_is_still_caught(log: Runtime) -> None:
    """The forger recomputes the leaf hash and its level-0 node: the parents give it away."""
    with log.db.sessions() as session:
        original = session.get_one(CustodyEvent, 6).body
    body = original.replace(b"CCTV 6", b"CCTV 8")
    assert body != original
    leaf = leaf_hash(body)
    edit(
        log,
        update(CustodyEvent).where(CustodyEvent.seq == 6).values(body=body, leaf_hash=leaf),
        update(LedgerNode).where(LedgerNode.level == 0, LedgerNode.index == 6).values(hash=leaf),
    )
    result = verdict(log)
    assert not result.ok and result.seq is not None and result.seq <= 6, result.problem


def test_a_deleted_entry_is_caught(log: Runtime) -> None:
    edit(log, delete(CustodyEvent).where(CustodyEvent.seq == 20))
    result = verdict(log)
    assert not result.ok and result.seq == 20, result.problem


def test_two_swapped_entries_are_caught(log: Runtime) -> None:
    with log.db.sessions() as session:
        a, b = session.get_one(CustodyEvent, 8), session.get_one(CustodyEvent, 9)
        rows = {8: (a.body, a.leaf_hash, a.action, a.subject, a.details), 9: (b.body, b.leaf_hash, b.action, b.subject, b.details)}
    for seq, other in ((8, 9), (9, 8)):
        body, leaf, action, subject, details = rows[other]
        edit(log, update(CustodyEvent).where(CustodyEvent.seq == seq).values(
            body=body, leaf_hash=leaf, action=action, subject=subject, details=details))
    result = verdict(log)
    assert not result.ok and result.seq == 8, result.problem


def test_an_entry_appended_behind_the_logs_back_is_caught(log: Runtime) -> None:
    with log.db.sessions() as session:
        last = session.get_one(CustodyEvent, 39)
        forged = {attr.key: getattr(last, attr.key) for attr in CustodyEvent.__mapper__.column_attrs}
    edit(log, CustodyEvent.__table__.insert().values({**forged, "seq": 40}))
    result = verdict(log)
    assert not result.ok and result.seq is not None and result.seq >= 39, result.problem


def test_a_truncated_log_is_caught(log: Runtime) -> None:
    """The last entries removed and the head wound back to match: the signed checkpoint at 40 remains."""
    with log.db.sessions() as session:
        frontier = [[level, index, session.get_one(LedgerNode, (level, index)).hash.hex()]
                    for level, index in root_nodes(30)]
    edit(
        log,
        delete(CustodyEvent).where(CustodyEvent.seq >= 30),
        update(LedgerHead).values(size=30, frontier=frontier),
    )
    result = verdict(log)
    assert not result.ok and "truncated" in result.problem, result.problem  # type: ignore[operator]


def test_an_edited_checkpoint_is_caught(log: Runtime) -> None:
    with log.db.sessions() as session:
        note = session.get_one(Checkpoint, 25).note
    edit(log, update(Checkpoint).where(Checkpoint.size == 25).values(note=note.replace("\n25\n", "\n24\n")))
    result = verdict(log)
    assert not result.ok and "checkpoint at size 25" in result.problem, result.problem  # type: ignore[operator]


def test_a_checkpoint_resigned_with_another_key_is_caught(log: Runtime) -> None:
    impostor = generate_signer(log.ledger_keys.origin)
    with log.db.sessions() as session:
        stored = session.get_one(Checkpoint, 25)
        note = impostor.sign(SignedCheckpoint(log.ledger_keys.origin, 25, stored.root).text())
    edit(log, update(Checkpoint).where(Checkpoint.size == 25).values(note=note))
    result = verdict(log)
    assert not result.ok and "not signed by this ledger's key" in result.problem, result.problem  # type: ignore[operator]


# -- concurrent writers -------------------------------------------------------------------


def _append_many(data_dir: str, database_url: str, count: int, writer: int) -> None:
    rt = Runtime.build(Settings(data_dir=Path(data_dir), database_url=database_url))
    try:
        for n in range(count):
            with rt.db.transaction() as session:
                custody.record(session, "upload.created", {"upload": f"{writer:04x}{n:028x}"}, f"user:w{writer}@x", {"n": n})
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
        assert seqs == list(range(len(seqs)))
        assert uploads == 160
        result = verdict(rt)
        assert result.ok and result.checkpoints >= 4, result.problem
    finally:
        rt.close()
