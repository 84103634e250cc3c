"""The tus server's view of the application: upload state in the database, who may
upload, what a new upload must carry, and what happens when one completes."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence import access, cases, custody
from evidence.db import Database
from evidence.errors import EvidenceError
from evidence.models import Case, Item, Upload, User, utcnow
from evidence.vault import Vault, VaultUnavailable
from transfer import errors as tus
from transfer.info import UploadInfo

log = logging.getLogger(__name__)
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
UPLOAD_ROLES = ("officer", "admin")
_TUS_ERRORS = {401: tus.Unauthorized, 403: tus.Forbidden, 503: tus.StorageUnavailable}


class UploadRegistry:
    """:class:`transfer.store.Registry` over the ``uploads`` table."""

    def __init__(self, db: Database, vault: Vault) -> None:
        self.db = db
        self.vault = vault

    def load(self, upload_id: str) -> UploadInfo | None:
        with self.db.sessions() as session:
            row = session.get(Upload, upload_id)
            return None if row is None else _info(row)

    def add(self, info: UploadInfo) -> None:
        with self.db.transaction() as session:
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
                "upload.created",
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
            row.finished_at = utcnow()
            case = _case_of(session, info)
            actor = _actor(session, info.owner)
            subject = _subject(info, case)
            custody.record(session, "upload.completed", subject=subject, actor=actor, details={"size": info.size})
            if info.concat == "partial" or case is None:
                return
            item = Item(
                case_id=case.id,
                upload_id=info.id,
                officer_id=info.owner,
                filename=info.metadata["filename"],
                size=info.size or 0,
                storage_key=info.storage_key,
                state="received",
                client_sha256=(info.metadata.get("sha256") or "").lower() or None,
                exhibit=info.metadata.get("exhibit"),
                description=info.metadata.get("description"),
                filetype=info.metadata.get("filetype"),
                upload_metadata=info.metadata,
            )
            session.add(item)
            session.flush()
            custody.record(
                session,
                "original.stored",
                subject={**subject, "item": item.id},
                actor=custody.system_actor("transfer"),
                details={
                    "storage_key": info.storage_key,
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
            row.terminated_at = utcnow()
            expired = row.expires_at is not None and row.expires_at <= utcnow()
            custody.record(
                session,
                "upload.expired" if expired else "upload.terminated",
                subject=_subject(info, _case_of(session, info)),
                actor=custody.system_actor("transfer") if expired else _actor(session, info.owner),
                details={"offset": info.offset, "size": info.size},
            )

    def expired(self, now: datetime) -> list[UploadInfo]:
        with self.db.sessions() as session:
            rows = session.scalars(
                select(Upload).where(
                    Upload.finished_at.is_(None), Upload.terminated_at.is_(None), Upload.expires_at <= now
                )
            )
            return [_info(row) for row in rows]

    def item_for(self, upload_id: str) -> str | None:
        with self.db.sessions() as session:
            return session.scalar(select(Item.id).where(Item.upload_id == upload_id))


class UploadHooks:
    """:class:`transfer.handler.Hooks`: authentication, metadata rules, completion."""

    def __init__(self, db: Database, auth: access.Authenticator, registry: UploadRegistry) -> None:
        self.db = db
        self.auth = auth
        self.registry = registry
        self.on_item_received: list[Callable[[str], None]] = []

    def authenticate(self, authorization: str | None) -> str:
        try:
            with self.db.sessions() as session:
                user = self.auth.authenticate(session, authorization)
                access.require_role(user, *UPLOAD_ROLES)
                return user.id
        except EvidenceError as error:
            raise _TUS_ERRORS.get(error.status, tus.Unauthorized)(error.message) from None

    def prepare(self, info: UploadInfo) -> None:
        # Keys are ours alone: nothing the client sent becomes part of a path.
        if info.concat == "partial":
            info.storage_key = f"uploads/partials/{info.id}"
            return
        metadata = info.metadata
        for required in ("filename", "case"):
            if not metadata.get(required, "").strip():
                raise tus.BadRequest(f"Upload-Metadata must include {required!r}")
        sha256 = metadata.get("sha256")
        if sha256 is not None and not SHA256_HEX.fullmatch(sha256):
            raise tus.BadRequest("Upload-Metadata 'sha256' must be 64 hexadecimal characters")
        with self.db.sessions() as session:
            case = session.scalar(select(Case).where(Case.ref == metadata["case"]))
            if case is None:
                raise tus.BadRequest(f"case {metadata['case'][:64]!r} does not exist; create it first")
            # Officers upload only into the cases they are assigned to.
            owner = session.get(User, info.owner)
            if owner is None or not cases.may_see(session, owner, case):
                raise tus.Forbidden(f"you are not assigned to case {case.ref!r}; an admin can assign you")
        info.storage_key = f"originals/{info.id}"

    def completed(self, info: UploadInfo) -> None:
        if info.concat == "partial":
            return
        item_id = self.registry.item_for(info.id)
        if item_id is None:
            return
        for callback in self.on_item_received:
            try:
                callback(item_id)
            except Exception:  # one failing consumer must not starve the others
                log.exception("item-received hook %r failed for item %s", callback, item_id)


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
        concat=row.concat,  # type: ignore[arg-type]
        partials=list(row.partials),
        store_state=dict(row.store_state),
        finished=row.finished_at is not None,
        terminated=row.terminated_at is not None,
    )


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
