"""Full verification of the stored custody ledger (``evidence audit verify``).

Recomputes every leaf from the stored entry bodies, rebuilds the tree, compares it with
every stored node (and checks that no other node is stored) and with the head, and checks
every stored checkpoint: its signature (first), its root against the rebuilt tree, and its
consistency with the one before. It reports the first thing wrong and the sequence number
where it starts.

It runs in one pass with flat memory: entries stream from a server-side cursor (Core rows,
only the columns needed, each body decoded and hashed once), in aligned blocks of
``BLOCK`` leaves; each block's complete subtrees are hashed level by level and compared
with the stored ones by one range scan per level (the same statement text every time).
Only the right border of the tree above the blocks is kept between blocks.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from audit import (
    Entry,
    NoteVerifier,
    VerificationError,
    format_time,
    merkle,
    verify_consistency,
)
from evidence.custody import ledger
from evidence.models import Checkpoint, CustodyEvent, LedgerHead, LedgerNode

BLOCK_LEVEL = 16
BLOCK = 1 << BLOCK_LEVEL  # leaves hashed and compared together; blocks start at multiples of BLOCK
FETCH = 10_000  # rows per round trip from the server-side cursor
# On PostgreSQL, a log of at least PARALLEL_FROM entries is checked by two processes: a helper
# takes the first half (whole blocks) from the same snapshot (pg_export_snapshot).
HELPER_PROCESSES = 1
PARALLEL_FROM = 4 * BLOCK

_leaf_hash = merkle.leaf_hash
_node_hash = merkle.node_hash

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


def verify(session: Session, verifier: NoteVerifier, origin: str) -> Result:
    result = Result()
    try:
        _verify(session, verifier, origin, result)
    except _Bad as bad:
        result.problem, result.seq = bad.problem, bad.seq
    return result


def _snapshot(session: Session) -> None:
    """On PostgreSQL, read everything from one snapshot (REPEATABLE READ), so appends made
    while the check runs are not mistaken for tampering. Only possible before the session's
    transaction has begun; SQLite's transactions are serialisable anyway."""
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _fold(hashes: list[bytes]) -> bytes:
    value = hashes[-1]
    for left in reversed(hashes[:-1]):
        value = _node_hash(left, value)
    return value


