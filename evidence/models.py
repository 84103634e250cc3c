"""Database models. Changes go through an Alembic migration in ``evidence/migrations``."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out (SQLite stores no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Role(StrEnum):
    """Who someone is to the service. Officers upload and share within their cases; reviewers
    have links only; auditors read every record; admins manage accounts, cases and links."""

    OFFICER = "officer"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"
    ADMIN = "admin"


class ItemState(StrEnum):
    """uploading -> received -> processing -> ready, or failed (with a reason; the original and
    its hashes are kept) or quarantined (the stored hash differs from the officer's); at the end
    of its life, disposed (two admins approved; its copies are gone, its row and record stay)."""

    UPLOADING = "uploading"
    RECEIVED = "received"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"
    QUARANTINED = "quarantined"
    DISPOSED = "disposed"

    @property
    def settled(self) -> bool:
        """Nothing more will happen to it without someone acting."""
        return self in (ItemState.READY, ItemState.FAILED, ItemState.QUARANTINED, ItemState.DISPOSED)


class DerivativeKind(StrEnum):
    """The working copies and records made from an original (never the original itself)."""

    PROBE = "probe"
    PROXY = "proxy"
    POSTER = "poster"
    CONTACT_SHEET = "contact_sheet"
    HLS = "hls"
    THUMBNAIL = "thumbnail"
    MANIFEST = "manifest"
    # What a reviewer sees of exhibits that are not video (evidence/workingcopies.py):
    VIEW = "view"  # an image at screen size, EXIF orientation applied, in JPEG
    AUDIO = "audio"  # AAC in MP4
    TEXT = "text"  # a text file's head as UTF-8
    PAGES = "pages"  # a PDF's pages as images: an index, each page stored beside it
    PREVIEWS = "previews"  # working copies of the images and videos inside a ZIP: an index


ROLES = tuple(Role)
ITEM_STATES = tuple(ItemState)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]
    # Tokens issued before this moment no longer work (`evidence users revoke`).
    tokens_valid_after: Mapped[datetime | None]
    # Set for accounts of the identity provider (OpenID Connect): the issuer and subject
    # the account is bound to. Local accounts (`evidence users add`) have neither.
    idp_issuer: Mapped[str | None] = mapped_column(String(500))
    idp_subject: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (Index("ix_users_idp", "idp_issuer", "idp_subject", unique=True),)


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseAssignment(Base):
    """An officer assigned to a case: they may see it, upload into it and share from it.
    An officer who creates a case through the API is assigned to it."""

    __tablename__ = "case_assignments"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    assigned_by: Mapped[str] = mapped_column(String(200))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)


class Upload(Base):
    """A tus upload. Its state lives here so any API process can take the next chunk."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"))
    size: Mapped[int | None] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    upload_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    storage_key: Mapped[str] = mapped_column(String(200))
    concat: Mapped[str | None] = mapped_column(String(8))
    partials: Mapped[list[Any]] = mapped_column(default=list)
    store_state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    terminated_at: Mapped[datetime | None]
    # A finished partial upload once a final upload has taken its bytes (it is then removed).
    consumed_at: Mapped[datetime | None]


