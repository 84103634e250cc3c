"""The JSON shapes users see, as Pydantic models: the API declares them as its response
models (so /docs and /openapi.json show each one) and the CLI's ``--json`` prints the same.

Field names and order are the contract (DESIGN.md); times are ISO 8601 text as
``datetime.isoformat`` writes it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema
from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence.models import Case, Derivative, DerivativeKind, Item, ItemState, Link, Role, Upload, User

Moment = Annotated[
    datetime,
    PlainSerializer(lambda moment: moment.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class View(BaseModel):
    # Every field is always present (null where there is nothing), in this order.
    model_config = ConfigDict(extra="forbid")

    def as_json(self) -> dict[str, Any]:
        """What the API sends, for the CLI's ``--json``."""
        return self.model_dump(mode="json", by_alias=True)


# -- cases and items --------------------------------------------------------------------------


class CaseView(View):
    id: str
    ref: str
    title: str | None
    created_by: str = Field(description="Who created it, as the custody record names them")
    created_at: Moment


class DerivativeView(View):
    kind: DerivativeKind
    sha256: str
    size: int
    content_type: str
    url: str = Field(description="Fetches it with the same bearer token")
    method: dict[str, Any] = Field(description="How it was made: tool, exact version, full argument list")


class FixityProblemView(View):
    object: str = Field(description="original, or working copy")
    kind: str | None = Field(description="The working copy's kind")
    part: str | None = Field(description="A part of a many-object working copy: its SHA-256 or file name")
    problem: str = Field(description="differs, missing, unreadable, not write-once, retention shorter than policy")
    expected: dict[str, Any]
    found: dict[str, Any]
    at: str = Field(description="When the check found it")


class FixityView(View):
    state: str = Field(description="unchecked (no audit yet), ok, or failed (the latest check of one of the item's"
                       " objects found it different, missing or no longer write-once)",
                       json_schema_extra={"enum": ["unchecked", "ok", "failed"]})
    checked_at: Moment | None = Field(description="When the original was last re-read and re-hashed")
    due_at: Moment | None = Field(description="When the original is next due to be checked")
    failed_at: Moment | None = Field(description="When a check of the item first failed (it stays set)")
    problems: list[FixityProblemView]


def fixity_view(item: Item) -> FixityView:
    problems = [FixityProblemView(**{name: p.get(name) for name in FixityProblemView.model_fields})
                for p in item.fixity_problems or [] if isinstance(p, dict)]
    return FixityView(state=item.fixity_state or "unchecked", checked_at=item.fixity_checked_at,
                      due_at=item.fixity_due_at, failed_at=item.fixity_failed_at, problems=problems)


class ItemView(View):
    id: str
    case: str = Field(description="The case reference")
    filename: str = Field(description="Exactly as the officer's machine named it")
    size: int
    state: ItemState
    reason: str | None = Field(description="Why it failed or was quarantined")
    hashes: dict[str, str] = Field(description="sha256 of the original as stored; md5 and sha1 where computed")
    client_sha256: str | None = Field(description="The officer's own SHA-256, sent with the upload")
    exhibit: str | None
    description: str | None
    filetype: str | None
    warnings: list[str]
    progress: float | None = Field(description="Percent of the current processing step, while there is one")
    kind: str | None = Field(description="What the pipeline found: video, audio, image, pdf, archive or other")
    media: dict[str, Any] = Field(description="A summary of the probe: container, codecs, duration, resolution")
    derivatives: list[DerivativeView]
    created_at: Moment
    url: str
    fixity: FixityView = Field(description="Fixity audits of the stored original and working copies")


def case_view(case: Case) -> CaseView:
    return CaseView(id=case.id, ref=case.ref, title=case.title, created_by=case.created_by, created_at=case.created_at)


