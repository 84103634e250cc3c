"""A migrated application runtime (SQLite and PostgreSQL) with the people and cases the
upload tests need, and the upload registry over it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from evidence import cases, migrate
from evidence.accounts import users
from evidence.models import CustodyEvent, Role
from evidence.runtime import Runtime
from evidence.settings import Settings
from evidence.uploads.registry import UploadRegistry
from transfer.info import UploadInfo

ACTOR = "operator:tests"
CASE, OTHER_CASE = "OP-KESTREL", "OP-HERON"


@dataclass(frozen=True)
class People:
    """Account ids: an officer on CASE, a colleague on OTHER_CASE only, an admin on no
    case, and a reviewer; and each one's token."""

    officer: str
    colleague: str
    admin: str
    reviewer: str
    tokens: dict[str, str]


@pytest.fixture
def rt(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    runtime = Runtime.build(Settings(data_dir=tmp_path / "data", database_url=database_url))
    migrate.upgrade(runtime.db.engine)
    runtime.vault.ensure_ready()
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def people(rt: Runtime) -> People:
    with rt.db.transaction() as session:
        made = {
            "officer": users.add_user(session, "officer@force.police.uk", Role.OFFICER),
            "colleague": users.add_user(session, "colleague@force.police.uk", Role.OFFICER),
            "admin": users.add_user(session, "admin@force.police.uk", Role.ADMIN),
            "reviewer": users.add_user(session, "reviewer@cps.gov.uk", Role.REVIEWER),
        }
        cases.assign(session, cases.create_case(session, CASE, None, ACTOR), made["officer"], ACTOR)
        cases.assign(session, cases.create_case(session, OTHER_CASE, None, ACTOR), made["colleague"], ACTOR)
        tokens = {name: rt.signer.issue(user) for name, user in made.items()}
        return People(officer=made["officer"].id, colleague=made["colleague"].id, admin=made["admin"].id,
                      reviewer=made["reviewer"].id, tokens=tokens)


@pytest.fixture
def registry(rt: Runtime) -> UploadRegistry:
    return UploadRegistry(rt.db, rt.vault)


def upload(owner: str, number: int = 1, case: str | None = CASE, **fields: object) -> UploadInfo:
    """A new upload as the handler makes it, with the storage key the hooks give it."""
    upload_id = f"{number:032x}"
    concat = fields.get("concat")
    metadata = {"filename": f"exhibit-{number}.bin", **({"case": case} if case else {})}
    info = UploadInfo(
        id=upload_id, owner=owner, storage_key=f"{'uploads/partials' if concat == 'partial' else 'originals'}/{upload_id}",
        size=10, metadata=metadata, created_at=datetime.now(UTC), expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    for name, value in fields.items():
        setattr(info, name, value)
    return info


def actions(rt: Runtime) -> list[tuple[str, dict[str, str], str, dict[str, object]]]:
    """The custody record so far, without checkpoints: (action, subject, actor, details)."""
    with rt.db.sessions() as session:
        events = session.scalars(select(CustodyEvent).order_by(CustodyEvent.seq))
        return [(e.action, e.subject, e.actor, e.details) for e in events if e.action != "checkpoint.signed"]
