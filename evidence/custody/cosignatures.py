"""Witness cosignatures kept beside the checkpoints (``checkpoint_cosignatures``), read back.

A checkpoint's cosigned note is its signed note with each kept cosignature line appended: a
C2SP signed note carries several signatures, the log's then the witnesses'. They are asked
for and kept by :mod:`evidence.witness.cosign`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from audit import VerificationError
from audit.cosignature import Cosignature, CosignatureVerifier, check_quorum
from evidence.custody import ledger
from evidence.models import Checkpoint, CheckpointCosignature


def cosigned_note(session: Session, checkpoint: Checkpoint) -> str:
    """The checkpoint's note with every kept cosignature line appended."""
    lines = session.scalars(select(CheckpointCosignature.line)
                            .where(CheckpointCosignature.checkpoint_size == checkpoint.size)
                            .order_by(CheckpointCosignature.witness))
    return checkpoint.note + "".join(lines)


def latest_cosigned(session: Session, covering: int) -> Checkpoint | None:
    """The newest checkpoint of at least ``covering`` entries that any witness has cosigned."""
    return session.scalar(
        select(Checkpoint).where(Checkpoint.size >= covering,
                                 exists().where(CheckpointCosignature.checkpoint_size == Checkpoint.size))
        .order_by(Checkpoint.size.desc()).limit(1))


def check_latest(session: Session, keys: ledger.Keys, witnesses: Sequence[CosignatureVerifier],
                 quorum: int) -> tuple[int, dict[str, Cosignature]]:
    """The latest checkpoint's size and its valid cosignatures, at least ``quorum`` of them by
    ``witnesses``; VerificationError (saying how many were valid) otherwise."""
    checkpoint = ledger.latest_checkpoint(session)
    if checkpoint is None:
        raise VerificationError("the ledger has no signed checkpoint")
    note = cosigned_note(session, checkpoint)
    ledger.read_checkpoint(note, keys.verifier, keys.origin)  # the log's own signature first
    return checkpoint.size, check_quorum(note, witnesses, quorum)
