"""The custody ledger in the database: appends, proofs and signed checkpoints.

The Merkle mathematics lives in :mod:`audit` (pure); this module only stores and fetches.
An entry is checked and encoded when it is recorded and appended when its transaction
commits, in one batch with the transaction's other entries, under the lock of the one
``ledger_head`` row (:mod:`evidence.custody.pending`, :mod:`evidence.custody.append`): every
process appends in turn, an entry exists exactly when the change it records does, and its
``seq`` is its place in the commit order. Each append stores the new complete-subtree hashes,
so any root or proof needs O(log n) stored nodes, fetched in one query.
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
    NoteSigner,
    NoteVerifier,
    VerificationError,
    merkle,
    open_note,
    verify_consistency,
)
from evidence.custody.actions import Action
from evidence.custody.actors import attributed
from evidence.custody.append import HEAD_ID as HEAD_ID  # the head's row, named here for readers
from evidence.custody.append import append as append_after
from evidence.custody.pending import enqueue, write_pending
from evidence.custody.prepared import prepare
from evidence.models import Checkpoint, LedgerHead, utcnow

Node = tuple[int, int]


def append(
    session: Session, action: Action, subject: Mapping[str, str], actor: str, details: Mapping[str, Any],
    at: datetime | None = None,
) -> None:
    """Record one entry in the caller's transaction: checked and encoded now (ValueError or
    TypeError for one the log cannot hold), appended when the transaction commits."""
    entry = prepare(action.value, dict(subject), actor, dict(details), at or utcnow())
    enqueue(session, entry)


# -- reading the tree -------------------------------------------------------------------


_SIZE = select(LedgerHead.size).where(LedgerHead.id == HEAD_ID)


def size(session: Session) -> int:
    """The number of entries in the log (read afresh: appends bypass the ORM's identity map)."""
    found = session.scalar(_SIZE)
    if found is None:
        raise VerificationError("the ledger head is missing")
    return found


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
    # The transaction's own entries first, and the head locked; the transaction now commits
    # synchronously: a signed checkpoint is never visible before it is durable.
    head = write_pending(session)
    previous = latest_checkpoint(session)
    if previous is not None and previous.size == head.size and not force:
        return None
    details: dict[str, Any] = {"origin": keys.origin, "size": head.size + 1}
    if previous is not None:
        details["previous_size"] = previous.size
    signed = prepare(Action.CHECKPOINT_SIGNED.value, {}, actor, attributed(actor, details), utcnow())
    tree_size = append_after(session.connection(), [signed], expected=head).size
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
