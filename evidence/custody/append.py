"""Appending prepared entries to the stored log, under the ledger head's lock.

The one ``ledger_head`` row holds the log's size and right edge. An appender locks it
(``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite every write transaction already holds the
database's write lock, from ``BEGIN IMMEDIATE``), numbers its entries from the size, grows the
tree from the edge, and writes the entries, their new tree nodes and the new head. The lock
lasts until the transaction ends, so the next appender reads a head that includes these
entries, or, if this transaction rolled back, one that never did: the log cannot fork.

Under the lock there are two round trips: the head read, then one statement that inserts every
entry and node as arrays and moves the head (PostgreSQL). Between them only the seq is spliced
into bodies encoded beforehand and a few hashes are taken (see :mod:`evidence.custody.prepared`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text, update

from audit import TreeBuilder, merkle
from evidence.custody.prepared import Prepared
from evidence.models import CustodyEvent, LedgerHead, LedgerNode

HEAD_ID = 1
Node = tuple[int, int]


class HeadMoved(RuntimeError):
    """The head was not where it was read while locked: writing would fork the log, so nothing is."""


@dataclass(frozen=True, slots=True)
class Head:
    size: int
    frontier: list[list[Any]]  # the roots along the right edge, as [level, index, hex hash]

    def edge(self) -> dict[Node, bytes]:
        return {(level, index): bytes.fromhex(digest) for level, index, digest in self.frontier}


_LOCK = select(LedgerHead.size, LedgerHead.frontier).where(LedgerHead.id == HEAD_ID).with_for_update()
# The same, and this transaction's COMMIT will not wait for the WAL flush (see release_early).
# PostgreSQL only; its driver hands the json column back decoded, as the select above does.
_LOCK_RELEASING_EARLY = text(
    "SELECT size, frontier, set_config('synchronous_commit', 'off', true)"
    " FROM ledger_head WHERE id = :head FOR UPDATE"
).bindparams(head=HEAD_ID)


def lock_head(connection: Connection, release_early: bool = False) -> Head:
    """The head, locked until the caller's transaction ends (locking it again in the same
    transaction returns at once, with this transaction's own appends counted).

    With ``release_early`` (PostgreSQL only), the transaction's COMMIT returns, and so frees
    the head, as soon as its commit record is in the WAL, before the WAL is flushed to disk:
    the caller must then `wait_for_flush` before it reports the transaction done."""
    statement = _LOCK_RELEASING_EARLY if release_early else _LOCK
    row = connection.execute(statement).one_or_none()
    if row is None:
        raise HeadMoved("the ledger head is missing: the database has not been migrated")
    return Head(row.size, row.frontier)


# Early lock release (as in DeWitt et al. 1984 and Johnson et al., "Aether", VLDB 2010). Holding
# the head across a synchronous COMMIT serialises every append behind one WAL flush each. An
# append made with synchronous_commit off frees the head once its commit record is in the WAL
# buffers; the next appender's commit record can only come later in the WAL, and recovery after
# a crash replays a prefix of the WAL, so a surviving append never builds on a lost one: the log
# cannot fork, and each append stays all-or-nothing with its transaction. The committer then
# waits for the flush outside the lock, where concurrent committers share one flush (the WAL's
# group commit). A transactional WAL message, committed at the server's own synchronous_commit
# level, is flushed, and sent to synchronous standbys, with everything before it. What this
# gives up: for the moment between COMMIT and the flush, a reader can see an append that a crash
# of the server would take away (with the change it records, and before its writer was told it
# had committed). No signed checkpoint can cover it: checkpoints commit synchronously, and their
# flush carries every append before them.
_WAIT_FOR_FLUSH = text("SELECT pg_logical_emit_message(true, 'evidence.custody', '')")


def wait_for_flush(engine: Engine) -> None:
    """Return once every commit made so far is as durable as the server makes a commit."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(_WAIT_FOR_FLUSH)  # a transaction of its own, flushed at its commit


@dataclass(frozen=True, slots=True)
class _Row:
    seq: int
    entry: Prepared
    body: bytes
    leaf: bytes