class Item(Base):
    """One original, as received: what the officer sent, where it is stored, what became of it."""

    __tablename__ = "items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    upload_id: Mapped[str] = mapped_column(ForeignKey("uploads.id"), unique=True)
    officer_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    # Kept exactly as the officer's machine named it (often the only time source); it is
    # never used to build a path.
    filename: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default="received")
    reason: Mapped[str | None] = mapped_column(Text)
    client_sha256: Mapped[str | None] = mapped_column(String(64))
    exhibit: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    filetype: Mapped[str | None] = mapped_column(Text)
    upload_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    hashes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    progress: Mapped[float | None]
    # What the pipeline found: video, audio, image, pdf, archive or other...
    kind: Mapped[str | None] = mapped_column(String(16))
    # ...and a summary of the probe (container, codecs, duration, resolution, frame rate).
    media: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Times processing was started for it (a poison item is failed after a few), and the CPU
    # seconds its decoding children have used against its budget.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cpu_seconds: Mapped[float] = mapped_column(default=0.0)
    # The lease on the step being run (transcode.lease): which worker holds it, on which
    # step, until when. Renewed while the step runs; past its end the worker is taken to be
    # dead and the step may be taken over. All three empty between steps.
    lease_holder: Mapped[str | None] = mapped_column(String(200))
    lease_step: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Fixity audits (evidence.fixity). The flag: null until an audit has checked one of the
    # item's objects, then FixityState.OK, or FAILED while the latest check of any of them (the
    # original, a working copy or a part of one) found it different, missing or, for the
    # original, no longer write-once; ``fixity_problems`` lists those findings. ``fixity_failed_at``
    # is the first time a check failed and stays set (the ledger keeps each fixity.failed).
    fixity_state: Mapped[str | None] = mapped_column(String(16))
    fixity_problems: Mapped[list[Any] | None]
    fixity_failed_at: Mapped[datetime | None]
    # When the original was last re-read and matched or not, and when it is next due.
    fixity_checked_at: Mapped[datetime | None]
    fixity_due_at: Mapped[datetime | None] = mapped_column(index=True)


class FixityState(StrEnum):
    OK = "ok"
    FAILED = "failed"


