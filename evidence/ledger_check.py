"""Full verification of the stored custody ledger (``evidence audit verify``).

Recomputes every leaf from the stored entry bodies, rebuilds the tree, compares it with
every stored node and with the head, and checks every stored checkpoint: its signature
(first), its root against the rebuilt tree, and its consistency with the one before. It
reports the first thing wrong and the sequence number where it starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from audit import Entry, NoteVerifier, TreeBuilder, VerificationError, format_time, merkle, verify_consistency
from evidence import ledger
from evidence.models import Checkpoint, CustodyEvent, LedgerHead, LedgerNode

BATCH = 5000


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


class _Rebuilt:
    """The tree rebuilt leaf by leaf, and the complete nodes made since they were last
    compared with the stored ones."""

    def __init__(self) -> None:
        self.builder = TreeBuilder()
        self.made: dict[tuple[int, int], bytes] = {}

    @property
    def size(self) -> int:
        return self.builder.size

    def add(self, leaf: bytes) -> None:
        self.made.update({(level, index): digest for level, index, digest in self.builder.append(leaf)})

    def root(self) -> bytes:
        return self.builder.root()


def verify(session: Session, verifier: NoteVerifier, origin: str) -> Result:
    result = Result()
    try:
        _verify(session, verifier, origin, result)
    except _Bad as bad:
        result.problem, result.seq = bad.problem, bad.seq
    return result


def _verify(session: Session, verifier: NoteVerifier, origin: str, result: Result) -> None:
    checkpoints = list(session.scalars(select(Checkpoint).order_by(Checkpoint.size)))
    wanted = {c.size for c in checkpoints}
    tree = _Rebuilt()
    rows = session.scalars(select(CustodyEvent).order_by(CustodyEvent.seq).execution_options(yield_per=BATCH))
    try:
        for row in rows:
            _check_entry(row, tree.size)
            tree.add(merkle.leaf_hash(row.body))
            if tree.size in wanted:
                result.roots[tree.size] = tree.root()
            if len(tree.made) >= BATCH:
                _compare_nodes(session, tree)
            session.expunge(row)  # keep memory flat over millions of entries
    finally:
        rows.close()  # a problem found mid-way must not leave the server-side cursor open
    _compare_nodes(session, tree)
    result.entries = tree.size

    head = session.get(LedgerHead, ledger.HEAD_ID)
    if head is None:
        raise _Bad(None, "the ledger head is missing")
    if head.size != tree.size:
        raise _Bad(
            min(head.size, tree.size),
            f"the head records {head.size} entries but {tree.size} are stored"
            + (": entries were added behind the log's back" if tree.size > head.size else ""),
        )
    stored_edge = {(level, index): bytes.fromhex(digest) for level, index, digest in head.frontier}
    if tree.size and merkle.root_from(tree.size, stored_edge) != tree.root():
        raise _Bad(None, "the head's right edge does not match the entries")

    previous: Checkpoint | None = None
    for checkpoint in checkpoints:
        _check_checkpoint(session, checkpoint, previous, verifier, origin, result, tree.size)
        previous = checkpoint
        result.checkpoints += 1


def _check_entry(row: CustodyEvent, expected: int) -> None:
    if row.seq != expected:
        raise _Bad(expected, f"entry {expected} is missing (the next stored entry is {row.seq})")
    try:
        entry = Entry.decode(row.body)
    except VerificationError as error:
        raise _Bad(row.seq, f"entry {row.seq} is not a valid canonical entry: {error}") from None
    if entry.seq != row.seq:
        raise _Bad(row.seq, f"entry stored at {row.seq} says it is entry {entry.seq}: entries were moved")
    if merkle.leaf_hash(row.body) != row.leaf_hash:
        raise _Bad(row.seq, f"entry {row.seq} does not match its recorded leaf hash: it was edited")
    columns = {
        "time": format_time(row.at), "action": row.action, "actor": row.actor,
        "subject": row.subject, "details": row.details,
        "item": row.item_id, "case": row.case_ref,
    }
    recorded = {
        "time": entry.time, "action": entry.action, "actor": entry.actor,
        "subject": entry.subject, "details": entry.details,
        "item": entry.subject.get("item"), "case": entry.subject.get("case"),
    }
    for name, value in columns.items():
        if value != recorded[name]:
            raise _Bad(row.seq, f"entry {row.seq}: its {name} column differs from the signed entry: it was edited")


def _compare_nodes(session: Session, tree: _Rebuilt) -> None:
    if not tree.made:
        return
    keys = sorted(tree.made)
    stored: dict[tuple[int, int], bytes] = {}
    for start in range(0, len(keys), 500):
        batch = keys[start : start + 500]
        rows = session.execute(
            select(LedgerNode.level, LedgerNode.index, LedgerNode.hash).where(tuple_(LedgerNode.level, LedgerNode.index).in_(batch))
        )
        stored.update({(level, index): digest for level, index, digest in rows})
    for level, index in sorted(keys, key=lambda node: node[1] << node[0]):
        if stored.get((level, index)) != tree.made[(level, index)]:
            first = index << level
            raise _Bad(first, f"the stored tree node over entries {first}..{first + (1 << level) - 1} is wrong or missing")
    tree.made.clear()


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