def write(connection: Connection, head: Head, entries: Sequence[Prepared]) -> Head:
    """Append ``entries`` after ``head``, which the caller holds locked; the new head."""
    if not entries:
        return head
    tree = TreeBuilder.resume(head.size, head.edge())
    rows: list[_Row] = []
    nodes: list[tuple[int, int, bytes]] = []
    for seq, entry in enumerate(entries, start=head.size):
        body = entry.body(seq)
        leaf = merkle.leaf_hash(body)
        nodes += tree.append(leaf)
        rows.append(_Row(seq, entry, body, leaf))
    frontier = [[level, index, digest.hex()]
                for (level, index), digest in zip(merkle.root_nodes(tree.size), tree.border(), strict=True)]
    moved = Head(tree.size, frontier)
    if connection.dialect.name == "postgresql":
        _write_postgres(connection, head, moved, rows, nodes)
    else:
        _write_portable(connection, head, moved, rows, nodes)
    return moved


# One statement text whatever the batch (planned once per connection): the rows go in as
# parallel arrays. The head moves only from the size that was read; were it anywhere else, no
# row would be updated and nothing is kept (the caller's transaction fails).
_WRITE_POSTGRES = text(
    "WITH events AS ("
    " INSERT INTO custody_events (seq, at, action, actor, subject, details, item_id, case_ref, body, leaf_hash)"
    " SELECT * FROM unnest(CAST(:seqs AS bigint[]), CAST(:ats AS timestamptz[]), CAST(:actions AS text[]),"
    " CAST(:actors AS text[]), CAST(:subjects AS json[]), CAST(:details AS json[]), CAST(:items AS text[]),"
    " CAST(:cases AS text[]), CAST(:bodies AS bytea[]), CAST(:leaves AS bytea[]))"
    "), nodes AS ("
    " INSERT INTO ledger_nodes (level, idx, hash)"
    " SELECT * FROM unnest(CAST(:levels AS integer[]), CAST(:indexes AS bigint[]), CAST(:hashes AS bytea[]))"
    ") UPDATE ledger_head SET size = :size, frontier = CAST(:frontier AS json)"
    " WHERE id = :head AND size = :before RETURNING size"
)


def _write_postgres(connection: Connection, before: Head, after: Head, rows: list[_Row],
                    nodes: list[tuple[int, int, bytes]]) -> None:
    moved = connection.execute(_WRITE_POSTGRES, {
        "seqs": [row.seq for row in rows],
        "ats": [row.entry.at for row in rows],
        "actions": [row.entry.action for row in rows],
        "actors": [row.entry.actor for row in rows],
        "subjects": [row.entry.subject_json for row in rows],
        "details": [row.entry.details_json for row in rows],
        "items": [row.entry.subject.get("item") for row in rows],
        "cases": [row.entry.subject.get("case") for row in rows],
        "bodies": [row.body for row in rows],
        "leaves": [row.leaf for row in rows],
        "levels": [level for level, _, _ in nodes],
        "indexes": [index for _, index, _ in nodes],
        "hashes": [digest for _, _, digest in nodes],
        "size": after.size, "frontier": json.dumps(after.frontier), "head": HEAD_ID, "before": before.size,
    }).scalar_one_or_none()
    if moved != after.size:
        raise HeadMoved(f"the ledger head was not at {before.size} under its lock; nothing was appended")


def _write_portable(connection: Connection, before: Head, after: Head, rows: list[_Row],
                    nodes: list[tuple[int, int, bytes]]) -> None:
    """SQLite (in process, so statements cost no round trips): plain statements, the head first."""
    moved = connection.execute(
        update(LedgerHead).where(LedgerHead.id == HEAD_ID, LedgerHead.size == before.size)
        .values(size=after.size, frontier=after.frontier)
    )
    if moved.rowcount != 1:
        raise HeadMoved(f"the ledger head was not at {before.size} under its lock; nothing was appended")
    connection.execute(insert(CustodyEvent), [{
        "seq": row.seq, "at": row.entry.at, "action": row.entry.action, "actor": row.entry.actor,
        "subject": row.entry.subject, "details": row.entry.details, "item_id": row.entry.subject.get("item"),
        "case_ref": row.entry.subject.get("case"), "body": row.body, "leaf_hash": row.leaf,
    } for row in rows])
    connection.execute(insert(LedgerNode), [{"level": level, "idx": index, "hash": digest}
                                         for level, index, digest in nodes])
