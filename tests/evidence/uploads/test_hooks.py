"""evidence.uploads.hooks: what the application decides for the tus server, on SQLite and
PostgreSQL. Who may upload, what a new upload must carry and where it goes (never where
the client says), whether its owner may still touch it, and who hears of a new item."""

from __future__ import annotations

import pytest

from evidence import cases
from evidence.models import User
from evidence.runtime import Runtime
from evidence.uploads.hooks import UploadHooks
from evidence.uploads.registry import UploadRegistry
from tests.evidence.uploads.conftest import ACTOR, CASE, OTHER_CASE, People, upload
from transfer import errors as tus


@pytest.fixture
def hooks(rt: Runtime, registry: UploadRegistry) -> UploadHooks:
    return UploadHooks(rt.db, rt.auth, registry)


def test_officers_and_admins_upload_and_no_one_else(hooks: UploadHooks, people: People) -> None:
    assert hooks.authenticate({"authorization": f"Bearer {people.tokens['officer']}"}) == people.officer
    assert hooks.authenticate({"authorization": f"Bearer {people.tokens['admin']}"}) == people.admin
    with pytest.raises(tus.Forbidden, match="officer"):
        hooks.authenticate({"authorization": f"Bearer {people.tokens['reviewer']}"})
    for authorization in (None, "Bearer nonsense", people.tokens["officer"]):
        with pytest.raises(tus.Unauthorized) as caught:
            hooks.authenticate({"authorization": authorization} if authorization else {})
        assert caught.value.headers["WWW-Authenticate"] == "Bearer"


def test_a_new_upload_gets_a_key_of_the_servers_choosing(hooks: UploadHooks, people: People) -> None:
    info = upload(people.officer, metadata={"filename": "../../etc/passwd", "case": CASE, "sha256": "aB" * 32})
    info.storage_key = ""
    hooks.prepare(info, [])
    assert info.storage_key == f"originals/{info.id}"
    piece = upload(people.officer, 2, concat="partial", metadata={"case": CASE})  # no filename needed
    piece.storage_key = ""
    hooks.prepare(piece, [])
    assert piece.storage_key == f"uploads/partials/{piece.id}"


@pytest.mark.parametrize(("metadata", "message"), [
    ({"case": CASE}, "must include 'filename'"),
    ({"filename": "  ", "case": CASE}, "must include 'filename'"),
    ({"filename": "a.bin"}, "must include 'case'"),
    ({"filename": "a.bin", "case": CASE, "sha256": "ab" * 31}, "64 hexadecimal characters"),
    ({"filename": "a.bin", "case": CASE, "sha256": "zz" * 32}, "64 hexadecimal characters"),
])
def test_a_new_upload_must_carry_its_filename_case_and_a_proper_hash(hooks: UploadHooks, people: People,
                                                                     metadata: dict[str, str], message: str) -> None:
    with pytest.raises(tus.BadRequest, match=message):
        hooks.prepare(upload(people.officer, metadata=metadata), [])


def test_a_case_out_of_reach_reads_like_one_that_does_not_exist(hooks: UploadHooks, people: People) -> None:
    answers = []
    for case in (OTHER_CASE, "OP-NO-SUCH-CASE"):
        with pytest.raises(tus.NotFound) as caught:
            hooks.prepare(upload(people.officer, metadata={"filename": "a.bin", "case": case}), [])
        answers.append(caught.value.message.replace(case, "REF"))
    assert answers[0] == answers[1] and "is not one of your cases" in answers[0]


def test_a_final_upload_is_made_of_its_own_cases_partials(hooks: UploadHooks, people: People) -> None:
    ours = upload(people.officer, 1, concat="partial", metadata={"case": CASE})
    elsewhere = upload(people.officer, 2, concat="partial", metadata={"case": OTHER_CASE})
    joined = upload(people.officer, 3, concat="final")
    hooks.prepare(joined, [ours])
    with pytest.raises(tus.BadRequest, match=f"partial upload {elsewhere.id} was made for another case"):
        hooks.prepare(upload(people.officer, 4, concat="final"), [ours, elsewhere])


def test_rights_are_checked_again_on_every_request(rt: Runtime, hooks: UploadHooks, registry: UploadRegistry,
                                                   people: People) -> None:
    info = upload(people.officer)
    registry.add(info)
    hooks.authorize(people.officer, info)
    with rt.db.transaction() as session:
        cases.unassign(session, cases.get_case(session, CASE), session.get_one(User, people.officer), ACTOR)
    with pytest.raises(tus.Forbidden, match=f"no longer assigned to case '{CASE}'"):
        hooks.authorize(people.officer, info)
    with pytest.raises(tus.Unauthorized):
        hooks.authorize("0" * 32, info)


def test_an_upload_with_no_case_is_for_admins_alone(hooks: UploadHooks, registry: UploadRegistry,
                                                    people: People) -> None:
    mine, theirs = upload(people.admin, 1, case=None), upload(people.officer, 2, case=None)
    registry.add(mine)
    registry.add(theirs)
    hooks.authorize(people.admin, mine)
    with pytest.raises(tus.Forbidden, match="belongs to no case"):
        hooks.authorize(people.officer, theirs)


def test_each_listener_hears_of_a_new_item_even_when_another_fails(rt: Runtime, hooks: UploadHooks,
                                                                   registry: UploadRegistry, people: People) -> None:
    heard: list[str] = []

    def broken(item_id: str) -> None:
        raise RuntimeError("the queue is down")

    hooks.on_item_received.extend([broken, heard.append])
    info, piece = upload(people.officer, 1), upload(people.officer, 2, concat="partial")
    for made in (info, piece):
        registry.add(made)
        path = rt.settings.data_path / "vault" / made.storage_key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"0123456789")
        made.offset, made.finished = 10, True
        registry.complete(made)
        hooks.completed(made)
    assert heard == [registry.item_for(info.id)]  # the partial upload is no item: no one hears of it
