"""Full verification of the stored custody ledger (``evidence audit verify``): the SQL that feeds
the pure rebuild in :mod:`audit.rebuild`.

Recomputes every leaf from the stored entry bodies, rebuilds the tree, compares it with
every stored node (and checks that no other node is stored) and with the head, and checks
every stored checkpoint: its signature (first), its root against the rebuilt tree, and its
consistency with the one before. It reports the first thing wrong and the sequence number
where it starts.

It runs in one pass with flat memory: entries stream from a server-side cursor (Core rows,
only the columns needed, each body decoded and hashed once) into the rebuild, which compares
each block's nodes by one range scan per level (the same statement text every time). On
PostgreSQL a long log is split between two processes reading one snapshot.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from audit import (
    Entry,
    NoteVerifier,
    Rebuild,
    VerificationError,
    WrongNode,
    format_time,
    merkle,
    verify_consistency,
)
from audit.merkle import leaf_hash
from audit.rebuild import StoredRange
from evidence.custody import ledger
from evidence.models import Checkpoint, CustodyEvent, LedgerHead, LedgerNode

BLOCK_LEVEL = 16  # leaves hashed and compared together: 65,536
FETCH = 10_000  # rows per round trip from the server-side cursor
# On PostgreSQL, a log of at least PARALLEL_BLOCKS blocks is checked by two processes: a helper
# takes the first half (whole blocks) from the same snapshot (pg_export_snapshot).
HELPER_PROCESSES = 1
PARALLEL_BLOCKS = 4

# One statement text for every block and level: prepared once, planned as an index range scan.
_LEVEL_RANGE = text(
    "SELECT idx, hash FROM ledger_nodes WHERE level = :level AND idx >= :lo AND idx < :hi ORDER BY idx"
)
_EXTRA_AT_LEVEL = text(
    "SELECT idx FROM ledger_nodes WHERE level = :level AND (idx < 0 OR idx >= :end) ORDER BY idx LIMIT 1"
)
_OUTSIDE_LEVELS = text("SELECT level, idx FROM ledger_nodes WHERE level < 0 OR level >= :levels LIMIT 1")


@dataclass
class Result:
    entries: int = 0
    checkpoints: int = 0
    problem: str | None = None
    seq: int | None = None  # the first bad sequence number, where one can be named
    roots: dict[int, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Bad(Exception):
    def __init__(self, seq: int | None, problem: str) -> None:
        super().__init__(problem)
        self.seq, self.problem = seq, problem

    @classmethod
    def of(cls, wrong: WrongNode) -> _Bad:
        return cls(wrong.first, str(wrong))


# Told now and then how far the check has got: (entries checked, entries in all), roughly.
Progress = Callable[[int, int], None]


def verify(session: Session, verifier: NoteVerifier, origin: str, progress: Progress | None = None) -> Result:
    result = Result()
    try:
        _verify(session, verifier, origin, result, progress)
    except _Bad as bad:
        result.problem, result.seq = bad.problem, bad.seq
    return result


def _snapshot(session: Session) -> None:
    """On PostgreSQL, read everything from one snapshot (REPEATABLE READ), so appends made
    while the check runs are not mistaken for tampering. Only possible before the session's
    transaction has begun; SQLite's transactions are serialisable anyway."""
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _stored_range(session: Session) -> StoredRange:
    """The stored nodes at a level in [lo, hi), by one index range scan."""
    execute = session.execute

    def stored(level: int, lo: int, hi: int) -> Sequence[tuple[int, bytes]]:
        return execute(_LEVEL_RANGE, {"level": level, "lo": lo, "hi": hi}).all()

    return stored


def _rebuild(session: Session, sizes: set[int], first: int = 0, block_level: int | None = None) -> Rebuild:
    return Rebuild(_stored_range(session), sizes, first=first,
                   block_level=BLOCK_LEVEL if block_level is None else block_level)


