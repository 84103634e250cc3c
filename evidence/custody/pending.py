"""Custody entries queued in a session until its transaction commits.

``record()`` only prepares an entry and queues it here. When the transaction commits, after
the session has flushed its own changes and just before the database COMMIT, the queued
entries are appended in one batch under the ledger head's lock (:mod:`evidence.custody.append`).
So the head is locked from the end of the transaction's work to its commit, not from the first
``record()``, and an entry is still written in the transaction of the change it records: both
commit or neither does.

The append runs from the connection's ``commit`` event, which fires once, for the real COMMIT
only (a savepoint's release is not one). An entry belongs to the innermost transaction open
when it was recorded and is dropped if that transaction ends without committing; a released
savepoint hands its entries on to the transaction around it.

On PostgreSQL the append, the COMMIT and the wait for the WAL flush go in one message
(`append.commit_appending`): the head is freed at the COMMIT, before the flush, and the commit
returns only after the flush, so a caller never sees a commit that a crash could undo. A
transaction that signed a checkpoint, or that runs on a connection its caller commits, appends
with one call and commits synchronously the usual way: no signed checkpoint is ever visible
before it is durable, and a caller's COMMIT is the caller's to send.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session, SessionTransaction

from evidence.custody.append import Head, append, commit_appending
from evidence.custody.prepared import Prepared

_KEY = "evidence.custody.pending"


class OutsideSavepoint(RuntimeError):
    """A checkpoint was asked for inside a savepoint while entries recorded outside it were
    still queued: appending them there would let the savepoint's rollback take them away."""


@dataclass(eq=False)
class _Queue:
    entries: list[tuple[SessionTransaction, Prepared]] = field(default_factory=list)
    committed: set[SessionTransaction] = field(default_factory=set)  # ...whose end keeps their entries
    synchronous: bool = False  # the transaction signed a checkpoint: its commit waits for the flush
    # A session on a connection its caller commits does not own the COMMIT: only a session on
    # an engine may send it with the append.
    on_engine: bool = True


def _queue_of(session: Session) -> _Queue:
    found = session.info.get(_KEY)
    if found is None:
        found = session.info[_KEY] = _Queue()
    return found


def enqueue(session: Session, entry: Prepared) -> None:
    """Queue ``entry`` to be appended when the session's transaction commits."""
    queue = _queue_of(session)
    queue.on_engine = isinstance(session.get_bind(), Engine)
    connection = session.connection()  # begins the transaction if none has begun
    owner = session.get_nested_transaction() or session.get_transaction()
    if owner is None:  # pragma: no cover - connection() has just begun one
        raise RuntimeError("no transaction to record the custody entry in")
    queue.entries.append((owner, entry))
    connection.info[_KEY] = queue  # where the COMMIT finds it


def pending(session: Session) -> int:
    """How many entries are waiting for this session's transaction to commit."""
    queue = session.info.get(_KEY)
    return 0 if queue is None else len(queue.entries)


def write_pending(session: Session) -> Head:
    """Lock the head and append this transaction's queued entries now, for a checkpoint that
    must cover them; the head after them. The transaction will commit synchronously."""
    queue = _queue_of(session)
    savepoint = session.get_nested_transaction()
    if savepoint is not None and any(not _within(owner, savepoint) for owner, _ in queue.entries):
        raise OutsideSavepoint("sign the checkpoint outside the savepoint: entries recorded before it are queued")
    queue.synchronous = True
    head = append(session.connection(), [entry for _, entry in queue.entries])
    queue.entries.clear()
    return head


@event.listens_for(Engine, "commit")
def _append_at_commit(connection: Connection) -> None:
    queue: _Queue | None = connection.info.pop(_KEY, None)
    if queue is None or not queue.entries:
        return
    entries = [entry for _, entry in queue.entries]
    if connection.dialect.name == "postgresql" and queue.on_engine and not queue.synchronous:
        commit_appending(connection, entries)  # SQLAlchemy's COMMIT that follows has nothing left to do
    else:
        append(connection, entries)
    queue.entries.clear()


@event.listens_for(Engine, "rollback")
def _rolled_back(connection: Connection) -> None:
    if connection.invalidated:
        # The database connection is gone (a restart, a network cut): SQLAlchemy cleared its
        # info, queue included, and reading it would try to reconnect inside the rollback.
        return
    connection.info.pop(_KEY, None)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    queue = session.info.get(_KEY)
    if queue is None:
        return
    # Fired for a savepoint's release (the innermost, still open) and for the real commit.
    committed = session.get_nested_transaction() or session.get_transaction()
    if committed is not None:
        queue.committed.add(committed)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, ended: SessionTransaction) -> None:
    queue = session.info.get(_KEY)
    if queue is None:
        return
    if ended in queue.committed:
        queue.committed.discard(ended)
    elif queue.entries and (queue.on_engine or ended.parent is not None):
        queue.entries = [(owner, entry) for owner, entry in queue.entries if not _within(owner, ended)]
    if ended.parent is None and not queue.on_engine:
        # A session joined to its caller's transaction: that transaction, not the session's, is
        # what commits or rolls back, so what is queued stays with the connection until it does.
        session.info[_KEY] = _Queue()
        return
    if ended.parent is None:
        queue.entries.clear()  # nothing outlives the transaction; after a commit nothing is left anyway
        queue.committed.clear()
        queue.synchronous = False


def _within(owner: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while owner is not None:
        if owner is ended:
            return True
        owner = owner.parent
    return False
