"""What the application decides for the tus server: who is asking, what a new upload must
carry and where it goes, whether its owner may still touch it, and what happens once it
is finished. The handler calls these in a worker thread: they may block."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from transfer.info import UploadInfo


class Hooks(Protocol):
    def authenticate(self, headers: Mapping[str, str]) -> str:
        """Return the owner id for a request's headers (lower-case names: ``authorization``,
        or whatever else the application accepts), or raise Unauthorized."""

    def prepare(self, info: UploadInfo, partials: Sequence[UploadInfo]) -> None:
        """Check a new upload's metadata (and a final upload's ``partials``, already
        checked to be the owner's, finished and unused) and set its ``storage_key``;
        raise a TusError to refuse."""

    def completed(self, info: UploadInfo) -> None:
        """Called after the registry has recorded a finished upload (e.g. to queue work)."""


@runtime_checkable
class Authorizer(Protocol):
    """Optional hook: may this owner still act on this upload? Called on every request
    that names an existing upload (HEAD, PATCH, DELETE), after it is loaded, so that
    rights taken away since the upload was created take effect at the next request."""

    def authorize(self, owner: str, info: UploadInfo) -> None:
        """Return to allow; raise a TusError (Forbidden, NotFound, ...) to refuse."""
