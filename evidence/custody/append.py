"""Appending prepared entries to the stored log, under the ledger head's lock.

The one ``ledger_head`` row holds the log's size and right edge. An appender locks it
(``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite every write transaction already holds the
database's write lock, from ``BEGIN IMMEDIATE``), numbers its entries from the size, grows the
tree from the edge, and writes the entries, their new tree nodes and the new head. The lock
lasts until the transaction ends, so the next appender reads a head that includes these
entries, or, if this transaction rolled back, one that never did: the log cannot fork.

On PostgreSQL all of that is one call of the server function ``custody_append`` (migration
0009): the seq is spliced into bodies encoded beforehand (:mod:`evidence.custody.prepared`) and
the hashes are taken in the server. At commit (`commit_appending`) the call, the COMMIT and the
wait for the WAL flush go to the server in one message, so the head is held only while the
server works: no round trip to the client, nor the client's turn for a CPU, falls inside it.
On SQLite the appender is in process and the same steps are plain statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import Escaping, TransactionStatus
from sqlalchemy import Connection, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from audit import TreeBuilder, merkle
from evidence.custody.prepared import Prepared
from evidence.models import CustodyEvent, LedgerHead, LedgerNode

HEAD_ID = 1  # custody_append names it too
Node = tuple[int, int]


class HeadMoved(RuntimeError):
    """The head was not where it was read while locked: writing would fork the log, so nothing is."""


@dataclass(frozen=True, slots=True)
class Head:
    size: int
    frontier: list[list[Any]]  # the roots along the right edge, as [level, index, hex hash]

    def edge(self) -> dict[Node, bytes]:
        return {(level, index): bytes.fromhex(digest) for level, index, digest in self.frontier}


def append(connection: Connection, entries: Sequence[Prepared], expected: Head | None = None) -> Head:
    """Lock the head (until the caller's transaction ends) and append ``entries`` after it, or
    after ``expected``, which the caller already holds (HeadMoved if the head is elsewhere);
    the head after them. With no entries, only the lock: the head as it is."""
    if connection.dialect.name == "postgresql":
        return _call(connection, entries, expected)
    head = _lock_portable(connection) if expected is None else expected
    return _write_portable(connection, head, entries) if entries else head


# -- PostgreSQL: one call of custody_append ---------------------------------------------------

# Bound as arrays, one statement text whatever the batch (planned once per connection).
_CALL = text(
    "SELECT new_size, new_frontier FROM custody_append(:expected, false, CAST(:heads AS bytea[]),"
    " CAST(:tails AS bytea[]), CAST(:ats AS timestamptz[]), CAST(:actions AS text[]), CAST(:actors AS text[]),"
    " CAST(:subjects AS json[]), CAST(:details AS json[]), CAST(:items AS text[]), CAST(:cases AS text[]))"
)
_MOVED = "EL001"  # custody_append's SQLSTATE for a head missing or not where the caller holds it


def _columns(entries: Sequence[Prepared]) -> list[list[Any]]:
    return [
        [entry.head for entry in entries], [entry.tail for entry in entries], [entry.at for entry in entries],
        [entry.action for entry in entries], [entry.actor for entry in entries],
        [entry.subject_json for entry in entries], [entry.details_json for entry in entries],
        [entry.subject.get("item") for entry in entries], [entry.subject.get("case") for entry in entries],
    ]


def _call(connection: Connection, entries: Sequence[Prepared], expected: Head | None) -> Head:
    names = ("heads", "tails", "ats", "actions", "actors", "subjects", "details", "items", "cases")
    params: dict[str, Any] = dict(zip(names, _columns(entries), strict=True))
    params["expected"] = None if expected is None else expected.size
    try:
        row = connection.execute(_CALL, params).one()
    except DBAPIError as error:
        _raise_moved(error)
        raise
    return Head(row.new_size, row.new_frontier)


def _raise_moved(error: DBAPIError) -> None:
    if getattr(error.orig, "sqlstate", None) == _MOVED:
        raise HeadMoved(str(error.orig)) from error


# Early lock release (as in DeWitt et al. 1984 and Johnson et al., "Aether", VLDB 2010). Holding
# the head across a synchronous COMMIT serialises every append behind one WAL flush each. An
# append made with synchronous_commit off frees the head once its commit record is in the WAL
# buffers; the next appender's commit record can only come later in the WAL, and recovery after
# a crash replays a prefix of the WAL, so a surviving append never builds on a lost one: the log
# cannot fork, and each append stays all-or-nothing with its transaction. The committer then
# waits for the flush outside the lock, where concurrent committers share one flush (the WAL's
# group commit): the message's last statement is a transactional WAL message in a transaction
# of its own, committed at the server's own synchronous_commit level, so it is flushed, and sent
# to synchronous standbys, with everything before it, and the server answers only then. What
# this gives up: for the moment between COMMIT and the flush, a reader can see an append that a
# crash of the server would take away (with the change it records, and before its writer was
# told it had committed). No signed checkpoint can cover it: checkpoints commit synchronously,
# and their flush carries every append before them.
#
# Several statements in one message need the simple query protocol, which takes no bound
# parameters, so the values are written into the text, and the text is sent as it is
# (no_parameters: no % is reinterpreted). Strings are quoted by libpq (PQescapeLiteral, with
# this connection's encoding and settings); bytes go in as hex and times in ISO 8601, whose
# characters need no quoting. The driver's own array quoting cost 20 times as much.
_COMMIT_APPENDING = (
    "SELECT new_size FROM custody_append(NULL, true, {}, {}, {}, {}, {}, {}, {}, {}, {});"
    " COMMIT;"
    " SELECT pg_logical_emit_message(true, 'evidence.custody', '')"
)


def commit_appending(connection: Connection, entries: Sequence[Prepared]) -> None:
    """Append ``entries`` and commit the caller's transaction with them (PostgreSQL only), in
    one message; return once the commit is as durable as the server makes a commit. The
    caller's own COMMIT then finds no transaction left to commit."""
    driver: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]
    statement = _COMMIT_APPENDING.format(*_literals(driver, entries))
    opening = _nothing_sent_yet(driver)
    if opening:
        # A transaction that only recorded has sent nothing yet: its BEGIN goes in the message
        # too, instead of the round trip the driver spends on it before a first statement.
        statement = "BEGIN; " + statement
        driver.autocommit = True  # so that the driver sends no BEGIN of its own
    try:
        connection.exec_driver_sql(statement, execution_options={"no_parameters": True})
    except DBAPIError as error:
        _raise_moved(error)
        raise
    finally:
        if opening:
            _back_to_transactions(driver)