def _verify(session: Session, verifier: NoteVerifier, origin: str, result: Result,
            progress: Progress | None = None) -> None:
    _snapshot(session)
    checkpoints = list(session.scalars(select(Checkpoint).order_by(Checkpoint.size)))
    wanted = {c.size for c in checkpoints}
    helper = _Helper.start(session, wanted)
    first = helper.end if helper is not None else 0
    tree = _rebuild(session, wanted, first)
    problem: _Bad | None = None
    try:
        _scan_all(session, tree, report=_reporter(session, first, progress))
    except _Bad as bad:
        problem = bad
    if helper is not None:
        # The entries before `first` come first: a problem there is the one to report.
        border = helper.result(result.roots)
        if border is None:  # the helper could not run: check them here
            before = _rebuild(session, {size for size in wanted if size <= first})
            _scan_all(session, before, first)
            if before.size != first:
                raise _Bad(before.size, f"entry {before.size} is missing (the entries stop before {first})")
            result.roots.update(before.roots)
            border = before.border()
        try:
            tree.resolve(border)
        except WrongNode as wrong:
            raise _Bad.of(wrong) from None
    if problem is not None:
        raise problem
    result.roots.update(tree.roots)
    size = result.entries = tree.size
    tree_root = tree.root()

    head = session.get(LedgerHead, ledger.HEAD_ID)
    if head is None:
        raise _Bad(None, "the ledger head is missing")
    if head.size != size:
        raise _Bad(
            min(head.size, size),
            f"the head records {head.size} entries but {size} are stored"
            + (": entries were added behind the log's back" if size > head.size else ""),
        )
    stored_edge = {(level, index): bytes.fromhex(digest) for level, index, digest in head.frontier}
    if size and merkle.root_from(size, stored_edge) != tree_root:
        raise _Bad(None, "the head's right edge does not match the entries")

    previous: Checkpoint | None = None
    for checkpoint in checkpoints:
        _check_checkpoint(session, checkpoint, previous, verifier, origin, result, size)
        previous = checkpoint
        result.checkpoints += 1
    # After the checkpoints: a truncated log leaves nodes behind, and "truncated" says more.
    _check_no_extra_nodes(session, size)


_COLUMNS_AGREE = text(
    """
    SELECT e.seq, e.body, e.leaf_hash,
           COALESCE(to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') = j.b ->> 'time'
                    AND e.action = j.b ->> 'action' AND e.actor = j.b ->> 'actor'
                    AND e.subject::jsonb = j.b -> 'subject' AND e.details::jsonb = j.b -> 'details'
                    AND e.item_id IS NOT DISTINCT FROM j.b -> 'subject' ->> 'item'
                    AND e.case_ref IS NOT DISTINCT FROM j.b -> 'subject' ->> 'case', false)
    FROM custody_events e CROSS JOIN LATERAL (SELECT convert_from(e.body, 'UTF8')::jsonb AS b OFFSET 0) j
    WHERE e.seq >= :first AND e.seq < :end
    ORDER BY e.seq
    """
)
_NO_END = 2**62
_REPORT_EVERY = 0x1FFF  # progress every 8,192 entries


def _server_checked_rows(session: Session, first: int, end: int) -> Generator[tuple[Any, ...], None, None]:
    """(seq, body, leaf hash, whether the columns agree with the body) from PostgreSQL."""
    rows = session.execute(_COLUMNS_AGREE.execution_options(yield_per=FETCH), {"first": first, "end": end})
    try:
        yield from rows
    finally:
        rows.close()  # a problem found mid-way must not leave the server-side cursor open


_EVENT_COLUMNS = CustodyEvent.__table__.c
_ENTRY_ROWS = select(
    _EVENT_COLUMNS.seq, _EVENT_COLUMNS.body, _EVENT_COLUMNS.leaf_hash, _EVENT_COLUMNS.at, _EVENT_COLUMNS.action,
    _EVENT_COLUMNS.actor, _EVENT_COLUMNS.subject, _EVENT_COLUMNS.details, _EVENT_COLUMNS.item_id,
    _EVENT_COLUMNS.case_ref,
).order_by(_EVENT_COLUMNS.seq)
_ENTRY_RANGE = _ENTRY_ROWS.where(_EVENT_COLUMNS.seq >= bindparam("first"), _EVENT_COLUMNS.seq < bindparam("end"))


def _client_checked_rows(session: Session, first: int, end: int) -> Generator[tuple[Any, ...], None, None]:
    """(seq, body, leaf hash, None, columns...): the columns compared here."""
    rows = session.execute(_ENTRY_RANGE.execution_options(yield_per=FETCH), {"first": first, "end": end})
    try:
        for seq, body, leaf, *columns in rows:
            yield seq, body, leaf, None, *columns
    finally:
        rows.close()


def _reporter(session: Session, first: int, progress: Progress | None) -> Callable[[int], None] | None:
    """A report of this process's scan, from ``first``, as a share of the whole log: the
    helper checks the entries before ``first`` at the same time, at about the same pace."""
    if progress is None:
        return None
    head = session.get(LedgerHead, ledger.HEAD_ID)
    total = head.size if head is not None else 0
    share = max(total - first, 1)
    return lambda seq: progress(min(total, round(total * (seq - first) / share)), total)


