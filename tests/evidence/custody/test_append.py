"""The stored append matches audit's Merkle tree byte for byte, on SQLite (Python) and PostgreSQL
(custody_append in the server): every body, leaf, node and the head's border, over batches that
cross many powers of two; a head that is not where its holder read it, or whose border does not
match its size, is refused and nothing is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from audit import Entry, TreeBuilder, VerificationError, merkle
from evidence.custody.append import HeadMoved, append
from evidence.custody.prepared import Prepared, prepare
from evidence.models import CustodyEvent, LedgerHead, LedgerNode
from evidence.runtime import Runtime

BATCHES = [1, 1, 2, 3, 1, 5, 8, 1, 13, 2, 21, 1, 7]  # 66 entries


def entry(n: int) -> Prepared:
    at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC) + timedelta(seconds=n, microseconds=n * 7)
    subject = {"case": "OP-APPEND", "item": f"{n:032x}"} if n % 3 else {"case": "OP-APPEND"}
    details = {"n": n, "quote": 'it\'s "50%" \\ done', "é": ["ü", None, True, n * 1000]}
    return prepare("upload.created", subject, "user:pc@force.police.uk", details, at)


def test_appends_match_audits_tree_byte_for_byte(rt: Runtime) -> None:
    tree = TreeBuilder()
    expected_nodes: dict[tuple[int, int], bytes] = {}
    bodies: list[bytes] = []
    n = 0
    for batch in BATCHES:
        entries = [entry(n + k) for k in range(batch)]
        with rt.db.engine.begin() as connection:
            head = append(connection, entries)
        for k, prepared in enumerate(entries):
            body = Entry(seq=n + k, time=Entry.decode(prepared.body(0)).time, actor=prepared.actor,
                         action=prepared.action, subject=prepared.subject, details=prepared.details).encode()
            bodies.append(body)
            expected_nodes.update({(level, index): digest for level, index, digest in tree.append(merkle.leaf_hash(body))})
        n += batch
        assert head.size == tree.size == n
        assert head.frontier == [[level, index, digest.hex()] for (level, index), digest
                                 in zip(merkle.root_nodes(n), tree.border(), strict=True)]
    with rt.db.sessions() as session:
        rows = session.execute(select(CustodyEvent.seq, CustodyEvent.body, CustodyEvent.leaf_hash,
                                      CustodyEvent.item_id, CustodyEvent.case_ref).order_by(CustodyEvent.seq)).all()
        nodes = {(node.level, node.index): bytes(node.hash) for node in session.scalars(select(LedgerNode))}
        stored_head = session.get_one(LedgerHead, 1)
        assert (stored_head.size, stored_head.frontier) == (head.size, head.frontier)
    assert [bytes(row.body) for row in rows] == bodies
    assert [bytes(row.leaf_hash) for row in rows] == [merkle.leaf_hash(body) for body in bodies]
    assert [(row.item_id, row.case_ref) for row in rows] == [
        (f"{seq:032x}" if seq % 3 else None, "OP-APPEND") for seq in range(n)]
    assert nodes == expected_nodes
    assert tree.root() == merkle.root_from(n, nodes)


def test_a_head_elsewhere_than_its_holder_read_it_is_refused(rt: Runtime) -> None:
    with rt.db.engine.begin() as connection:
        stale = append(connection, [entry(0)])
    with rt.db.engine.begin() as connection:
        head = append(connection, [entry(1)])
    with pytest.raises(HeadMoved), rt.db.engine.begin() as connection:
        append(connection, [entry(2)], expected=stale)
    with rt.db.engine.begin() as connection:
        assert append(connection, [], expected=head) == head  # nothing was written
        assert append(connection, [entry(2)], expected=head).size == 3


def test_a_border_that_does_not_match_the_size_is_not_built_on(rt: Runtime) -> None:
    with rt.db.engine.begin() as connection:
        head = append(connection, [entry(k) for k in range(3)])  # border: (1, 0), (0, 2)
        connection.execute(update(LedgerHead).values(frontier=head.frontier[:1]))
    with pytest.raises((DBAPIError, VerificationError)) as refused, rt.db.engine.begin() as connection:
        append(connection, [entry(3)])  # leaf 3 completes (0, 2), which the border no longer holds
    if isinstance(refused.value, DBAPIError):  # PostgreSQL: custody_append's own refusal
        assert getattr(refused.value.orig, "sqlstate", None) == "EL002"
    with rt.db.sessions() as session:
        assert session.get_one(LedgerHead, 1).size == 3
        assert session.scalar(select(CustodyEvent.seq).order_by(CustodyEvent.seq.desc()).limit(1)) == 2
