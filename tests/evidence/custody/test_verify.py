"""`audit verify` over the stored ledger, on SQLite and PostgreSQL: every kind of edit made behind
the log's back is caught and named by its first entry, with the tree rebuilt in blocks of the
production size and in blocks of four leaves (so that a 40-entry log spans many blocks and the
nodes above them), and on PostgreSQL split between two processes as a long log is."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, insert, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

from audit import Checkpoint as SignedCheckpoint
from audit import generate_signer, leaf_hash, root_nodes
from evidence.custody import verify as ledger_check
from evidence.models import Checkpoint, CustodyEvent, LedgerHead, LedgerNode
from evidence.runtime import Runtime


@pytest.fixture(params=[16, 2], ids=["blocks-65536", "blocks-4"])
def block_level(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    level: int = request.param
    monkeypatch.setattr(ledger_check, "BLOCK_LEVEL", level)
    monkeypatch.setattr(ledger_check, "HELPER_PROCESSES", 0)  # the split has tests of its own, below
    return level


def verdict(rt: Runtime) -> ledger_check.Result:
    with rt.db.sessions() as session:
        return ledger_check.verify(session, rt.ledger_keys.verifier, rt.ledger_keys.origin)


def edit(rt: Runtime, *statements: Executable) -> None:
    with rt.db.transaction() as session:
        for statement in statements:
            session.execute(statement)


def swap(rt: Runtime, a: int, b: int) -> None:
    with rt.db.sessions() as session:
        rows = {seq: session.get_one(CustodyEvent, seq) for seq in (a, b)}
        values = {seq: {"body": row.body, "leaf_hash": row.leaf_hash, "action": row.action, "subject": row.subject,
                        "details": row.details} for seq, row in rows.items()}
    edit(rt, *(update(CustodyEvent).where(CustodyEvent.seq == seq).values(values[other])
               for seq, other in ((a, b), (b, a))))


def test_an_untouched_log_verifies(log: Runtime, block_level: int) -> None:
    result = verdict(log)
    assert result.ok, result.problem
    assert (result.entries, result.checkpoints) == (40, 3)
    assert sorted(result.roots) == [11, 25, 40]


@pytest.mark.parametrize(
    ("column", "value"),
    [("actor", "user:someone-else@force.police.uk"), ("action", "upload.completed"), ("case_ref", "OP-OTHER")],
)
def test_an_edited_column_is_caught_at_its_entry(log: Runtime, column: str, value: str) -> None:
    edit(log, update(CustodyEvent).where(CustodyEvent.seq == 17).values({column: value}))
    result = verdict(log)
    assert not result.ok and result.seq == 17, result.problem


def test_an_edited_body_is_caught_at_its_entry(log: Runtime, block_level: int) -> None:
    with log.db.sessions() as session:
        body = session.get_one(CustodyEvent, 5).body
    forged = body.replace(b"CCTV 5", b"CCTV 9")
    assert forged != body
    edit(log, update(CustodyEvent).where(CustodyEvent.seq == 5).values(body=forged))
    result = verdict(log)
    assert not result.ok and result.seq == 5, result.problem


def test_a_body_rewritten_as_text_is_caught_not_a_crash(log: Runtime) -> None:
    """SQLite's replace() on the BLOB gives TEXT: what a hand edit in the sqlite3 shell leaves."""
    rewrite = text("UPDATE custody_events SET body = replace(body, 'CCTV 5', 'CCTV 9') WHERE seq = 5")
    if log.db.is_postgres:
        with pytest.raises(DBAPIError):  # bytea holds bytes only: there, this edit cannot be made
            edit(log, rewrite)
        return
    edit(log, rewrite)
    result = verdict(log)
    assert not result.ok and result.seq == 5, result.problem
    assert "edited" in (result.problem or "")


def test_an_edit_carried_through_leaf_and_node_is_still_caught(log: Runtime, block_level: int) -> None:
    """The forger recomputes the leaf hash, its level-0 node and the columns: the parents give it away
    (named by the first entry under the highest of them that the edit changed)."""
    with log.db.sessions() as session:
        original = session.get_one(CustodyEvent, 6)
        body, details = original.body.replace(b"CCTV 6", b"CCTV 8"), {**original.details, "filename": "CCTV 8.mp4"}
    assert body != original.body
    leaf = leaf_hash(body)
    edit(
        log,
        update(CustodyEvent).where(CustodyEvent.seq == 6).values(body=body, leaf_hash=leaf, details=details),
        update(LedgerNode).where(LedgerNode.level == 0, LedgerNode.index == 6).values(hash=leaf),
    )
    result = verdict(log)
    assert not result.ok and result.seq == 0 and "node over entries 0..7 is wrong" in (result.problem or ""), \
        result.problem


def test_a_node_edited_at_any_level_is_named(log: Runtime, block_level: int) -> None:
    with log.db.sessions() as session:
        nodes = {(n.level, n.index): n.hash for n in session.query(LedgerNode)}
    for (level, index), digest in sorted(nodes.items()):
        where = (LedgerNode.level == level, LedgerNode.index == index)
        edit(log, update(LedgerNode).where(*where).values(hash=bytes(32)))
        result = verdict(log)
        first, last = index << level, ((index + 1) << level) - 1
        assert result.seq == first and f"node over entries {first}..{last} is wrong" in (result.problem or ""), \
            (level, index, result.problem)
        edit(log, update(LedgerNode).where(*where).values(hash=digest))
    assert verdict(log).ok


