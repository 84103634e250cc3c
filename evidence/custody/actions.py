"""Every custody action the ledger records (its ``action`` field), and the words a report
shows for it. One list: an action cannot be recorded, or shown, without being here."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    CASE_CREATED = "case.created"
    CASE_ASSIGNED = "case.assigned"
    CASE_UNASSIGNED = "case.unassigned"
    UPLOAD_CREATED = "upload.created"
    UPLOAD_COMPLETED = "upload.completed"
    UPLOAD_TERMINATED = "upload.terminated"
    UPLOAD_EXPIRED = "upload.expired"
    ORIGINAL_STORED = "original.stored"
    ORIGINAL_HASHED = "original.hashed"
    CLIENT_HASH_RECORDED = "client_hash.recorded"
    INTEGRITY_VERIFIED = "integrity.verified"
    INTEGRITY_MISMATCH = "integrity.mismatch"
    DERIVATIVE_CREATED = "derivative.created"
    ITEM_FAILED = "item.failed"
    LINK_CREATED = "link.created"
    LINK_ACCESSED = "link.accessed"
    LINK_REVOKED = "link.revoked"
    REPORT_EXPORTED = "report.exported"
    CHECKPOINT_SIGNED = "checkpoint.signed"
    USER_REVOKED = "user.revoked"
    USER_DISABLED = "user.disabled"
    USER_ENABLED = "user.enabled"
    LINK_KEY_ROTATED = "link_key.rotated"
    SCHEMA_UPGRADED = "schema.upgraded"
    # Issue 14: fixity audits, witnesses, retention and disposal.
    FIXITY_CHECKED = "fixity.checked"
    FIXITY_FAILED = "fixity.failed"
    CHECKPOINT_COSIGNED = "checkpoint.cosigned"
    CASE_OUTCOME = "case.outcome"
    CASE_HELD = "case.held"
    CASE_RELEASED = "case.released"
    DISPOSAL_PROPOSED = "disposal.proposed"
    ITEM_DISPOSED = "item.disposed"

    @property
    def label(self) -> str:
        """What a person reading a custody report sees."""
        return _LABELS[self]


_LABELS: dict[Action, str] = {
    Action.CASE_CREATED: "Case opened",
    Action.CASE_ASSIGNED: "Officer assigned to the case",
    Action.CASE_UNASSIGNED: "Officer taken off the case",
    Action.UPLOAD_CREATED: "Upload started",
    Action.UPLOAD_COMPLETED: "Upload completed",
    Action.UPLOAD_TERMINATED: "Unfinished upload removed",
    Action.UPLOAD_EXPIRED: "Unfinished upload expired",
    Action.ORIGINAL_STORED: "Original stored (write-once)",
    Action.ORIGINAL_HASHED: "Original hashed as stored",
    Action.CLIENT_HASH_RECORDED: "Officer's hash recorded (computed while uploading)",
    Action.INTEGRITY_VERIFIED: "Hash matches the officer's",
    Action.INTEGRITY_MISMATCH: "Hash DIFFERS from the officer's",
    Action.DERIVATIVE_CREATED: "Working copy made",
    Action.ITEM_FAILED: "Processing failed",
    Action.LINK_CREATED: "Shared by link",
    Action.LINK_ACCESSED: "Link used",
    Action.LINK_REVOKED: "Link revoked",
    Action.REPORT_EXPORTED: "Custody report exported",
    Action.CHECKPOINT_SIGNED: "Ledger checkpoint signed",
    Action.USER_REVOKED: "Account's tokens revoked",
    Action.USER_DISABLED: "Account disabled",
    Action.USER_ENABLED: "Account enabled",
    Action.LINK_KEY_ROTATED: "New signing key for links",
    Action.SCHEMA_UPGRADED: "Database schema upgraded",
    Action.FIXITY_CHECKED: "Stored objects re-read and re-hashed (fixity audit)",
    Action.FIXITY_FAILED: "Fixity audit: stored object DIFFERS or is missing",
    Action.CHECKPOINT_COSIGNED: "Ledger checkpoint cosigned by a witness",
    Action.CASE_OUTCOME: "Case outcome recorded",
    Action.CASE_HELD: "Legal hold placed on the case",
    Action.CASE_RELEASED: "Legal hold released",
    Action.DISPOSAL_PROPOSED: "Disposal proposed",
    Action.ITEM_DISPOSED: "Item disposed of",
}
