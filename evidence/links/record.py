"""The ``link_access`` table: requests through links counted into windows, and each window
closed into the custody ledger once.

The first request of a (link, viewer, key, window) inserts its row; the caller appends the
ledger entry for it in the same transaction, so the row exists exactly when the entry does.
Later requests of the window only update the row. The insert is ``ON CONFLICT DO NOTHING``
against the unique key, so two API processes racing for the first request of a window
append one entry between them. Windows whose rows grew after their first entry are closed
by :func:`close_windows` (any process, any time later: a restart loses nothing), and rows
are deleted once reported and old, so the table stays bounded.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Result, Table, and_, bindparam, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from evidence import custody
from evidence.custody.actions import Action
from evidence.db import Database
from evidence.links.pending import Count, RowKey
from evidence.links.sharing import link_actor
from evidence.links.window import USE, Range, Tally, Window, bounded, coalesce, kind_of, summary_details
from evidence.models import Case, Item, Link, LinkAccess, new_id
from evidence.settings import Settings

_UNIQUE = ["link_id", "viewer", "key", "window_start"]
SUMMARY_GRACE_SECONDS = 10.0


def tally(session: Session, link_id: str, viewer: str, key: str, item_id: str | None, window: Window,
          now: datetime, agent: str, sent: Range | None = None) -> bool:
    """Count one request in the caller's transaction; true when it is the first of its
    window (the caller then records it). Byte ranges are kept for downloads of originals."""
    ranges = [list(sent)] if sent is not None and kind_of(key) == "download" else []
    length = sent[1] - sent[0] + 1 if sent is not None else 0
    values: dict[str, Any] = {
        "id": new_id(), "link_id": link_id, "viewer": viewer, "key": key, "item_id": item_id,
        "window_start": window.start, "window_end": window.end, "first_at": now, "last_at": now,
        "requests": 1, "bytes_sent": length, "ranges": ranges, "ranges_exact": True, "user_agent": agent,
        "reported_requests": 1, "summarised_at": None,
    }
    if _inserted(session, values):
        return True
    where = and_(LinkAccess.link_id == link_id, LinkAccess.viewer == viewer, LinkAccess.key == key,
                 LinkAccess.window_start == window.start)
    if not ranges:  # nothing to merge: one statement, no read
        session.execute(update(LinkAccess).where(where).values(
            requests=LinkAccess.requests + 1, bytes_sent=LinkAccess.bytes_sent + length, last_at=now))
        return False
    row = session.scalars(select(LinkAccess).where(where).with_for_update()).one()
    merged, exact = bounded(coalesce(row.ranges or [], sent))
    row.requests, row.bytes_sent, row.last_at = row.requests + 1, row.bytes_sent + length, max(row.last_at, now)
    row.ranges, row.ranges_exact = merged, row.ranges_exact and exact
    return False


def add_counts(session: Session, counts: dict[RowKey, Count]) -> int:
    """Write requests counted in memory (:mod:`evidence.links.pending`) into their rows, in
    the caller's transaction; how many rows were found. Counts without byte ranges (views,
    pages: nearly all of them) go in one executemany, a single round trip with psycopg's
    pipeline, however many reviewers are watching. A row already pruned (its window long
    over and reported) is not made again: its late counts are dropped."""
    plain = [{"l": link_id, "v": viewer, "k": key, "w": start, "n": count.requests, "b": count.bytes_sent,
              "t": count.last_at}
             for (link_id, viewer, key, start), count in counts.items() if not count.ranges]
    found = 0
    if plain:
        table = cast(Table, LinkAccess.__table__)  # a mapped class's table, typed as any FROM clause
        moment = table.c.last_at.type
        later = case((table.c.last_at < bindparam("t", type_=moment), bindparam("t", type_=moment)),
                     else_=table.c.last_at)
        statement = update(table).where(
            table.c.link_id == bindparam("l"), table.c.viewer == bindparam("v"), table.c.key == bindparam("k"),
            table.c.window_start == bindparam("w", type_=table.c.window_start.type),
        ).values(requests=table.c.requests + bindparam("n"), bytes_sent=table.c.bytes_sent + bindparam("b"),
                 last_at=later)
        found += affected(session.connection().execute(statement, plain))
    for (link_id, viewer, key, window_start), count in counts.items():
        if not count.ranges:
            continue
        where = and_(LinkAccess.link_id == link_id, LinkAccess.viewer == viewer, LinkAccess.key == key,
                     LinkAccess.window_start == window_start)
        row = session.scalars(select(LinkAccess).where(where).with_for_update()).one_or_none()
        if row is None:
            continue
        merged, exact = bounded(coalesce([*(row.ranges or []), *count.ranges]))
        row.requests, row.bytes_sent = row.requests + count.requests, row.bytes_sent + count.bytes_sent
        row.last_at = max(row.last_at, count.last_at)
        row.ranges, row.ranges_exact = merged, row.ranges_exact and count.ranges_exact and exact
        found += 1
    return found


def _inserted(session: Session, values: dict[str, Any]) -> bool:
    """Insert the row unless its (link, viewer, key, window) exists: whether it was inserted.
    (RETURNING tells on both databases; a row count through the ORM does not.)"""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(LinkAccess).values(**values).on_conflict_do_nothing(index_elements=_UNIQUE)
    return session.execute(statement.returning(LinkAccess.id)).scalar_one_or_none() is not None


# -- uses -----------------------------------------------------------------------------------


def has_use(session: Session, link_id: str, viewer: str, since: datetime) -> bool:
    """Whether this viewer started a counted use of the link after ``since``."""
    found = session.scalar(select(LinkAccess.id).where(
        LinkAccess.link_id == link_id, LinkAccess.viewer == viewer, LinkAccess.key == USE,
        LinkAccess.first_at > since).limit(1))
    return found is not None


def claim_use(session: Session, link_id: str, viewer: str, window: Window, now: datetime, agent: str) -> bool:
    """Mark a use for this viewer in this window; false when another request got there
    first (then that one spends the use)."""
    values: dict[str, Any] = {"id": new_id(), "link_id": link_id, "viewer": viewer, "key": USE, "item_id": None,
                              "window_start": window.start, "window_end": window.end, "first_at": now,
                              "last_at": now, "requests": 1, "bytes_sent": 0, "ranges": [], "ranges_exact": True,
                              "user_agent": agent, "reported_requests": 1, "summarised_at": None}
    return _inserted(session, values)


# -- closing windows ------------------------------------------------------------------------


def close_windows(db: Database, now: datetime, grace: timedelta, limit: int = 500) -> int:
    """Append one summary entry for each window that ended before ``now - grace`` and holds
    requests the ledger does not yet tell of; return how many. Rows are claimed under a row
    lock (skipped when another process holds it), so no window is summarised twice."""
    due = and_(LinkAccess.window_end <= now - grace, LinkAccess.requests > LinkAccess.reported_requests)
    if not _any(db, due):  # the usual case: a read, no row locks
        return 0
    with db.transaction() as session:
        rows = list(session.scalars(
            select(LinkAccess).where(due).order_by(LinkAccess.window_end).limit(limit).with_for_update(skip_locked=True)
        ))
        for row in rows:
            link = session.get_one(Link, row.link_id)
            case = session.get_one(Case, link.case_id)
            size = session.scalar(select(Item.size).where(Item.id == row.item_id)) if row.item_id else None
            details = summary_details(_tally(row), size)
            subject = {"case": case.ref, "link": link.id}
            if row.item_id is not None and kind_of(row.key) != "denied":
                subject["item"] = row.item_id
            else:  # about the link as a whole: it shows in the reports of every item it shares
                details["items"] = sorted(link.item_ids)
            custody.record(session, Action.LINK_ACCESSED, subject, link_actor(link), details)
            row.reported_requests, row.summarised_at = row.requests, now
        return len(rows)


def prune(db: Database, now: datetime, keep: timedelta) -> int:
    """Delete rows whose window ended more than ``keep`` ago and whose requests are all in
    the ledger: the table holds recent windows only, however long the server runs."""
    old = and_(LinkAccess.window_end < now - keep, LinkAccess.requests <= LinkAccess.reported_requests)
    if not _any(db, old):
        return 0
    with db.transaction() as session:
        return affected(session.execute(delete(LinkAccess).where(old)))


def affected(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE changed. Its result is a CursorResult, though
    ``Session.execute`` is typed as returning any Result."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"not the result of an UPDATE or DELETE: {type(result).__name__}")
    return int(result.rowcount or 0)


def _any(db: Database, condition: Any) -> bool:
    with db.sessions() as session:
        return session.scalar(select(LinkAccess.id).where(condition).limit(1)) is not None


def _tally(row: LinkAccess) -> Tally:
    return Tally(row.key, row.viewer, Window(row.window_start, row.window_end), row.first_at, row.last_at,
                 row.requests, row.bytes_sent, [list(r) for r in row.ranges or []], row.ranges_exact, row.user_agent)


def upkeep(db: Database, settings: Settings, now: datetime) -> int:
    """The background step: close the windows that have ended (a few seconds late, for
    requests still committing or counted in memory when their window ended) and forget old rows. Rows are kept for twice
    the longer of the record window and the view session, which a cookieless client's use
    is looked up over."""
    window = max(settings.link_record_window_seconds, 1.0)
    # The grace covers the API processes' counts held in memory, written every couple of
    # seconds (evidence.links.pending): a count written after its window was summarised is not
    # lost, but it takes a second summary.
    closed = close_windows(db, now, timedelta(seconds=min(SUMMARY_GRACE_SECONDS, window)))
    prune(db, now, 2 * max(timedelta(seconds=window), timedelta(minutes=settings.link_session_minutes)))
    return closed
