"""The custody ledger in the database: appends, proofs and signed checkpoints.

The Merkle mathematics lives in :mod:`audit` (pure); this module only stores and fetches.
Appends happen inside the caller's transaction, after locking the one ``ledger_head`` row,
so every process appends in turn and an entry exists exactly when the change it records
does. Each append stores the new complete-subtree hashes, so any root or proof needs
O(log n) stored nodes, fetched in one query.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from audit import Checkpoint as SignedCheckpoint
from audit import (
    Entry,
    NoteSigner,
    NoteVerifier,
    TreeBuilder,
    VerificationError,
    format_time,
    merkle,
    open_note,
    verify_consistency,
)
from evidence.custody.actions import Action
from evidence.models import Checkpoint, CustodyEvent, LedgerHead, LedgerNode, utcnow

HEAD_ID = 1
Node = tuple[int, int]


def append(
    session: Session, action: Action, subject: Mapping[str, str], actor: str, details: Mapping[str, Any],
    at: datetime | None = None,
) -> CustodyEvent:
    """Append one entry in the caller's transaction (and lock the head until it commits)."""
    head = session.get_one(LedgerHead, HEAD_ID, with_for_update=True)
    at = at or utcnow()
    seq = head.size
    name = action.value  # the plain string, in the entry and in the column
    entry = Entry(seq=seq, time=format_time(at), actor=actor, action=name, subject=dict(subject), details=dict(details))
    body = entry.encode()
    leaf = merkle.leaf_hash(body)
    tree = TreeBuilder.resume(seq, _frontier(head))
    created = tree.append(leaf)
    session.add_all(LedgerNode(level=level, index=index, hash=digest) for level, index, digest in created)
    known = {**_frontier(head), **{(level, index): digest for level, index, digest in created}}
    head.size = seq + 1
    head.frontier = [[level, index, known[(level, index)].hex()] for level, index in merkle.root_nodes(seq + 1)]
    event = CustodyEvent(
        seq=seq, at=at, action=name, actor=actor, subject=dict(subject), details=dict(details),
        item_id=subject.get("item"), case_ref=subject.get("case"), body=body, leaf_hash=leaf,
    )
    session.add(event)
    return event


def _frontier(head: LedgerHead) -> dict[Node, bytes]:
    return {(level, index): bytes.fromhex(digest) for level, index, digest in head.frontier}


# -- reading the tree -------------------------------------------------------------------


def size(session: Session) -> int:
    return session.get_one(LedgerHead, HEAD_ID).size


# The head's size and the wanted nodes in one round trip, with one statement text whatever
# the nodes (so the server prepares and plans it once): the wanted (level, index) pairs go in
# as arrays (PostgreSQL) or one JSON document (SQLite), joined with the primary key. Constant
# text, values bound.
_NODES_POSTGRES = text(
    "SELECT -1 AS level, size AS idx, NULL AS hash FROM ledger_head WHERE id = :head"
    " UNION ALL SELECT n.level, n.idx, n.hash"
    " FROM unnest(CAST(:levels AS integer[]), CAST(:indexes AS bigint[])) AS w(level, idx)"
    " JOIN ledger_nodes n ON n.level = w.level AND n.idx = w.idx"
)
_NODES_SQLITE = text(
    "SELECT -1 AS level, size AS idx, NULL AS hash FROM ledger_head WHERE id = :head"
    " UNION ALL SELECT n.level, n.idx, n.hash FROM json_each(:wanted) AS w"
    " JOIN ledger_nodes n ON n.level = json_extract(w.value, '$[0]') AND n.idx = json_extract(w.value, '$[1]')"
)


