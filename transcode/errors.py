"""Which failures are worth retrying, and which mean the input itself is bad."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError
from sqlalchemy.exc import InterfaceError, OperationalError

from evidence.vault import VaultUnavailable


class MediaFailure(Exception):
    """The original cannot be processed (corrupt, unsupported): the item fails with this
    message as its reason, and no retry can help."""


# Storage or database unreachable, a connection dropped: try again later.
TRANSIENT: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    VaultUnavailable,
    BotoCoreError,
    ConnectionError,
    TimeoutError,
)
