"""/api/v1/uploads/{id}: what became of an upload (its item, once finished)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import select

from evidence.cases import may_see
from evidence.errors import NotFound
from evidence.http.deps import Db, role
from evidence.http.views import UploadView, upload_view
from evidence.models import Case, Item, Role, Upload, User

router = APIRouter(prefix="/api/v1")
Uploader = Annotated[User, Depends(role(Role.OFFICER, Role.ADMIN))]


@router.get("/uploads/{upload_id}", summary="An upload's progress and item (its officer, admin)")
def read_upload(upload_id: str, db: Db, user: Uploader) -> UploadView:
    admin = user.role == Role.ADMIN
    upload = db.get(Upload, upload_id)
    if upload is None or (upload.owner_id != user.id and not admin):
        raise NotFound("upload not found")
    # Checked on every request, as tus does: an officer taken off the case no longer sees it.
    case = db.get(Case, upload.case_id) if upload.case_id else None
    if not admin and (case is None or not may_see(db, user, case)):
        raise NotFound("upload not found")
    return upload_view(upload, db.scalar(select(Item.id).where(Item.upload_id == upload.id)))