class Derivative(Base):
    """A working copy made from an original (never the original itself)."""

    __tablename__ = "derivatives"
    __table_args__ = (UniqueConstraint("item_id", "kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # a DerivativeKind
    key: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    # How it was made, so anyone can repeat it: tool, exact version, full argument list.
    method: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Fixity audits: when this working copy (with its parts) was last checked, and next due.
    fixity_checked_at: Mapped[datetime | None]
    fixity_due_at: Mapped[datetime | None] = mapped_column(index=True)


class CustodyEvent(Base):
    """One entry of the custody ledger: every action on every item, in order.

    ``body`` is the entry's canonical encoding (RFC 8785), the bytes its Merkle leaf is
    hashed from; the other columns repeat what is in it so it can be searched, and
    ``evidence audit verify`` checks that they agree. ``seq`` is the leaf index.
    """

    __tablename__ = "custody_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(40), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    subject: Mapped[dict[str, Any]] = mapped_column(default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    item_id: Mapped[str | None] = mapped_column(String(32), index=True)
    case_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerNode(Base):
    """Hash of a complete subtree of the ledger's Merkle tree: leaves
    [index * 2**level, (index + 1) * 2**level). Proofs read O(log n) of these."""

    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column("idx", BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerHead(Base):
    """The log's current size and right edge (one row). Appends lock it, so concurrent API
    processes and workers take turns and the log never forks."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    # The roots of the perfect subtrees along the right edge, as [level, index, hex hash].
    frontier: Mapped[list[Any]] = mapped_column(default=list)


class Checkpoint(Base):
    """A signed checkpoint (C2SP tlog-checkpoint in a signed note)."""

    __tablename__ = "ledger_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckpointCosignature(Base):
    """A witness's cosignature of a signed checkpoint (C2SP tlog-cosignature): its signature
    line, to append to the checkpoint's note. One per checkpoint and witness key."""

    __tablename__ = "checkpoint_cosignatures"

    checkpoint_size: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("ledger_checkpoints.size"), primary_key=True, autoincrement=False)
    witness: Mapped[str] = mapped_column(String(300), primary_key=True)  # the witness's verifier key
    line: Mapped[str] = mapped_column(Text)
    cosigned_at: Mapped[datetime]  # the witness's timestamp
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class WitnessState(Base):
    """What this ledger knows of each witness: the size it last cosigned (the old size of the
    next request), and how the last request went."""

    __tablename__ = "witness_state"

    witness: Mapped[str] = mapped_column(String(300), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    asked_at: Mapped[datetime | None]
    problem: Mapped[str | None] = mapped_column(String(500))


class Link(Base):
    """A signed link for a reviewer with no account: what was shared, with whom, until when.

    ``item_ids`` is the snapshot of exactly what was shared (for a case-wide share, the
    case's items at that moment); ``include_future`` says whether items added to the case
    later appear too. The token itself is never stored: Ed25519 signatures are
    deterministic, so the same claims signed with key ``kid`` give the same URL again.
    """

    __tablename__ = "links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    scope: Mapped[str] = mapped_column(String(8))  # "case" or "items"
    item_ids: Mapped[list[Any]] = mapped_column(default=list)
    include_future: Mapped[bool] = mapped_column(default=False)
    recipient: Mapped[str] = mapped_column(String(320))
    permission: Mapped[str] = mapped_column(String(16))  # "view" or "download"
    expires_at: Mapped[datetime]
    max_uses: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    # The user who shared (null when an operator shared from the server's CLI) and the
    # actor string the ledger names either way.
    creator_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    passcode_hash: Mapped[str | None] = mapped_column(String(200))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[datetime | None]
    kid: Mapped[str] = mapped_column(String(64))


class LinkAccess(Base):
    """What one client did through one link in one window of time, coalesced, so that the
    custody record stays complete without a hostile client being able to flood it.

    ``key`` says what: ``use`` (a counted use of the link), ``page``, ``view:<item>``,
    ``download:<item>``, ``report:<item>`` or ``denied:<reason>``; never anything taken from
    the URL. ``viewer`` is the client (its address, an IPv6 client by its /64), not a cookie
    it can drop. Windows start on a fixed grid, so every API process agrees on them. The
    first request of a window is recorded at once; what followed (more requests, more byte
    ranges) is recorded once when the window closes, by whichever process gets there.
    """

    __tablename__ = "link_access"
    __table_args__ = (UniqueConstraint("link_id", "viewer", "key", "window_start"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    link_id: Mapped[str] = mapped_column(ForeignKey("links.id"), index=True)
    viewer: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(80))
    item_id: Mapped[str | None] = mapped_column(String(32))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime] = mapped_column(index=True)
    first_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_at: Mapped[datetime] = mapped_column(default=utcnow)
    requests: Mapped[int] = mapped_column(Integer, default=1)
    bytes_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    # Byte ranges served, coalesced: [[first, last], ...] (inclusive, as Content-Range counts);
    # ``ranges_exact`` false once too many separate ranges were merged across gaps (the
    # ranges then cover more than was served, never less).
    ranges: Mapped[list[Any]] = mapped_column(default=list)
    ranges_exact: Mapped[bool] = mapped_column(default=True)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    # How many of ``requests`` the ledger already tells of (the first entry tells of one), and
    # when the last summary went in: a closed window with more requests than that is summarised.
    reported_requests: Mapped[int] = mapped_column(Integer, default=1)
    summarised_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in browser (the pages under /app/). The cookie holds ``id.secret``; only the
    secret's SHA-256 is stored, so a copy of the database signs nobody in. A session ends
    when its token would have (``expires_at``), on sign-out (``ended_at``), or when the
    account is disabled or its tokens revoked after the session began."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    # The form token: every state-changing request from the pages carries it.
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]


class CaseRetention(Base):
    """A case's outcome under the CPIA code and its legal hold (evidence.retention); a case
    without a row has no outcome yet and no hold."""

    __tablename__ = "case_retention"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), default="pending")  # a retention.policy.Outcome
    decided_on: Mapped[date | None]
    release_on: Mapped[date | None]
    appeal_open: Mapped[bool] = mapped_column(default=False)
    appeal_closed_on: Mapped[date | None]
    # None while the material must be kept (no decision yet, charged, an appeal open).
    review_on: Mapped[date | None] = mapped_column(index=True)
    held_at: Mapped[datetime | None]
    held_by: Mapped[str | None] = mapped_column(String(200))
    hold_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Disposal(Base):
    """Four eyes on an item's disposal: who proposed it and why; who approved it, and what
    was removed then (the ledger's ``item.disposed`` entry says the same, signed)."""

    __tablename__ = "disposals"

    item_id: Mapped[str] = mapped_column(ForeignKey("items.id"), primary_key=True)
    proposer_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    proposed_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    approver_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    approved_by: Mapped[str | None] = mapped_column(String(200))
    disposed_at: Mapped[datetime | None]
    # When the original itself went; empty while the storage's retention still keeps it.
    original_removed_at: Mapped[datetime | None]
