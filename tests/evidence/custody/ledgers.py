"""Filling a test ledger: entries recorded as the application records them, and signed checkpoints."""

from __future__ import annotations

from evidence import custody
from evidence.custody import ledger
from evidence.custody.actions import Action
from evidence.models import Checkpoint
from evidence.runtime import Runtime

ACTOR = "system:test@host"


def record(rt: Runtime, count: int, start: int = 0) -> None:
    with rt.db.transaction() as session:
        for n in range(start, start + count):
            custody.record(
                session, Action.UPLOAD_CREATED, {"case": "OP-LEDGER", "upload": f"{n:032x}"},
                "user:pc@force.police.uk", {"filename": f"CCTV {n}.mp4", "size": n * 1000},
            )


def checkpoint(rt: Runtime) -> Checkpoint:
    with rt.db.transaction() as session:
        ledger.sign_checkpoint(session, rt.ledger_keys, ACTOR)
    with rt.db.sessions() as session:
        found = ledger.latest_checkpoint(session)
        assert found is not None
        return found