def _nodes(session: Session, tree_size: int, wanted: Iterable[Node]) -> dict[Node, bytes]:
    """The stored nodes ``wanted``, after checking that the log has at least ``tree_size``
    entries (ValueError otherwise)."""
    wanted = list(dict.fromkeys(wanted))
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(_NODES_POSTGRES, {
            "head": HEAD_ID, "levels": [level for level, _ in wanted], "indexes": [index for _, index in wanted],
        })
    else:
        rows = session.execute(_NODES_SQLITE, {"head": HEAD_ID, "wanted": json.dumps(wanted)})
    current: int | None = None
    found: dict[Node, bytes] = {}
    for level, index, digest in rows:
        if level == -1:
            current = index
        else:
            found[(level, index)] = bytes(digest)
    if current is None:
        raise VerificationError("the ledger head is missing")
    if not 0 <= tree_size <= current:
        raise ValueError(f"the ledger has {current} entries, not {tree_size}")
    missing = [node for node in wanted if node not in found]
    if missing:
        raise VerificationError(f"the stored tree is missing node(s) {missing[:3]}: the ledger has been altered")
    return found


def root(session: Session, tree_size: int) -> bytes:
    _check_argument(tree_size)
    return merkle.root_from(tree_size, _nodes(session, tree_size, merkle.root_nodes(tree_size)))


def inclusion_proof(session: Session, index: int, tree_size: int) -> list[bytes]:
    _check_argument(tree_size)
    if not 0 <= index < tree_size:
        raise ValueError(f"entry {index} is not in a tree of {tree_size}")
    nodes = _nodes(session, tree_size, merkle.inclusion_nodes(index, tree_size))
    return merkle.inclusion_proof_from(index, tree_size, nodes)


def consistency_proof(session: Session, size1: int, size2: int) -> list[bytes]:
    _check_argument(size2)
    if not 0 <= size1 <= size2:
        raise ValueError(f"no consistency proof from {size1} to {size2}")
    nodes = _nodes(session, size2, merkle.consistency_nodes(size1, size2))
    return merkle.consistency_proof_from(size1, size2, nodes)


def _check_argument(tree_size: int) -> None:
    if type(tree_size) is not int or tree_size < 0:
        raise ValueError(f"tree size must be a non-negative int, not {tree_size!r}")


# -- checkpoints --------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    origin: str
    signer: NoteSigner

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier.from_vkey(self.signer.verifier_key())


def latest_checkpoint(session: Session) -> Checkpoint | None:
    return session.scalar(select(Checkpoint).order_by(Checkpoint.size.desc()).limit(1))


def sign_checkpoint(session: Session, keys: Keys, actor: str, force: bool = False) -> Checkpoint | None:
    """Sign a checkpoint of the whole log, unless the latest already covers it.

    The ``checkpoint.signed`` entry is appended first, so the checkpoint covers its own
    record. Before signing, the new tree is proven consistent with the previous signed
    checkpoint: the log never signs two checkpoints that disagree.
    """
    head = session.get_one(LedgerHead, HEAD_ID, with_for_update=True)
    previous = latest_checkpoint(session)
    if previous is not None and previous.size == head.size and not force:
        return None
    details: dict[str, Any] = {"origin": keys.origin, "size": head.size + 1}
    if previous is not None:
        details["previous_size"] = previous.size
    append(session, Action.CHECKPOINT_SIGNED, {}, actor, details)
    session.flush()
    tree_size = head.size
    tree_root = root(session, tree_size)
    if previous is not None:
        proof = consistency_proof(session, previous.size, tree_size)
        verify_consistency(previous.size, tree_size, proof, previous.root, tree_root)
    note = keys.signer.sign(SignedCheckpoint(keys.origin, tree_size, tree_root).text())
    checkpoint = Checkpoint(size=tree_size, root=tree_root, note=note)
    session.add(checkpoint)
    return checkpoint


def read_checkpoint(note: str, verifier: NoteVerifier, origin: str | None = None) -> SignedCheckpoint:
    """A checkpoint's contents, trusted only after its signature verifies."""
    checkpoint = SignedCheckpoint.parse(open_note(note, verifier))
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(f"checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint
