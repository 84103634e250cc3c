"""Fixity audits: stored originals and working copies re-read, re-hashed and compared with the
SHA-256 recorded when they were stored; originals' write-once protection checked too.

:mod:`evidence.fixity.schedule` says when each object is due (pure), :mod:`.pace` hashes at a
bounded rate, :mod:`.check` checks one object, :mod:`.run` runs an audit and records it. The
storage is read through :mod:`evidence.vault.readback` (on S3 with the ``minio`` SDK). Entry
points: ``evidence audit fixity`` (evidence.cli.audit) and the periodic task
``evidence.fixity_audit`` (transcode.audits), both as the service account.
"""

from evidence.fixity.run import ALL, COMMAND, DUE, SCHEDULE, Finding, Options, Outcome, audit

__all__ = ["ALL", "COMMAND", "DUE", "SCHEDULE", "Finding", "Options", "Outcome", "audit"]