def _literals(driver: psycopg.Connection[Any], entries: Sequence[Prepared]) -> list[str]:
    """custody_append's array arguments for ``entries``, as SQL literals."""
    encoding = driver.info.encoding
    escape = Escaping(driver.pgconn).escape_literal

    def texts(values: list[str | None]) -> str:
        quoted = ("NULL" if value is None else escape(value.encode(encoding)).decode(encoding) for value in values)
        return f"ARRAY[{','.join(quoted)}]::text[]"

    def hexes(values: list[bytes]) -> str:
        return "ARRAY[" + ",".join(f"E'\\\\x{value.hex()}'" for value in values) + "]::bytea[]"

    heads, tails, ats, actions, actors, subjects, details, items, cases = _columns(entries)
    return [hexes(heads), hexes(tails), "ARRAY[" + ",".join(f"'{at.isoformat()}'" for at in ats) + "]::timestamptz[]",
            texts(actions), texts(actors), texts(subjects) + "::json[]", texts(details) + "::json[]",
            texts(items), texts(cases)]


def _nothing_sent_yet(driver: psycopg.Connection[Any]) -> bool:
    """The driver has not begun the transaction, and would begin it with a plain BEGIN."""
    return (driver.info.transaction_status == TransactionStatus.IDLE and not driver.autocommit
            and driver.isolation_level is None and driver.read_only is None and driver.deferrable is None)


def _back_to_transactions(driver: psycopg.Connection[Any]) -> None:
    if driver.closed or driver.broken:
        return  # SQLAlchemy discards it
    if driver.info.transaction_status != TransactionStatus.IDLE:  # the message failed inside the transaction
        driver.rollback()
    driver.autocommit = False


# -- SQLite: plain statements ---------------------------------------------------------------


def _lock_portable(connection: Connection) -> Head:
    # The transaction holds SQLite's write lock already (BEGIN IMMEDIATE); FOR UPDATE is
    # left out of SQLite's SQL by SQLAlchemy anyway.
    row = connection.execute(select(LedgerHead.size, LedgerHead.frontier).where(LedgerHead.id == HEAD_ID)).one_or_none()
    if row is None:
        raise HeadMoved("the ledger head is missing: the database has not been migrated")
    return Head(row.size, row.frontier)


def _write_portable(connection: Connection, before: Head, entries: Sequence[Prepared]) -> Head:
    tree = TreeBuilder.resume(before.size, before.edge())
    events: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    for seq, entry in enumerate(entries, start=before.size):
        body = entry.body(seq)
        leaf = merkle.leaf_hash(body)
        nodes += [{"level": level, "idx": index, "hash": digest} for level, index, digest in tree.append(leaf)]
        events.append({
            "seq": seq, "at": entry.at, "action": entry.action, "actor": entry.actor, "subject": entry.subject,
            "details": entry.details, "item_id": entry.subject.get("item"), "case_ref": entry.subject.get("case"),
            "body": body, "leaf_hash": leaf,
        })
    frontier = [[level, index, digest.hex()]
                for (level, index), digest in zip(merkle.root_nodes(tree.size), tree.border(), strict=True)]
    moved = connection.execute(
        update(LedgerHead).where(LedgerHead.id == HEAD_ID, LedgerHead.size == before.size)
        .values(size=tree.size, frontier=frontier)
    )
    if moved.rowcount != 1:
        raise HeadMoved(f"the ledger head was not at {before.size} under its lock; nothing was appended")
    connection.execute(insert(CustodyEvent), events)
    connection.execute(insert(LedgerNode), nodes)
    return Head(tree.size, frontier)