class _Tree:
    """The tree over leaves [first, ...) rebuilt block by block.

    ``border`` holds the hashes of the complete subtrees along the right edge of everything
    before the current block (``root_nodes(start)``). When the leaves before ``first`` are
    checked by another process (``deferred``), that border is not known yet: the subtrees up
    to the block level are compared at once, and what needs the border (the nodes above the
    blocks, the roots at checkpoint sizes) waits for `resolve`.
    """

    def __init__(
        self, session: Session, wanted: set[int], roots: dict[int, bytes], first: int = 0, deferred: bool = False,
    ) -> None:
        self.session = session
        self.wanted = sorted(wanted)
        self.roots = roots
        self.start = first  # first leaf of the current block (a multiple of BLOCK)
        self.leaves: list[bytes] = []
        self.border: list[bytes] = []
        self.tail: list[list[bytes]] = []  # levels of the last, partial block, once flushed
        self.deferred = deferred
        self.pending: list[tuple[str, int, Any]] = []  # ("root", size, hashes) / ("block", start, root hash)

    def reset(self, first: int) -> None:
        """Back to no leaves, to read [first, ...) again."""
        self.start, self.leaves, self.border, self.tail, self.pending = first, [], [], [], []
        for size in self.wanted:
            self.roots.pop(size, None)

    @property
    def size(self) -> int:
        return self.start + len(self.leaves)

    def add(self, leaf: bytes) -> None:
        leaves = self.leaves
        leaves.append(leaf)
        if len(leaves) == BLOCK:
            self._block(final=False)

    def finish(self) -> None:
        """Compare what is left (a partial block); its levels stay for `root`."""
        self._block(final=True)

    def _block(self, final: bool) -> None:
        start, leaves = self.start, self.leaves
        levels = [leaves]
        current = leaves
        while len(current) >= 2:
            current = [_node_hash(current[i], current[i + 1]) for i in range(0, len(current) - 1, 2)]
            levels.append(current)
        end = start + len(leaves)
        for size in self.wanted:
            if start < size <= end:
                inside = [levels[level][index - (start >> level)] for level, index in merkle.range_nodes(start, size)]
                if self.deferred:
                    self.pending.append(("root", size, inside))
                else:
                    self.roots[size] = _fold(self.border + inside)
        full = len(leaves) == BLOCK and not final
        if full:
            if self.deferred:
                self.pending.append(("block", start, levels[BLOCK_LEVEL][0]))
            else:
                levels += self._join(start, levels[BLOCK_LEVEL][0])
        self._compare(start, levels)
        if full:
            self.start, self.leaves = end, []
        else:
            self.tail = levels

    def _join(self, start: int, block_root: bytes) -> list[list[bytes]]:
        """The block's root joins the border; the nodes above the blocks this completes."""
        made: list[list[bytes]] = []
        value, index = block_root, start >> BLOCK_LEVEL
        while index & 1:
            value = _node_hash(self.border.pop(), value)
            index >>= 1
            made.append([value])
        self.border.append(value)
        return made

    def resolve(self, border: list[bytes]) -> None:
        """The border before ``first``, now known: the roots and the nodes above the blocks."""
        self.border, self.deferred = list(border), False
        for kind, position, value in self.pending:
            if kind == "root":
                self.roots[position] = _fold(self.border + value)
            else:
                above = self._join(position, value)
                if above:
                    self._compare(position, [[] for _ in range(BLOCK_LEVEL + 1)] + above)
        self.pending.clear()

    def root(self) -> bytes:
        if self.size == 0:
            return merkle.EMPTY_ROOT
        inside = []
        if self.leaves:
            start = self.start
            inside = [self.tail[level][index - (start >> level)] for level, index in merkle.range_nodes(start, self.size)]
        return _fold(self.border + inside)

    def _compare(self, start: int, levels: list[list[bytes]]) -> None:
        """Every node in ``levels`` (level L starting at index start >> L) against the stored ones."""
        execute = self.session.execute
        first_bad: tuple[int, int] | None = None  # (first leaf, level)
        for level, made in enumerate(levels):
            if not made:
                continue
            lo = start >> level
            stored = execute(_LEVEL_RANGE, {"level": level, "lo": lo, "hi": lo + len(made)}).all()
            if len(stored) == len(made) and all(bytes(h) == m for (_, h), m in zip(stored, made, strict=True)):
                continue
            found = {idx: bytes(h) for idx, h in stored}
            for offset, digest in enumerate(made):
                if found.get(lo + offset) != digest:
                    candidate = ((lo + offset) << level, level)
                    if first_bad is None or candidate < first_bad:
                        first_bad = candidate
                    break
        if first_bad is not None:
            first, level = first_bad
            raise _Bad(first, f"the stored tree node over entries {first}..{first + (1 << level) - 1} is wrong or missing")

    def flush_before(self, seq: int) -> None:
        """Before reporting a bad entry at ``seq``: any bad node over the leaves before it comes first."""
        del self.leaves[seq - self.start :]
        if self.leaves:
            self.wanted = []
            self.finish()


def _verify(session: Session, verifier: NoteVerifier, origin: str, result: Result) -> None:
    _snapshot(session)
    checkpoints = list(session.scalars(select(Checkpoint).order_by(Checkpoint.size)))
    wanted = {c.size for c in checkpoints}
    helper = _Helper.start(session, wanted)
    first = helper.end if helper is not None else 0
    tree = _Tree(session, {size for size in wanted if size > first}, result.roots, first, deferred=helper is not None)
    problem: _Bad | None = None
    try:
        _scan_all(session, tree, first)
    except _Bad as bad:
        problem = bad
    if helper is not None:
        # The entries before `first` come first: a problem there is the one to report.
        border = helper.result(result.roots)
        if border is None:  # the helper could not run: check them here
            before = _Tree(session, {size for size in wanted if size <= first}, result.roots)
            _scan_all(session, before, 0, first)
            if before.size != first:
                raise _Bad(before.size, f"entry {before.size} is missing (the entries stop before {first})")
            border = before.border
        tree.resolve(border)
    if problem is not None:
        raise problem
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


