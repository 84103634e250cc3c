"""Upload state in the database: the tus server's :class:`transfer.store.Registry` over the
``uploads`` table, and what a finished upload becomes (an item, in the same transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from evidence import custody
from evidence.accounts import access
from evidence.custody.actions import Action
from evidence.db import Database
from evidence.models import Case, Item, ItemState, Upload, User, utcnow
from evidence.vault import Vault, VaultUnavailable
from transfer import errors as tus
from transfer.info import Concat, UploadInfo


class UploadRegistry:
    """:class:`transfer.store.Registry` over the ``uploads`` table."""

    def __init__(self, db: Database, vault: Vault, sweeper: str | None = None) -> None:
        self.db = db
        self.vault = vault
        # Who removes what has expired: the server's own schedule, or the service account
        # when an operator runs `evidence uploads cleanup`.
        self.sweeper = sweeper or custody.system_actor("transfer")

    def load(self, upload_id: str) -> UploadInfo | None:
        with self.db.sessions() as session:
            row = session.get(Upload, upload_id)
            return None if row is None else _info(row)

    def load_many(self, upload_ids: Sequence[str]) -> dict[str, UploadInfo]:
        if not upload_ids:
            return {}
        with self.db.sessions() as session:
            rows = session.scalars(select(Upload).where(Upload.id.in_(list(upload_ids))))
            return {row.id: _info(row) for row in rows}

    def add(self, info: UploadInfo) -> None:
        with self.db.transaction() as session:
            if info.concat == "final":
                _consume(session, info)
            case = _case_of(session, info)
            session.add(
                Upload(
                    id=info.id,
                    owner_id=info.owner,
                    case_id=case.id if case else None,
                    size=info.size,
                    offset=info.offset,
                    upload_metadata=info.metadata,
                    storage_key=info.storage_key,
                    concat=info.concat,
                    partials=info.partials,
                    store_state=info.store_state,
                    created_at=info.created_at or utcnow(),
                    expires_at=info.expires_at,
                )
            )
            custody.record(
                session,
                Action.UPLOAD_CREATED,
                subject=_subject(info, case),
                actor=_actor(session, info.owner),
                details={
                    "filename": info.metadata.get("filename"),
                    "size": info.size,
                    "client_sha256": info.metadata.get("sha256"),
                    "concat": info.concat,
                    "partials": info.partials,
                },
            )

    def save(self, info: UploadInfo) -> None:
        with self.db.transaction() as session:
            row = session.get_one(Upload, info.id, with_for_update=True)
            row.offset = info.offset
            row.size = info.size
            row.store_state = dict(info.store_state)
            row.expires_at = info.expires_at

    def complete(self, info: UploadInfo) -> None:
        if info.concat != "partial":
            # Write-once before it is announced: retention on S3, read-only on disk.
            try:
                self.vault.seal(info.storage_key)
            except VaultUnavailable as error:
                # A tus error (503), not a 500: the offset is already recorded, and the
                # client's retry (HEAD or PATCH) finishes the upload once storage is back.
                raise tus.StorageUnavailable(f"could not seal the stored original: {error.message}") from error
        with self.db.transaction() as session:
            row = session.get_one(Upload, info.id, with_for_update=True)
            if row.finished_at is not None:
                return
            row.offset, row.size, row.store_state = info.offset, info.size, dict(info.store_state)
            row.expires_at = info.expires_at  # a finished partial upload waits this long to be used
            row.finished_at = utcnow()
            case = _case_of(session, info)
            actor = _actor(session, info.owner)
            subject = _subject(info, case)
            custody.record(session, Action.UPLOAD_COMPLETED, subject=subject, actor=actor, details={"size": info.size})
            if info.concat == "partial" or case is None:
                return
            item = Item(
                case_id=case.id,
                upload_id=info.id,
                officer_id=info.owner,
                filename=info.metadata["filename"],
                size=info.size or 0,
                storage_key=info.storage_key,
                state=ItemState.RECEIVED,
                # The officer's hash may have come after the upload began (the browser hashes
                # while it sends: evidence.uploads.client_hash), so the row's copy counts.
                client_sha256=((row.upload_metadata or {}).get("sha256") or info.metadata.get("sha256") or "").lower()
                or None,
                exhibit=info.metadata.get("exhibit"),
                description=info.metadata.get("description"),
                filetype=info.metadata.get("filetype"),
                upload_metadata=info.metadata,
            )
            session.add(item)
            session.flush()
            custody.record(
                session,
                Action.ORIGINAL_STORED,
                # The case and the item: the upload (a transfer's internal id) is named by
                # upload.created/completed, which a reviewer's copy of a report leaves out,
                # so this entry says whose upload it was.
                subject={"case": case.ref, "item": item.id},
                actor=custody.system_actor("transfer"),
                # What a court needs: the kind of storage and its protection. Keys, paths,
                # buckets and hosts are server internals and stay out of the record.
                details={
                    "received_from": actor,
                    "storage": self.vault.describe(),
                    "size": info.size,
                    "filename": item.filename,
                    "client_sha256": item.client_sha256,
                    "write_once": self.vault.write_once_description(),
                },
            )

    def remove(self, info: UploadInfo) -> None:
        with self.db.transaction() as session:
            row = session.get_one(Upload, info.id, with_for_update=True)
            if row.terminated_at is not None:
                return
            now = utcnow()
            row.terminated_at = now
            details: dict[str, object] = {"offset": info.offset, "size": info.size}
            if row.consumed_at is not None:
                # Its bytes live on in the final upload that took them.
                action, actor = Action.UPLOAD_TERMINATED, self.sweeper
                details["reason"] = "partial upload used in a final upload; its own copy removed"
            elif row.expires_at is not None and row.expires_at <= now:
                action, actor = Action.UPLOAD_EXPIRED, self.sweeper
                if row.finished_at is not None:
                    details["reason"] = "partial upload never used in a final upload"
            else:
                action, actor = Action.UPLOAD_TERMINATED, _actor(session, info.owner)
            custody.record(session, action, subject=_subject(info, _case_of(session, info)), actor=actor,
                           details=details)

    def expired(self, now: datetime) -> list[UploadInfo]:
        with self.db.sessions() as session:
            unfinished = Upload.finished_at.is_(None) & (Upload.expires_at <= now)
            spent_partial = (
                (Upload.concat == "partial")
                & Upload.finished_at.is_not(None)
                & (Upload.consumed_at.is_not(None) | (Upload.expires_at <= now))
            )
            rows = session.scalars(
                select(Upload).where(Upload.terminated_at.is_(None), or_(unfinished, spent_partial))
            )
            return [_info(row) for row in rows]

    def item_for(self, upload_id: str) -> str | None:
        with self.db.sessions() as session:
            return session.scalar(select(Item.id).where(Item.upload_id == upload_id))


def _consume(session: Session, final: UploadInfo) -> None:
    """Take a final upload's partial uploads, in the transaction that records it. One
    conditional update: of two final uploads naming the same partial upload at once, one
    takes it and the other is refused (its transaction, and so its record, rolls back)."""
    now = utcnow()
    # An UPDATE's result is a cursor result, which counts the rows it matched.
    taken = cast(CursorResult[Any], session.execute(
        update(Upload)
        .where(
            Upload.id.in_(final.partials),
            Upload.owner_id == final.owner,
            Upload.concat == "partial",
            Upload.finished_at.is_not(None),
            Upload.consumed_at.is_(None),
            Upload.terminated_at.is_(None),
            or_(Upload.expires_at.is_(None), Upload.expires_at > now),
        )
        .values(consumed_at=now)
        .execution_options(synchronize_session=False)
    ))
    if taken.rowcount != len(final.partials):
        raise tus.BadRequest(
            "a partial upload was used in another final upload, or expired, while this one was being"
            " assembled; nothing was recorded"
        )


def _info(row: Upload) -> UploadInfo:
    return UploadInfo(
        id=row.id,
        owner=row.owner_id,
        storage_key=row.storage_key,
        size=row.size,
        offset=row.offset,
        metadata=dict(row.upload_metadata),
        created_at=row.created_at,
        expires_at=row.expires_at,
        concat=_concat(row.concat),
        partials=list(row.partials),
        store_state=dict(row.store_state),
        finished=row.finished_at is not None,
        terminated=row.terminated_at is not None,
        consumed=row.consumed_at is not None,
    )


def _concat(value: str | None) -> Concat:
    if value is None:
        return None
    if value == "partial":
        return "partial"
    if value == "final":
        return "final"
    raise ValueError(f"an upload row holds an unknown concat kind {value!r}")


def _case_of(session: Session, info: UploadInfo) -> Case | None:
    ref = info.metadata.get("case")
    return None if ref is None else session.scalar(select(Case).where(Case.ref == ref))


def _subject(info: UploadInfo, case: Case | None) -> dict[str, str]:
    subject = {"upload": info.id}
    if case is not None:
        subject["case"] = case.ref
    return subject


def _actor(session: Session, user_id: str) -> str:
    user = session.get(User, user_id)
    return access.actor_of(user) if user else f"user-id:{user_id}"
