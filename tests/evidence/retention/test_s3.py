"""Holds and disposal on S3 with Object Lock (Ceph's gateway unless EVIDENCE_TEST_S3_ENDPOINT
names another): a hold sets Object Lock legal hold on the case's originals, which the storage
itself then refuses to delete; disposal removes every version of the item's objects once
the compliance retention has passed, and says so when it has not; the other item with the
same bytes keeps everything."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select

from evidence import cases, migrate
from evidence.accounts import users as accounts
from evidence.custody import ledger
from evidence.custody.verify import verify
from evidence.errors import Conflict, Forbidden
from evidence.models import CustodyEvent, Item, User, utcnow
from evidence.retention import disposal, holds, state
from evidence.retention.due import due
from evidence.retention.policy import Event
from evidence.runtime import Runtime
from evidence.settings import Settings
from evidence.vault import StillRetained
from evidence.vault.s3 import S3Vault
from tests.evidence.retention.stored import stored_item
from tests.support.s3 import REGION, new_bucket

pytestmark = pytest.mark.s3
CASE = "OP-S3-RETAIN"
BYTES = b"identical bytes in two items" * 50
SHORT = timedelta(seconds=4)


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    bucket = new_bucket()
    settings = Settings(data_dir=tmp_path / "data", retention_days=30, s3_access_key=bucket.access_key,
                        s3_secret_key=bucket.secret_key,
                        storage_url=f"s3://{bucket.bucket}?endpoint_url={bucket.endpoint}&region={REGION}")
    runtime = Runtime.build(settings)
    migrate.upgrade(runtime.db.engine)
    runtime.vault.ensure_ready()
    try:
        yield runtime
    finally:
        runtime.close()


def versions(vault: S3Vault, prefix: str) -> list[dict[str, Any]]:
    found = vault.client.list_object_versions(Bucket=vault.bucket, Prefix=prefix)
    return [*found.get("Versions", []), *found.get("DeleteMarkers", [])]


def legal_hold(vault: S3Vault, key: str) -> str:
    return str(vault.client.get_object_legal_hold(Bucket=vault.bucket, Key=key)["LegalHold"]["Status"])


def test_a_hold_is_kept_by_s3_itself_and_disposal_waits_for_retention(rt: Runtime) -> None:
    vault = rt.vault
    assert isinstance(vault, S3Vault)
    with rt.db.transaction() as session:
        ids = {name: accounts.add_user(session, f"{name}@force.police.uk", "admin").id for name in ("first", "second")}
        officer = accounts.add_user(session, "pc@force.police.uk", "officer")
        case = cases.create_case(session, CASE, None, "user:first@force.police.uk")
        # One retained a few seconds (its retention passes during the test), one for 30 days.
        short = stored_item(session, vault, case, officer, BYTES, "short.mp4", retain_for=SHORT)
        long = stored_item(session, vault, case, officer, BYTES, "long.mp4")
        keys = {"short": (short.id, short.storage_key), "long": (long.id, long.storage_key)}
        state.record_outcome(session, case, Event.NFA, date(2020, 1, 6), None, state.periods_of(rt.settings),
                             "user:first@force.police.uk")
    started = datetime.now(UTC)

    def act(who: str, what: Any) -> Any:
        with rt.db.transaction() as session:
            user = session.get_one(User, ids[who])
            return what(session, user, f"user:{user.email}", cases.get_case(session, CASE))

    act("first", lambda s, u, a, c: holds.hold(s, vault, c, "judicial review", a))
    assert [legal_hold(vault, key) for _, key in keys.values()] == ["ON", "ON"]
    # The retention passes, but the legal hold keeps the original: the storage refuses, not just us.
    time.sleep(max(0.0, (started + SHORT + timedelta(seconds=1) - datetime.now(UTC)).total_seconds()))
    with pytest.raises(StillRetained, match="legal hold"):
        vault.remove_original(keys["short"][1])
    version = versions(vault, keys["short"][1])[0]["VersionId"]
    with pytest.raises(ClientError):
        vault.client.delete_object(Bucket=vault.bucket, Key=keys["short"][1], VersionId=version)
    act("second", lambda s, u, a, c: holds.release(s, vault, c, a))
    assert [legal_hold(vault, key) for _, key in keys.values()] == ["OFF", "OFF"]

    def dispose(name: str) -> dict[str, Any]:
        item_id = keys[name][0]
        act("first", lambda s, u, a, c: disposal.propose(s, s.get_one(Item, item_id), u, a, "NFA period over",
                                                         utcnow().date()))
        found: dict[str, Any] | None = act("second", lambda s, u, a, c: disposal.approve(
            s, vault, s.get_one(Item, item_id), u, a, utcnow().date()))
        if found is None:  # the decision is committed; then the removal, in a transaction of its own
            found = act("second", lambda s, u, a, c: disposal.carry_out(s, vault, item_id, a))
        assert found is not None
        return found

    gone = dispose("short")
    assert gone["original_removed"] and gone["working_copies_removed"] == 2
    assert versions(vault, keys["short"][1]) == [] and versions(vault, f"derivatives/{keys['short'][0]}/") == []
    # The other item: same bytes, same case, everything still there.
    with vault.open(keys["long"][1]) as stream:
        assert hashlib.sha256(stream.read()).digest() == hashlib.sha256(BYTES).digest()
    assert len(versions(vault, f"derivatives/{keys['long'][0]}/")) == 4

    # Disposed while its retention still runs: the copies go, the original stays; approved
    # again once the retention has passed (by an admin other than the proposer), it goes too.
    with rt.db.transaction() as session:
        soon = stored_item(session, vault, cases.get_case(session, CASE),
                           session.get_one(User, ids["first"]), BYTES, "soon.mp4", retain_for=SHORT)
        keys["soon"] = (soon.id, soon.storage_key)
    soon_started = datetime.now(UTC)
    waiting = dispose("soon")
    assert not waiting["original_removed"] and len(versions(vault, keys["soon"][1])) == 1
    with pytest.raises(Conflict, match="still keeps its original"):
        act("second", lambda s, u, a, c: disposal.approve(s, vault, s.get_one(Item, keys["soon"][0]), u, a,
                                                          utcnow().date()))
    time.sleep(max(0.0, (soon_started + SHORT + timedelta(seconds=1) - datetime.now(UTC)).total_seconds()))
    with pytest.raises(Forbidden, match="four eyes"):
        act("first", lambda s, u, a, c: disposal.approve(s, vault, s.get_one(Item, keys["soon"][0]), u, a,
                                                         utcnow().date()))
    done = act("second", lambda s, u, a, c: disposal.approve(s, vault, s.get_one(Item, keys["soon"][0]), u, a,
                                                             utcnow().date()))
    assert done["original_removed"] and versions(vault, keys["soon"][1]) == []
    with pytest.raises(Conflict, match="already been disposed of"):
        act("second", lambda s, u, a, c: disposal.approve(s, vault, s.get_one(Item, keys["soon"][0]), u, a,
                                                          utcnow().date()))

    kept = dispose("long")  # retained 30 days: the working copies go, the original stays
    assert not kept["original_removed"] and kept["working_copies_removed"] == 2
    until = datetime.fromisoformat(kept["original_kept_until"])
    assert until > datetime.now(UTC) + timedelta(days=29)
    assert "retains" in kept["original_kept_because"]
    assert "ORIGINAL IS STILL STORED until" in disposal.disposal_message(kept)
    assert len(versions(vault, keys["long"][1])) == 1 and versions(vault, f"derivatives/{keys['long'][0]}/") == []
    with rt.db.sessions() as session:  # still to review: its original, once the storage lets it go
        assert [(row["item"], row["state"]) for row in due(session, utcnow().date())] == [(keys["long"][0], "disposed")]

    # Every step on the record, and the record still verifies.
    with rt.db.transaction() as session:
        ledger.sign_checkpoint(session, rt.ledger_keys, "system:test")
    with rt.db.sessions() as session:
        recorded = [(e.action, e.item_id, e.details) for e in session.scalars(
            select(CustodyEvent).where(CustodyEvent.case_ref == CASE).order_by(CustodyEvent.seq))]
        assert verify(session, rt.ledger_keys.verifier, rt.ledger_keys.origin).ok
    names = {item_id: name for name, (item_id, _) in keys.items()}
    steps = [(action, names.get(item or "", None)) for action, item, _ in recorded if action != "case.created"]
    assert steps == [("case.outcome", None), ("case.held", None), ("case.released", None),
                     ("disposal.proposed", "short"), ("item.disposed", "short"),
                     ("disposal.proposed", "soon"), ("item.disposed", "soon"), ("item.disposed", "soon"),
                     ("disposal.proposed", "long"), ("item.disposed", "long")]
    details = [d for _, _, d in recorded]
    assert details[2]["storage"] == details[3]["storage"].replace("OFF", "ON") == "S3 Object Lock legal hold ON on 2 original(s)"
    assert [d["original_removed"] for a, _, d in recorded if a == "item.disposed"] == [True, False, True, False]
    assert details[-1]["original_kept_until"] == kept["original_kept_until"]