def test_a_deleted_entry_is_caught(log: Runtime, block_level: int) -> None:
    edit(log, delete(CustodyEvent).where(CustodyEvent.seq == 20))
    result = verdict(log)
    assert not result.ok and result.seq == 20, result.problem


def test_two_swapped_entries_are_caught(log: Runtime, block_level: int) -> None:
    swap(log, 8, 9)
    result = verdict(log)
    assert not result.ok and result.seq == 8, result.problem


def test_an_entry_appended_behind_the_logs_back_is_caught(log: Runtime, block_level: int) -> None:
    with log.db.sessions() as session:
        last = session.get_one(CustodyEvent, 39)
        forged = {attr.key: getattr(last, attr.key) for attr in CustodyEvent.__mapper__.column_attrs}
    edit(log, insert(CustodyEvent).values({**forged, "seq": 40}))
    result = verdict(log)
    assert not result.ok and result.seq is not None and result.seq >= 39, result.problem


def test_a_node_added_behind_the_logs_back_is_caught(log: Runtime, block_level: int) -> None:
    edit(log, insert(LedgerNode).values(level=0, index=40, hash=bytes(32)))
    result = verdict(log)
    assert not result.ok and result.seq == 40 and "extended behind the log's back" in (result.problem or "")


def test_a_truncated_log_is_caught(log: Runtime, block_level: int) -> None:
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
    assert not result.ok and "truncated" in (result.problem or ""), result.problem


def test_an_edited_checkpoint_is_caught(log: Runtime) -> None:
    with log.db.sessions() as session:
        note = session.get_one(Checkpoint, 25).note
    edit(log, update(Checkpoint).where(Checkpoint.size == 25).values(note=note.replace("\n25\n", "\n24\n")))
    result = verdict(log)
    assert not result.ok and "checkpoint at size 25" in (result.problem or ""), result.problem


def test_a_checkpoint_resigned_with_another_key_is_caught(log: Runtime) -> None:
    impostor = generate_signer(log.ledger_keys.origin)
    with log.db.sessions() as session:
        stored = session.get_one(Checkpoint, 25)
        note = impostor.sign(SignedCheckpoint(log.ledger_keys.origin, 25, stored.root).text())
    edit(log, update(Checkpoint).where(Checkpoint.size == 25).values(note=note))
    result = verdict(log)
    assert not result.ok and "not signed by this ledger's key" in (result.problem or ""), result.problem


def test_an_empty_ledger_verifies(rt: Runtime) -> None:
    result = verdict(rt)
    assert result.ok and (result.entries, result.checkpoints) == (0, 0), result.problem


# -- two processes, on PostgreSQL ----------------------------------------------------------


@pytest.fixture
def split(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Blocks of four leaves, so a 40-entry log is long enough for a helper process (entries 0..19);
    the helpers that were started."""
    monkeypatch.setattr(ledger_check, "BLOCK_LEVEL", 2)
    started: list[Any] = []
    start = ledger_check._Helper.start

    def recorded(session: Any, wanted: set[int]) -> Any:
        helper = start(session, wanted)
        started.append(helper)
        return helper

    monkeypatch.setattr(ledger_check._Helper, "start", recorded)
    return started


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_long_log_is_checked_by_two_processes(log: Runtime, split: list[Any]) -> None:
    result = verdict(log)
    assert result.ok and sorted(result.roots) == [11, 25, 40], result.problem
    assert [helper.end for helper in split] == [20]  # the checkpoint at 11 was the helper's

    with log.db.sessions() as session:
        bodies = {seq: session.get_one(CustodyEvent, seq).body for seq in (5, 30)}
    for seqs, expected in (((30,), 30), ((5,), 5), ((5, 30), 5)):
        edit(log, *(update(CustodyEvent).where(CustodyEvent.seq == seq).values(body=bodies[seq].replace(b"CCTV", b"CCTX"))
                    for seq in seqs))
        result = verdict(log)
        assert result.seq == expected and "does not match its recorded leaf hash" in (result.problem or ""), \
            (seqs, result.problem)
        edit(log, *(update(CustodyEvent).where(CustodyEvent.seq == seq).values(body=bodies[seq]) for seq in seqs))

    # The node over entries 0..31 spans both halves: checked once both are known.
    with log.db.sessions() as session:
        digest = session.get_one(LedgerNode, (5, 0)).hash
    edit(log, update(LedgerNode).where(LedgerNode.level == 5, LedgerNode.index == 0).values(hash=bytes(32)))
    result = verdict(log)
    assert result.seq == 0 and "entries 0..31 is wrong" in (result.problem or ""), result.problem
    edit(log, update(LedgerNode).where(LedgerNode.level == 5, LedgerNode.index == 0).values(hash=digest))
    assert verdict(log).ok and len(split) == 6


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_when_the_helper_fails_this_process_checks_its_half(
    log: Runtime, split: list[Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    def failed(self: Any, roots: dict[int, bytes]) -> None:
        self.pipe.close()
        self.process.kill()
        self.process.join(30)

    monkeypatch.setattr(ledger_check._Helper, "result", failed)
    result = verdict(log)
    assert result.ok and sorted(result.roots) == [11, 25, 40] and split[0] is not None, result.problem
    swap(log, 2, 3)
    result = verdict(log)
    assert result.seq == 2, result.problem
