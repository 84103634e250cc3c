"""/api/v1/uploads/{id}: what became of an upload (its item, once finished)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence.cases import may_see
from evidence.errors import NotFound
from evidence.http.deps import role, session
from evidence.models import Case, Item, Upload, User

router = APIRouter(prefix="/api/v1")


@router.get("/uploads/{upload_id}", summary="An upload's progress and item (its officer, admin)")
def read_upload(upload_id: str, db: Session = Depends(session), user: User = Depends(role("officer", "admin"))) -> dict[str, Any]:
    upload = db.get(Upload, upload_id)
    if upload is None or (upload.owner_id != user.id and user.role != "admin"):
        raise NotFound("upload not found")
    # Checked on every request, as tus does: an officer taken off the case no longer sees it.
    case = db.get(Case, upload.case_id) if upload.case_id else None
    if user.role != "admin" and (case is None or not may_see(db, user, case)):
        raise NotFound("upload not found")
    item = db.scalar(select(Item.id).where(Item.upload_id == upload.id))
    return {
        "id": upload.id,
        "offset": upload.offset,
        "size": upload.size,
        "finished": upload.finished_at is not None,
        "terminated": upload.terminated_at is not None,
        "expires_at": upload.expires_at.isoformat() if upload.expires_at else None,
        "item": item,
    }