def _scan_all(session: Session, tree: Rebuild, end: int = _NO_END, report: Callable[[int], None] | None = None) -> None:
    """Every entry from ``tree.first`` up to ``end`` into ``tree``, checked."""
    first = tree.first
    if session.get_bind().dialect.name == "postgresql":
        # The server compares the columns with the body's fields (in one pass, on its own CPU).
        # A body it cannot parse (invalid UTF-8 or JSON, or a \u0000 that jsonb refuses) fails
        # the whole statement: then everything is read again and checked here, which names it.
        savepoint = session.begin_nested()
        try:
            _scan(session, tree, _server_checked_rows(session, first, end), report)
        except DBAPIError:
            savepoint.rollback()
        else:
            savepoint.commit()
            return
        tree.reset()
    _scan(session, tree, _client_checked_rows(session, first, end), report)


# -- a second process for the first half of a large log (PostgreSQL) ----------------------


class _Helper:
    """Checks entries [0, end) in another process, from the same snapshot, while this one
    checks the rest; hands back the border of the tree of ``end`` leaves and the roots at
    the checkpoint sizes up to ``end``, or the problem it found."""

    def __init__(self, process: BaseProcess, pipe: Connection, end: int) -> None:
        self.process, self.pipe, self.end = process, pipe, end

    @classmethod
    def start(cls, session: Session, wanted: set[int]) -> _Helper | None:
        bind = session.get_bind()
        if bind.dialect.name != "postgresql" or HELPER_PROCESSES < 1:
            return None
        size = session.scalar(select(LedgerHead.size).where(LedgerHead.id == ledger.HEAD_ID)) or 0
        if size < PARALLEL_BLOCKS << BLOCK_LEVEL:
            return None
        end = size // 2 >> BLOCK_LEVEL << BLOCK_LEVEL  # whole blocks
        try:
            snapshot = session.scalar(text("SELECT pg_export_snapshot()"))
            context = multiprocessing.get_context("spawn")
            ours, theirs = context.Pipe(duplex=False)
            process = context.Process(
                target=_helper_main, daemon=True,
                args=(bind.engine.url.render_as_string(hide_password=False), snapshot, end, BLOCK_LEVEL,
                      sorted(size for size in wanted if size <= end), theirs),
            )
            process.start()
            theirs.close()
        except Exception:
            return None
        return cls(process, ours, end)

    def result(self, roots: dict[int, bytes]) -> list[bytes] | None:
        """The border (and ``roots`` filled in); _Bad for a problem; None if the helper failed."""
        outcome: tuple[Any, ...]
        try:
            outcome = self.pipe.recv()
        except EOFError:
            outcome = ("failed",)
        finally:
            self.pipe.close()
            self.process.join(30)
            if self.process.is_alive():
                self.process.kill()
        if outcome[0] == "bad":
            raise _Bad(outcome[1], outcome[2])
        if outcome[0] != "ok":
            return None
        border: list[bytes] = outcome[1]
        roots.update(outcome[2])
        return border


def _helper_main(url: str, snapshot: str, end: int, block_level: int, wanted: list[int], pipe: Connection) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    engine = create_engine(url, poolclass=NullPool)
    try:
        with Session(engine) as session:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            if not all(c.isalnum() or c == "-" for c in snapshot):
                raise ValueError(f"unexpected snapshot id {snapshot!r}")
            session.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            tree = _rebuild(session, set(wanted), block_level=block_level)
            try:
                _scan_all(session, tree, end)
                if tree.size != end:
                    raise _Bad(tree.size, f"entry {tree.size} is missing (the entries stop before {end})")
            except _Bad as bad:
                pipe.send(("bad", bad.seq, bad.problem))
                return
            pipe.send(("ok", tree.border(), tree.roots))
    except BaseException as error:
        pipe.send(("failed", repr(error)))
    finally:
        engine.dispose()
        pipe.close()


def _scan(session: Session, tree: Rebuild, rows: Generator[tuple[Any, ...], None, None],
          report: Callable[[int], None] | None = None) -> None:
    try:
        with closing(rows):  # closes the server-side cursor whatever happens
            _scan_rows(session, tree, rows, report)
        tree.finish()
    except WrongNode as wrong:
        raise _Bad.of(wrong) from None


