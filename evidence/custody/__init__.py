"""The one narrow door through which every custody event passes.

``record`` checks and encodes an entry at once (an entry the log cannot hold is refused here)
and appends it to the Merkle ledger when the caller's transaction commits, in that transaction,
so an event exists exactly when the change it describes does. Its ``seq`` is its place in the
order of commits; its time is when it was recorded.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from evidence.custody import ledger
from evidence.custody.actions import Action
from evidence.custody.actors import SERVICE as SERVICE  # whom maintenance on the server host names
from evidence.custody.actors import attributed
from evidence.custody.actors import system_actor as system_actor


def record(session: Session, action: Action, subject: dict[str, str], actor: str, details: dict[str, Any]) -> None:
    # Typed as Action; checked too, for a caller that passes a string anyway.
    if action not in frozenset(Action):
        raise ValueError(f"unknown custody action {action!r}")
    ledger.append(session, Action(action), subject, actor, portable(attributed(actor, details)))


def portable(value: Any) -> Any:
    """Canonical JSON (RFC 8785) entries hold no floats, whose text form differs between
    implementations: a float anywhere in the details is recorded as its decimal string."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {str(key): portable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(item) for item in value]
    return value
