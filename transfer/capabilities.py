"""What a store can do beyond the contract, found once when the server is made.

The handler calls the optional capabilities through these typed fields (``None`` when the
store lacks one) and advertises in ``Tus-Extension`` exactly the extensions they allow.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from transfer.info import UploadInfo
from transfer.store import Concater, LengthDeferrer, Store, Terminater

Terminate = Callable[[UploadInfo], Awaitable[None]]
Concatenate = Callable[[UploadInfo, Sequence[UploadInfo]], Awaitable[None]]
DeclareLength = Callable[[UploadInfo, int], None]

# What every store can do: the handler does creation-with-upload and checksums itself.
BASE_EXTENSIONS = ("creation", "creation-with-upload", "checksum")


@dataclass(frozen=True)
class Capabilities:
    terminate: Terminate | None = None
    concatenate: Concatenate | None = None
    declare_length: DeclareLength | None = None

    @classmethod
    def of(cls, store: Store) -> Capabilities:
        return cls(
            terminate=store.terminate if isinstance(store, Terminater) else None,
            concatenate=store.concatenate if isinstance(store, Concater) else None,
            declare_length=store.declare_length if isinstance(store, LengthDeferrer) else None,
        )

    def extensions(self, expires: bool) -> list[str]:
        """The ``Tus-Extension`` list, in the order tusd gives it; ``expiration`` when
        unfinished uploads expire (a setting of the server, not of the store)."""
        found = list(BASE_EXTENSIONS)
        if expires:
            found.append("expiration")
        if self.declare_length is not None:
            found.append("creation-defer-length")
        if self.terminate is not None:
            found.append("termination")
        if self.concatenate is not None:
            found.append("concatenation")
        return found