def _scan_rows(session: Session, tree: Rebuild, rows: Iterator[tuple[Any, ...]],
               report: Callable[[int], None] | None = None) -> None:
    add = tree.add
    for seq, body, stored_leaf, agree, *columns in rows:
        if report is not None and not seq & _REPORT_EVERY:
            report(seq)
        expected = tree.size
        if seq != expected:
            tree.finish()  # a bad node over the entries before comes first
            raise _Bad(expected, f"entry {expected} is missing (the next stored entry is {seq})")
        if body.__class__ is not bytes:  # SQLite holds what it is given: text where bytes belong
            tree.finish()
            raise _Bad(seq, f"entry {seq} is stored as {type(body).__name__}, not as its signed bytes: it was edited")
        leaf = leaf_hash(body)  # hashed once: checked against the column, then fed to the tree
        try:
            entry = Entry.decode(body)
        except VerificationError as error:
            problem: str | None = f"entry {seq} is not a valid canonical entry: {error}"
        else:
            if entry.seq != seq:
                problem = f"entry stored at {seq} says it is entry {entry.seq}: entries were moved"
            elif leaf != stored_leaf:
                problem = f"entry {seq} does not match its recorded leaf hash: it was edited"
            elif agree is True:
                problem = None
            else:
                if agree is False:  # the server says they differ: which one, read here
                    columns = list(session.execute(_ENTRY_ROWS.where(_EVENT_COLUMNS.seq == seq)).one()[3:])
                problem = _column_problem(seq, entry, *columns)
                if problem is None and agree is False:
                    # Equal as Python values, not to the server's stricter jsonb comparison (true vs 1...).
                    problem = f"entry {seq}: its columns differ from the signed entry: it was edited"
        if problem is not None:
            tree.finish()  # a bad node over the entries before comes first
            raise _Bad(seq, problem)
        add(leaf)


def _column_problem(
    seq: int, entry: Entry, at: Any, action: str, actor: str, subject: Any, details: Any, item: str | None,
    case: str | None,
) -> str | None:
    """Which searchable column differs from the signed entry, if any. The JSON columns come
    decoded by the driver and are compared with the body's fields as values."""
    recorded = entry.subject
    if (action, actor, subject, details, item, case) == (
        entry.action, entry.actor, recorded, entry.details, recorded.get("item"), recorded.get("case"),
    ) and format_time(at) == entry.time:
        return None
    columns = {
        "time": (format_time(at), entry.time),
        "action": (action, entry.action), "actor": (actor, entry.actor),
        "subject": (subject, recorded), "details": (details, entry.details),
        "item": (item, recorded.get("item")), "case": (case, recorded.get("case")),
    }
    for name, (column, signed) in columns.items():
        if column != signed:
            return f"entry {seq}: its {name} column differs from the signed entry: it was edited"
    return None  # pragma: no cover - one of them differed


def _check_no_extra_nodes(session: Session, size: int) -> None:
    """Every expected node was found equal; the table must hold no others (a count, then,
    only if it is off, where the extra ones are)."""
    expected = merkle.complete_node_count(size)
    stored = session.scalar(select(func.count()).select_from(LedgerNode))
    if stored == expected:
        return
    levels = size.bit_length()
    outside = session.execute(_OUTSIDE_LEVELS, {"levels": levels}).first()
    if outside is not None:
        raise _Bad(None, f"ledger_nodes holds a node at level {outside[0]}, which a log of {size} entries does not have")
    firsts = []
    for level in range(levels):
        idx = session.scalar(_EXTRA_AT_LEVEL, {"level": level, "end": size >> level})
        if idx is not None:
            firsts.append((max(idx, 0) << level, level, idx))
    if firsts:
        first, level, idx = min(firsts)
        raise _Bad(
            min(first, size),
            f"ledger_nodes holds node ({level}, {idx}), which a log of {size} entries does not have: "
            "the tree was extended behind the log's back",
        )
    raise _Bad(None, f"ledger_nodes holds {stored} nodes where a log of {size} entries has {expected}")


def _check_checkpoint(
    session: Session, checkpoint: Checkpoint, previous: Checkpoint | None, verifier: NoteVerifier,
    origin: str, result: Result, size: int,
) -> None:
    name = f"checkpoint at size {checkpoint.size}"
    try:
        signed = ledger.read_checkpoint(checkpoint.note, verifier, origin)
    except VerificationError as error:
        raise _Bad(None, f"{name}: not signed by this ledger's key ({error})") from None
    if signed.size != checkpoint.size or signed.root != checkpoint.root:
        raise _Bad(None, f"{name}: the stored size or root differs from what was signed")
    if checkpoint.size > size:
        raise _Bad(size, f"the log was truncated: {name} was signed but only {size} entries remain")
    if result.roots.get(checkpoint.size) != signed.root:
        raise _Bad(None, f"{name}: the entries before it no longer hash to the signed root")
    if previous is not None:
        try:
            proof = ledger.consistency_proof(session, previous.size, checkpoint.size)
            verify_consistency(previous.size, checkpoint.size, proof, previous.root, signed.root)
        except VerificationError as error:
            raise _Bad(None, f"{name} is not consistent with the one at size {previous.size}: {error}") from None
