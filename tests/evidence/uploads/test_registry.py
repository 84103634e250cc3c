"""evidence.uploads.registry: tus upload state in the database, on SQLite and PostgreSQL.
Each change is recorded with its custody entry in one transaction; a finished upload is
sealed and becomes an item; a partial upload is taken by one final upload at most."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from evidence.models import Item, Upload
from evidence.runtime import Runtime
from evidence.uploads.registry import UploadRegistry
from evidence.vault import VaultUnavailable
from tests.evidence.uploads.conftest import CASE, People, actions, upload
from transfer import errors as tus
from transfer.info import UploadInfo


def upload_actions(rt: Runtime) -> list[tuple[str, dict[str, str], str, dict[str, object]]]:
    return [entry for entry in actions(rt) if not entry[0].startswith("case.")]


def loaded(registry: UploadRegistry, upload_id: str) -> UploadInfo:
    found = registry.load(upload_id)
    assert found is not None, upload_id
    return found


def stored(rt: Runtime, info: UploadInfo, data: bytes) -> None:
    """The bytes the tus store would have put at the upload's key."""
    path = rt.settings.data_path / "vault" / info.storage_key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_an_upload_is_recorded_and_read_back_as_it_was(rt: Runtime, registry: UploadRegistry, people: People) -> None:
    info = upload(people.officer, store_state={"upload_id": "s3-id", "parts": [{"n": 1, "size": 5}]})
    registry.add(info)
    assert registry.load(info.id) == info
    assert registry.load("f" * 32) is None
    assert registry.load_many([info.id, "f" * 32]) == {info.id: info}
    assert registry.load_many([]) == {}
    [(action, subject, actor, details)] = upload_actions(rt)
    assert (action, subject, actor) == ("upload.created", {"upload": info.id, "case": CASE}, "user:officer@force.police.uk")
    assert details == {"filename": "exhibit-1.bin", "size": 10, "client_sha256": None, "concat": None, "partials": []}


def test_progress_is_saved_without_a_custody_entry(rt: Runtime, registry: UploadRegistry, people: People) -> None:
    info = upload(people.officer, size=None)
    registry.add(info)
    info.offset, info.size = 4, 10
    info.store_state = {"pending": 4}
    info.expires_at = datetime.now(UTC) + timedelta(hours=3)
    registry.save(info)
    assert registry.load(info.id) == info
    assert [entry[0] for entry in upload_actions(rt)] == ["upload.created"]


def test_a_finished_upload_is_sealed_and_becomes_an_item_once(rt: Runtime, registry: UploadRegistry,
                                                              people: People) -> None:
    info = upload(people.officer, metadata={"filename": "cctv.mp4", "case": CASE, "sha256": "AB" * 32,
                                            "exhibit": "JD/1", "description": "cam 3", "filetype": "video/mp4"})
    registry.add(info)
    stored(rt, info, b"0123456789")
    info.offset, info.finished = 10, True
    registry.complete(info)
    registry.complete(info)  # again (a retried request): nothing more happens
    assert os.stat(rt.settings.data_path / "vault" / info.storage_key).st_mode & 0o777 == 0o400
    assert registry.load(info.id) == info
    with rt.db.sessions() as session:
        [item] = session.scalars(select(Item)).all()
        assert (item.upload_id, item.officer_id, item.filename, item.size, item.storage_key, item.state) == (
            info.id, people.officer, "cctv.mp4", 10, info.storage_key, "received")
        assert (item.client_sha256, item.exhibit, item.description, item.filetype) == (
            "ab" * 32, "JD/1", "cam 3", "video/mp4")
    assert registry.item_for(info.id) == item.id
    assert registry.item_for("f" * 32) is None
    _, completed, original = upload_actions(rt)
    assert completed[:2] == ("upload.completed", {"upload": info.id, "case": CASE})
    action, subject, actor, details = original
    assert (action, subject, actor) == ("original.stored", {"case": CASE, "item": item.id}, "system:transfer")
    assert details["received_from"] == "user:officer@force.police.uk"
    assert details["storage"] == {"backend": "local"} and "0400" in str(details["write_once"])
    assert info.storage_key not in repr(details)  # no server internals on the record


def test_a_finished_partial_upload_is_no_item(rt: Runtime, registry: UploadRegistry, people: People) -> None:
    info = upload(people.officer, concat="partial")
    registry.add(info)
    stored(rt, info, b"0123456789")
    info.offset, info.finished = 10, True
    registry.complete(info)
    assert registry.item_for(info.id) is None
    assert [entry[0] for entry in upload_actions(rt)] == ["upload.created", "upload.completed"]
    assert os.stat(rt.settings.data_path / "vault" / info.storage_key).st_mode & 0o200  # not sealed: it goes later


class Unsealable:
    """The vault with its sealing failing as S3's would when the endpoint is down (the
    S3 outage itself is in test_resilience.py; here only the registry's answer to it)."""

    def __init__(self, vault: Any) -> None:
        self.vault = vault

    def seal(self, key: str) -> None:
        raise VaultUnavailable("S3 did not answer")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.vault, name)