def item_view(item: Item, case_ref: str, base_url: str, derivatives: Sequence[Derivative] = ()) -> ItemView:
    item_url = f"{base_url}/api/v1/items/{item.id}"
    return ItemView(
        id=item.id, case=case_ref, filename=item.filename, size=item.size, state=ItemState(item.state),
        reason=item.reason, hashes=dict(item.hashes or {}), client_sha256=item.client_sha256, exhibit=item.exhibit,
        description=item.description, filetype=item.filetype, warnings=list(item.warnings or []),
        progress=item.progress, kind=item.kind, media=dict(item.media or {}),
        derivatives=[
            DerivativeView(kind=DerivativeKind(d.kind), sha256=d.sha256, size=d.size, content_type=d.content_type,
                           url=f"{item_url}/derivatives/{d.kind}", method=d.method)
            for d in sorted(derivatives, key=lambda d: d.kind)
        ],
        created_at=item.created_at, url=item_url, fixity=fixity_view(item),
    )


def items_view(session: Session, items: Sequence[Item], base_url: str) -> list[ItemView]:
    """Several items, with their case references and derivatives (three queries)."""
    ids = [item.id for item in items]
    found = session.execute(select(Case.id, Case.ref).where(Case.id.in_({i.case_id for i in items})))
    refs = {case_id: ref for case_id, ref in found}
    made: dict[str, list[Derivative]] = defaultdict(list)
    for derivative in session.scalars(select(Derivative).where(Derivative.item_id.in_(ids))):
        made[derivative.item_id].append(derivative)
    return [item_view(item, refs[item.case_id], base_url, made[item.id]) for item in items]


# -- accounts -----------------------------------------------------------------------------------


class UserView(View):
    id: str
    email: str
    role: Role
    identity_provider: str | None = Field(description="The OpenID Connect issuer of an identity-provider account")
    created_at: Moment
    disabled_at: Moment | None
    tokens_valid_after: Moment | None = Field(description="Tokens issued until then no longer work")


class NewUserView(UserView):
    token: str = Field(description="A local bearer token for the account, shown once")


class AssignmentView(View):
    case: str
    officer: UserView


def user_view(user: User) -> UserView:
    return UserView(id=user.id, email=user.email, role=Role(user.role), identity_provider=user.idp_issuer,
                    created_at=user.created_at, disabled_at=user.disabled_at,
                    tokens_valid_after=user.tokens_valid_after)


# -- links ----------------------------------------------------------------------------------------


class LinkView(View):
    id: str
    url: str | None = Field(description="The reviewer's URL; null once its signing key has been retired")
    case: str
    to: str = Field(description="The reviewer's email address")
    scope: str = Field(json_schema_extra={"enum": ["case", "items"]})
    items: list[str] = Field(description="The items shared, as they were when the link was made")
    include_future: bool
    permission: str = Field(json_schema_extra={"enum": ["view", "download"]})
    expires_at: Moment
    revoked_at: Moment | None
    uses: int
    max_uses: int | None
    passcode: bool = Field(description="Whether the link also needs a passcode")
    failed_attempts: int
    locked_at: Moment | None
    created_at: Moment
    created_by: str
    kid: str = Field(description="The key that signs the link's token")


class NewLinkView(LinkView):
    issued_passcode: str | None = Field(description="The passcode, shown once and never stored")


def link_view(link: Link, url: str | None, case_ref: str) -> LinkView:
    return LinkView(
        id=link.id, url=url, case=case_ref, to=link.recipient, scope=link.scope, items=list(link.item_ids),
        include_future=link.include_future, permission=link.permission,
        expires_at=link.expires_at, revoked_at=link.revoked_at, uses=link.uses, max_uses=link.max_uses,
        passcode=link.passcode_hash is not None, failed_attempts=link.failed_attempts, locked_at=link.locked_at,
        created_at=link.created_at, created_by=link.created_by, kid=link.kid,
    )


# -- uploads ---------------------------------------------------------------------------------------


class UploadView(View):
    id: str
    offset: int = Field(description="Bytes stored so far")
    size: int | None = Field(description="Null until a deferred length is declared")
    finished: bool
    terminated: bool
    expires_at: Moment | None
    item: str | None = Field(description="The item's id once the upload has finished")


def upload_view(upload: Upload, item_id: str | None) -> UploadView:
    return UploadView(id=upload.id, offset=upload.offset, size=upload.size, finished=upload.finished_at is not None,
                      terminated=upload.terminated_at is not None, expires_at=upload.expires_at, item=item_id)
