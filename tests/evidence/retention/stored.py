"""Items as the pipeline leaves them, made directly in the database and the vault so that the
retention tests need no worker: an original under its own key, sealed, and two working
copies under derivatives/<item>/ (one of them in parts, as a PDF's pages are)."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from evidence.models import Case, Derivative, Item, ItemState, Upload, User, new_id
from evidence.vault import Vault
from evidence.vault.local import LocalVault
from evidence.vault.s3 import S3Vault


def put_original(vault: Vault, key: str, data: bytes, retain_for: timedelta | None = None) -> None:
    """Writes an original where an upload would, and seals it; on S3 with ``retain_for``, a
    compliance retention that short instead of the vault's (so a test can see it pass)."""
    if isinstance(vault, S3Vault):
        vault.client.put_object(Bucket=vault.bucket, Key=key, Body=data)
        if retain_for is not None:
            until = (datetime.now(UTC) + retain_for).replace(microsecond=0)
            vault.client.put_object_retention(Bucket=vault.bucket, Key=key,
                                              Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until})
            return
    else:
        assert isinstance(vault, LocalVault)
        path = vault.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    vault.seal(key)


def stored_item(session: Session, vault: Vault, case: Case, officer: User, data: bytes, name: str = "clip.mp4",
                retain_for: timedelta | None = None) -> Item:
    upload_id = new_id()
    key = f"originals/{upload_id}"
    put_original(vault, key, data, retain_for)
    session.add(Upload(id=upload_id, owner_id=officer.id, case_id=case.id, size=len(data), offset=len(data),
                       storage_key=key, finished_at=datetime.now(UTC)))
    session.flush()  # the item refers to it
    item = Item(case_id=case.id, upload_id=upload_id, officer_id=officer.id, filename=name, size=len(data),
                storage_key=key, state=ItemState.READY, hashes={"sha256": hashlib.sha256(data).hexdigest()})
    session.add(item)
    session.flush()
    for kind, parts in (("proxy", 1), ("pages", 3)):
        for number in range(parts):
            body = f"{kind} {number} of {item.id}".encode()
            suffix = "" if number == 0 else f"/page-{number}"
            made = vault.put(f"derivatives/{item.id}/{kind}-{number}{suffix}.bin", io.BytesIO(body))
            if number == 0:
                session.add(Derivative(item_id=item.id, kind=kind, key=made.key, size=made.size,
                                       sha256=hashlib.sha256(body).hexdigest(), content_type="application/octet-stream"))
    session.flush()
    return item