def test_an_upload_that_cannot_be_sealed_is_not_finished(rt: Runtime, people: People) -> None:
    registry = UploadRegistry(rt.db, Unsealable(rt.vault))
    info = upload(people.officer)
    registry.add(info)
    info.offset, info.finished = 10, True
    with pytest.raises(tus.StorageUnavailable, match="could not seal the stored original: S3 did not answer"):
        registry.complete(info)
    assert not loaded(registry, info.id).finished
    assert registry.item_for(info.id) is None
    assert [entry[0] for entry in upload_actions(rt)] == ["upload.created"]


def test_removal_says_who_and_why(rt: Runtime, registry: UploadRegistry, people: People) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    terminated, expired = upload(people.officer, 1), upload(people.officer, 2, expires_at=past)
    used, unused = upload(people.officer, 3, concat="partial"), upload(people.officer, 4, concat="partial")
    for info in (terminated, expired, used, unused):
        registry.add(info)
    for info in (used, unused):
        stored(rt, info, b"0123456789")
        info.offset, info.finished = 10, True
        registry.complete(info)
    registry.add(upload(people.officer, 5, concat="final", partials=[used.id], size=10))
    with rt.db.transaction() as session:
        session.execute(update(Upload).where(Upload.id == unused.id).values(expires_at=past))
    for info in (terminated, expired, used, unused):
        registry.remove(info)
        registry.remove(info)  # again: one entry all the same
    removals = [(subject["upload"], action, actor, details.get("reason"))
                for action, subject, actor, details in upload_actions(rt) if action.startswith("upload.")
                and action not in ("upload.created", "upload.completed")]
    assert removals == [
        (terminated.id, "upload.terminated", "user:officer@force.police.uk", None),
        (expired.id, "upload.expired", "system:transfer", None),
        (used.id, "upload.terminated", "system:transfer", "partial upload used in a final upload; its own copy removed"),
        (unused.id, "upload.expired", "system:transfer", "partial upload never used in a final upload"),
    ]
    assert all(loaded(registry, info.id).terminated for info in (terminated, expired, used, unused))


def test_the_cleanup_is_offered_what_has_expired_and_spent_partials(rt: Runtime, registry: UploadRegistry,
                                                                    people: People) -> None:
    now = datetime.now(UTC)
    alive, late = upload(people.officer, 1), upload(people.officer, 2, expires_at=now - timedelta(seconds=1))
    original = upload(people.officer, 3, expires_at=now - timedelta(seconds=1))
    gone = upload(people.officer, 4, expires_at=now - timedelta(seconds=1))
    waiting, used = upload(people.officer, 5, concat="partial"), upload(people.officer, 6, concat="partial")
    for info in (alive, late, original, gone, waiting, used):
        registry.add(info)
    for info in (original, waiting, used):
        stored(rt, info, b"0123456789")
        info.offset, info.finished = 10, True
        registry.complete(info)
    registry.remove(gone)
    registry.add(upload(people.officer, 7, concat="final", partials=[used.id], size=10))
    assert sorted(info.id for info in registry.expired(now)) == [late.id, used.id]


def test_a_partial_upload_goes_into_one_final_upload_at_most(rt: Runtime, registry: UploadRegistry,
                                                             people: People) -> None:
    pieces = [upload(people.officer, n, concat="partial") for n in (1, 2)]
    for info in pieces:
        registry.add(info)
        stored(rt, info, b"0123456789")
        info.offset, info.finished = 10, True
        registry.complete(info)
    first = upload(people.officer, 3, concat="final", partials=[p.id for p in pieces], size=20)
    registry.add(first)
    assert all(loaded(registry, p.id).consumed for p in pieces)
    before = actions(rt)
    second = upload(people.officer, 4, concat="final", partials=[pieces[1].id], size=10)
    with pytest.raises(tus.BadRequest, match="used in another final upload, or expired"):
        registry.add(second)
    assert registry.load(second.id) is None
    assert actions(rt) == before
    # Nor someone else's, nor an unfinished one.
    theirs = upload(people.colleague, 5, case="OP-HERON", concat="partial")
    unfinished = upload(people.officer, 6, concat="partial")
    registry.add(theirs)
    registry.add(unfinished)
    for named in (theirs, unfinished):
        with pytest.raises(tus.BadRequest):
            registry.add(upload(people.officer, 7, concat="final", partials=[named.id], size=10))
    assert registry.load(f"{7:032x}") is None


def test_a_row_with_an_unknown_concat_kind_is_refused(rt: Runtime, registry: UploadRegistry, people: People) -> None:
    info = upload(people.officer)
    registry.add(info)
    with rt.db.transaction() as session:
        session.execute(update(Upload).where(Upload.id == info.id).values(concat="whole"))
    with pytest.raises(ValueError, match="unknown concat kind 'whole'"):
        registry.load(info.id)
