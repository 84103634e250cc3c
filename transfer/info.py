"""The state of one upload, as the handler, the stores and the registry share it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ConcatKind = Literal["partial", "final"]
Concat = ConcatKind | None


@dataclass
class UploadInfo:
    id: str
    owner: str
    # Where the finished bytes live in the store (an object key chosen by the application,
    # never derived from anything the client sent).
    storage_key: str
    size: int | None  # None while the length is deferred
    offset: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    expires_at: datetime | None = None
    concat: Concat = None
    partials: list[str] = field(default_factory=list)
    # Store-private bookkeeping (an S3 multipart upload id, its parts...). Persisted by the
    # registry with the rest so that any process can take the next chunk.
    store_state: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    terminated: bool = False
    # A finished partial upload whose bytes a final upload has taken: it cannot be used
    # again, and its own stored copy is removed by the cleanup.
    consumed: bool = False

    @property
    def size_is_deferred(self) -> bool:
        return self.size is None

    @property
    def is_complete(self) -> bool:
        return self.size is not None and self.offset == self.size
