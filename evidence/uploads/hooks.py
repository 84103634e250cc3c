"""What the application decides for the tus server: who may upload, what a new upload must
carry and where it goes, whether its owner may still touch it, and what happens once it
is finished (:class:`transfer.hooks.Hooks` and :class:`transfer.hooks.Authorizer`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import select

from evidence import cases
from evidence.accounts import access, websessions
from evidence.db import Database
from evidence.errors import EvidenceError, Forbidden
from evidence.models import Case, Role, Upload, User
from evidence.uploads.registry import UploadRegistry
from transfer import errors as tus
from transfer.info import UploadInfo

log = logging.getLogger(__name__)
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
UPLOAD_ROLES = (Role.OFFICER, Role.ADMIN)
_TUS_ERRORS: dict[int, type[tus.TusError]] = {401: tus.Unauthorized, 403: tus.Forbidden, 503: tus.StorageUnavailable}


class UploadHooks:
    """:class:`transfer.hooks.Hooks`: authentication, metadata rules, completion."""

    def __init__(self, db: Database, auth: access.Authenticator, registry: UploadRegistry) -> None:
        self.db = db
        self.auth = auth
        self.registry = registry
        self.on_item_received: list[Callable[[str], None]] = []

    def authenticate(self, headers: Mapping[str, str]) -> str:
        """A bearer token (the CLI, scripts), or the pages' session cookie with the session's
        CSRF token in ``X-CSRF-Token`` (the browser client). A cookie alone is not enough: a
        page of another site could make the browser send it, but cannot read the token."""
        try:
            with self.db.sessions() as session:
                authorization = headers.get("authorization")
                cookie = None if authorization else websessions.from_cookie_header(headers.get("cookie"))
                if cookie is None:
                    user = self.auth.authenticate(session, authorization)
                else:
                    signed = websessions.resume(session, cookie)
                    if not websessions.csrf_matches(signed, headers.get("x-csrf-token")):
                        raise Forbidden("this request did not come from the case page (no valid X-CSRF-Token)")
                    user = signed.user
                access.require_role(user, *UPLOAD_ROLES)
                return user.id
        except EvidenceError as error:
            raise _TUS_ERRORS.get(error.status, tus.Unauthorized)(error.message) from None

    def prepare(self, info: UploadInfo, partials: Sequence[UploadInfo]) -> None:
        metadata = info.metadata
        # Partial uploads are pieces, not evidence yet, but they belong to a case too.
        required = ("case",) if info.concat == "partial" else ("filename", "case")
        for name in required:
            if not metadata.get(name, "").strip():
                raise tus.BadRequest(f"Upload-Metadata must include {name!r}")
        sha256 = metadata.get("sha256")
        if sha256 is not None and not SHA256_HEX.fullmatch(sha256):
            raise tus.BadRequest("Upload-Metadata 'sha256' must be 64 hexadecimal characters")
        with self.db.sessions() as session:
            owner = session.get(User, info.owner)
            case = session.scalar(select(Case).where(Case.ref == metadata["case"]))
            # A case the officer is not assigned to answers exactly like one that does not
            # exist: nobody learns which case references are real by trying them.
            if owner is None or case is None or not cases.may_see(session, owner, case):
                raise tus.NotFound(
                    f"case {metadata['case'][:64]!r} is not one of your cases (no such case, or you are not"
                    " assigned to it)"
                )
        for partial in partials:
            if partial.metadata.get("case") != case.ref:
                raise tus.BadRequest(f"partial upload {partial.id} was made for another case")
        # Keys are ours alone: nothing the client sent becomes part of a path.
        prefix = "uploads/partials" if info.concat == "partial" else "originals"
        info.storage_key = f"{prefix}/{info.id}"

    def authorize(self, owner: str, info: UploadInfo) -> None:
        """:class:`transfer.hooks.Authorizer`: on every request, the owner must still be
        allowed into the upload's case (taken off the case: 403). A disabled account or a
        revoked token never gets here: :meth:`authenticate` refuses it first (401)."""
        with self.db.sessions() as session:
            user = session.get(User, owner)
            row = session.get(Upload, info.id)
            case = None if row is None or row.case_id is None else session.get(Case, row.case_id)
            if user is None:
                raise tus.Unauthorized("invalid token")
            if case is None:
                if user.role == Role.ADMIN:
                    return
                raise tus.Forbidden("this upload belongs to no case; start it again with 'case' in Upload-Metadata")
            if not cases.may_see(session, user, case):
                raise tus.Forbidden(
                    f"you are no longer assigned to case {case.ref!r}; an admin can assign you again to continue"
                )

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