def _server_checked_rows(session: Session, first: int, end: int) -> Generator[tuple[Any, ...], None, None]:
    """(seq, body, leaf hash, whether the columns agree with the body) from PostgreSQL."""
    rows = session.execute(_COLUMNS_AGREE.execution_options(yield_per=FETCH), {"first": first, "end": end})
    try:
        yield from rows  # type: ignore[misc]
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


def _scan_all(session: Session, tree: _Tree, first: int, end: int = _NO_END) -> None:
    """Every entry in [first, end) into ``tree``, checked."""
    if session.get_bind().dialect.name == "postgresql":
        # The server compares the columns with the body's fields (in one pass, on its own CPU).
        # A body it cannot parse (invalid UTF-8 or JSON, or a \u0000 that jsonb refuses) fails
        # the whole statement: then everything is read again and checked here, which names it.
        savepoint = session.begin_nested()
        try:
            _scan(session, tree, _server_checked_rows(session, first, end))
        except DBAPIError:
            savepoint.rollback()
        else:
            savepoint.commit()
            return
        tree.reset(first)
    _scan(session, tree, _client_checked_rows(session, first, end))


# -- a second process for the first half of a large log (PostgreSQL) ----------------------


class _Helper:
    """Checks entries [0, end) in another process, from the same snapshot, while this one
    checks the rest; hands back the border of the tree of ``end`` leaves and the roots at
    the checkpoint sizes up to ``end``, or the problem it found."""

    def __init__(self, process: Any, pipe: Any, end: int) -> None:
        self.process, self.pipe, self.end = process, pipe, end

    @classmethod
    def start(cls, session: Session, wanted: set[int]) -> _Helper | None:
        bind = session.get_bind()
        if bind.dialect.name != "postgresql" or HELPER_PROCESSES < 1:
            return None
        size = session.scalar(select(LedgerHead.size).where(LedgerHead.id == ledger.HEAD_ID)) or 0
        if size < PARALLEL_FROM:
            return None
        end = size // 2 // BLOCK * BLOCK
        try:
            snapshot = session.scalar(text("SELECT pg_export_snapshot()"))
            context = multiprocessing.get_context("spawn")
            ours, theirs = context.Pipe(duplex=False)
            process = context.Process(
                target=_helper_main, daemon=True,
                args=(bind.url.render_as_string(hide_password=False), snapshot, end, BLOCK_LEVEL,
                      sorted(size for size in wanted if size <= end), theirs),
            )
            process.start()
            theirs.close()
        except Exception:
            return None
        return cls(process, ours, end)

    def result(self, roots: dict[int, bytes]) -> list[bytes] | None:
        """The border (and ``roots`` filled in); _Bad for a problem; None if the helper failed."""
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
        roots.update(outcome[2])
        return outcome[1]


def _helper_main(url: str, snapshot: str, end: int, block_level: int, wanted: list[int], pipe: Any) -> None:
    global BLOCK_LEVEL, BLOCK
    BLOCK_LEVEL, BLOCK = block_level, 1 << block_level
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
            roots: dict[int, bytes] = {}
            tree = _Tree(session, set(wanted), roots)
            try:
                _scan_all(session, tree, 0, end)
                if tree.size != end:
                    raise _Bad(tree.size, f"entry {tree.size} is missing (the entries stop before {end})")
            except _Bad as bad:
                pipe.send(("bad", bad.seq, bad.problem))
                return
            pipe.send(("ok", tree.border, roots))
    except BaseException as error:
        pipe.send(("failed", repr(error)))
    finally:
        engine.dispose()
        pipe.close()


def _scan(session: Session, tree: _Tree, rows: Generator[tuple[Any, ...], None, None]) -> _Tree:
    with closing(rows):  # closes the server-side cursor whatever happens
        _scan_rows(session, tree, rows)
    tree.finish()
    return tree


def _scan_rows(session: Session, tree: _Tree, rows: Iterator[tuple[Any, ...]]) -> None:
    for seq, body, stored_leaf, agree, *columns in rows:
        expected = tree.size
        if seq != expected:
            tree.flush_before(expected)
            raise _Bad(expected, f"entry {expected} is missing (the next stored entry is {seq})")
        leaf = _leaf_hash(body)  # hashed once: checked against the column, then fed to the tree
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
            tree.flush_before(seq)
            raise _Bad(seq, problem)
        tree.add(leaf)


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
    expected = sum(size >> level for level in range(size.bit_length()))
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
