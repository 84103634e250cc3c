"""The ledger's side: asking its witnesses to cosign, keeping the cosignatures, reading them back.

`ask_all` runs in the background (the server's upkeep, :mod:`evidence.http.app`): each
configured witness is asked, in its own thread, to cosign the latest signed checkpoint, with a
consistency proof from the size that witness last cosigned (kept per witness in
``witness_state``; a 409 answer says where the witness stands, and the request is made again
from there, once). A witness that is down or slow holds up nobody else and is asked again at
the next round; a checkpoint it missed is simply superseded by a later one.

Each cosignature received is verified against the configured key before it is kept (beside
the checkpoint, in ``checkpoint_cosignatures``) and recorded in the ledger as
``checkpoint.cosigned``, naming the witness and the checkpoint's size. Only checkpoints we
asked about, once per witness: a witness cannot grow the record.

Those entries would call for a new checkpoint, whose cosignatures would call for another, for
ever: `needs_checkpoint` says no when nothing but them is new, and the next checkpoint takes
them in with whatever happens next.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from audit import VerificationError
from audit.cosignature import cosignatures
from evidence import custody
from evidence.custody import ledger
from evidence.custody.actions import Action
from evidence.db import Database
from evidence.models import Checkpoint, CheckpointCosignature, CustodyEvent, WitnessState, utcnow
from evidence.witness.client import WitnessUnreachable, add_checkpoint
from evidence.witness.config import Witness

log = logging.getLogger("evidence.witness")
ACTOR = custody.system_actor("witnesses")


def needs_checkpoint(session: Session) -> bool:
    """Whether anything but ``checkpoint.cosigned`` entries was recorded since the latest checkpoint."""
    latest = ledger.latest_checkpoint(session)
    since = latest.size if latest is not None else 0
    return bool(session.scalar(select(exists().where(
        CustodyEvent.seq >= since, CustodyEvent.action != Action.CHECKPOINT_COSIGNED.value))))


def ask_all(db: Database, witnesses: list[Witness], timeout: float) -> None:
    """Ask every witness about the latest checkpoint that it has not cosigned yet."""
    if not witnesses:
        return
    with db.sessions() as session:
        latest = ledger.latest_checkpoint(session)
        if latest is None:
            return
        size = latest.size
        have = set(session.scalars(select(CheckpointCosignature.witness)
                                   .where(CheckpointCosignature.checkpoint_size == size)))
    wanted = [w for w in witnesses if w.key not in have]
    if not wanted:
        return
    with ThreadPoolExecutor(max_workers=len(wanted), thread_name_prefix="witness") as pool:
        for witness, done in zip(wanted, pool.map(lambda w: _ask_safely(db, w, size, timeout), wanted),
                                 strict=True):
            if done is not None:
                log.warning("witness %s did not cosign checkpoint %d: %s", witness.url, size, done)


def _ask_safely(db: Database, witness: Witness, size: int, timeout: float) -> str | None:
    try:
        problem = ask(db, witness, size, timeout)
    except Exception as error:  # one witness's trouble must not stop the others, nor the upkeep
        log.exception("asking witness %s failed", witness.url)
        problem = f"{type(error).__name__}: {error}"
    if problem is not None:
        with db.transaction() as session:
            state = _state(session, witness)
            state.asked_at, state.problem = utcnow(), problem[:500]
    return problem


def _state(session: Session, witness: Witness) -> WitnessState:
    state = session.get(WitnessState, witness.key)
    if state is None:
        state = WitnessState(witness=witness.key, size=0)
        session.add(state)
    return state


def ask(db: Database, witness: Witness, size: int, timeout: float) -> str | None:
    """Ask ``witness`` to cosign the checkpoint of ``size``; None once it has, or what went wrong."""
    with db.sessions() as session:
        note = session.get_one(Checkpoint, size).note
        state = session.get(WitnessState, witness.key)
        old = state.size if state is not None else 0
    for _ in range(2):  # once from where we think the witness is; once more from where it says it is
        if old > size:
            return f"the witness has cosigned size {old}, beyond this checkpoint ({size})"
        with db.sessions() as session:
            proof = ledger.consistency_proof(session, old, size) if 0 < old < size else []
        try:
            answer = add_checkpoint(witness.url, old, proof, note, timeout)
        except WitnessUnreachable as error:
            return f"unreachable: {error}"
        if answer.status == 409 and answer.size is not None and answer.size != old:
            old = answer.size
            with db.transaction() as session:
                _state(session, witness).size = old
            continue
        if answer.status != 200:
            return f"answered {answer.status}: {answer.body[:200].decode('utf-8', 'replace').strip()}"
        return _keep(db, witness, size, note, answer.body)
    return "the witness's size changed while asking"


def _keep(db: Database, witness: Witness, size: int, note: str, body: bytes) -> str | None:
    try:
        lines = body.decode("utf-8")
        found = cosignatures(note + lines, [witness.verifier]).get(witness.key)
    except (UnicodeDecodeError, VerificationError) as error:
        return f"its answer is not a valid cosignature: {error}"
    if found is None:
        return "its answer holds no cosignature by its configured key"
    with db.transaction() as session:
        session.add(CheckpointCosignature(checkpoint_size=size, witness=witness.key, line=found.line,
                                          cosigned_at=datetime.fromtimestamp(found.timestamp, UTC)))
        state = _state(session, witness)
        state.size, state.asked_at, state.problem = size, utcnow(), None
        custody.record(session, Action.CHECKPOINT_COSIGNED, {}, ACTOR, {
            "witness": found.name, "witness_key": witness.key, "size": size,
            "cosigned_at": datetime.fromtimestamp(found.timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        })
    return None
