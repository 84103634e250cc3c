"""The officer's SHA-256, recorded after the upload began.

The browser hashes a file while it sends it (hashing first would double the time a large
file takes to get up), so its hash arrives during or after the upload rather than in the
creation request's metadata. It counts exactly as one sent at creation: recorded once
(write-once, on the record), and compared with the stored original's hash by whichever
comes second, this or the worker's hashing step. A mismatch quarantines the item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence import custody
from evidence.accounts.access import actor_of
from evidence.custody.actions import Action
from evidence.errors import Conflict, InvalidInput, NotFound
from evidence.models import Case, Item, ItemState, Upload, User

NO_CLIENT_HASH = "the upload carried no SHA-256 from the officer: integrity not cross-checked"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Recorded:
    state: str  # the item's state, or "uploading" while there is no item yet
    item: str | None
    matches: bool | None  # None until the stored original has been hashed


def record(session: Session, upload_id: str, user: User, sha256: str) -> Recorded:
    """Record ``user``'s hash of their upload ``upload_id``. The same hash again is a no-op;
    a different one is refused (Conflict): what the officer said stays said."""
    value = sha256.strip().lower()
    if not _SHA256_HEX.fullmatch(value):
        raise InvalidInput("sha256 must be 64 hexadecimal characters")
    upload = session.get(Upload, upload_id, with_for_update=True)
    # Somebody else's upload answers like one that does not exist.
    if upload is None or upload.owner_id != user.id or upload.terminated_at is not None or upload.concat is not None:
        raise NotFound(f"upload {upload_id[:64]} is not one of yours")
    item = session.scalar(select(Item).where(Item.upload_id == upload_id).with_for_update())
    recorded = item.client_sha256 if item is not None else (upload.upload_metadata or {}).get("sha256")
    if recorded:
        if recorded.lower() != value:
            raise Conflict(f"a different SHA-256 ({recorded.lower()}) was already recorded for this upload")
        return _outcome(item)
    case = session.get(Case, upload.case_id) if upload.case_id else None
    subject = {"case": case.ref} if case is not None else {}
    if item is None:
        # Still uploading: the item made at completion takes it from here.
        upload.upload_metadata = {**(upload.upload_metadata or {}), "sha256": value}
        custody.record(session, Action.CLIENT_HASH_RECORDED, {**subject, "upload": upload.id}, actor_of(user),
                       {"sha256": value})
        return Recorded("uploading", None, None)
    item.client_sha256 = value
    custody.record(session, Action.CLIENT_HASH_RECORDED, {**subject, "item": item.id}, actor_of(user),
                   {"sha256": value})
    stored = (item.hashes or {}).get("sha256")
    if stored is not None:
        _compare(session, item, stored, subject)
    return _outcome(item)


def _compare(session: Session, item: Item, stored: str, subject: dict[str, str]) -> None:
    """The worker hashed the original before the officer's hash came: compare now."""
    actor = custody.system_actor("transfer")
    item_subject = {**subject, "item": item.id}
    # The worker's "no officer's hash" warning is no longer true, whatever the outcome.
    item.warnings = [w for w in (item.warnings or []) if w != NO_CLIENT_HASH]
    if stored == item.client_sha256:
        custody.record(session, Action.INTEGRITY_VERIFIED, item_subject, actor, {"sha256": stored})
        return
    item.state = ItemState.QUARANTINED
    item.reason = f"its SHA-256 {stored} differs from the officer's {item.client_sha256}"
    custody.record(session, Action.INTEGRITY_MISMATCH, item_subject, actor,
                   {"stored_sha256": stored, "client_sha256": item.client_sha256, "size": item.size})


def _outcome(item: Item | None) -> Recorded:
    if item is None:
        return Recorded("uploading", None, None)
    stored = (item.hashes or {}).get("sha256")
    return Recorded(item.state, item.id, None if stored is None else stored == item.client_sha256)
