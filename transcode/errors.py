"""Which failures are worth retrying, which mean the input itself is bad, and how to say so."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import InterfaceError, OperationalError

from evidence.vault import VaultUnavailable
from transcode.fence import LeaseLost


class MediaFailure(Exception):
    """The original cannot be processed (corrupt, unsupported, over a bound): the item fails
    with this message as its reason, and no retry can help."""


# Storage or database unreachable, a connection dropped: try again later.
TRANSIENT: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    VaultUnavailable,
    BotoCoreError,
    ConnectionError,
    TimeoutError,
)
# Left for the task to handle: retried (transient), the task's own time limit, or the step
# taken over by another worker (this run stops and records nothing).
NOT_THE_STEPS: tuple[type[BaseException], ...] = (*TRANSIENT, SoftTimeLimitExceeded, LeaseLost)


def describe(error: BaseException) -> str:
    """A failure in plain words, without the internals (hosts, paths, SQL) its message may hold."""
    if isinstance(error, (OperationalError, InterfaceError)):
        return "the database could not be reached"
    if isinstance(error, (VaultUnavailable, BotoCoreError)):
        return "the storage could not be reached"
    if isinstance(error, (ConnectionError, TimeoutError)):
        return "a connection failed or timed out"
    if isinstance(error, SoftTimeLimitExceeded):
        return "it took longer than the task time limit"
    if isinstance(error, MediaFailure):
        return str(error)
    return f"an unexpected error ({type(error).__name__}); the worker's log has the details"
