"""Sharing (evidence.links.sharing) on SQLite and PostgreSQL: what a new link holds and
refuses, revocation recorded once, what a link covers, its URL, and passcodes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from evidence import cases, migrate
from evidence.accounts import users
from evidence.errors import InvalidInput, NotFound
from evidence.links.sharing import (
    MAX_LIFETIME,
    Share,
    check_passcode,
    covers,
    create_link,
    hash_passcode,
    link_actor,
    link_scope_hash,
    link_url,
    list_links,
    revoke_link,
    token_of,
)
from evidence.links.tokens import KeyRing, scope_hash
from evidence.models import CustodyEvent, Item, Link, Upload
from evidence.runtime import Runtime
from evidence.settings import Settings

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACTOR = "user:pc@force.police.uk"


@dataclass
class World:
    rt: Runtime
    keys: KeyRing
    items: list[str]  # of case OP-1, in the order they were received
    other: str  # an item of case OP-2

    def share(self, **changes: Any) -> tuple[Link, str | None]:
        request = dataclasses.replace(Share("OP-1", " CPS@cps.gov.uk ", timedelta(days=7)), **changes)
        with self.rt.db.transaction() as session:
            return create_link(session, self.keys, request, ACTOR, None, T0)

    def actions(self) -> list[str]:
        with self.rt.db.sessions() as session:
            return list(session.scalars(select(CustodyEvent.action).order_by(CustodyEvent.seq)))


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    rt = Runtime.build(Settings(data_dir=tmp_path / "data", database_url=database_url))
    migrate.upgrade(rt.db.engine)
    try:
        with rt.db.transaction() as session:
            officer = users.add_user(session, "pc@force.police.uk", "officer")
            ids: dict[str, list[str]] = {"OP-1": [], "OP-2": []}
            for ref, count in (("OP-1", 3), ("OP-2", 1)):
                case = cases.create_case(session, ref, None, ACTOR)
                for n in range(count):
                    upload = Upload(id=f"{ref[-1]}{n}".ljust(32, "0"), owner_id=officer.id, case_id=case.id,
                                    storage_key="k")
                    session.add(upload)
                    session.flush()
                    item = Item(case_id=case.id, upload_id=upload.id, officer_id=officer.id, filename=f"f{n}",
                                size=1, storage_key="k", created_at=T0 + timedelta(seconds=n))
                    session.add(item)
                    session.flush()
                    ids[ref].append(item.id)
        yield World(rt, KeyRing(tmp_path / "keys", "evidence"), ids["OP-1"], ids["OP-2"][0])
    finally:
        rt.close()


def test_a_case_wide_share_holds_the_items_the_case_has_now(world: World) -> None:
    link, passcode = world.share()
    assert passcode is None and link.passcode_hash is None
    assert link.scope == "case" and link.item_ids == world.items and link.include_future is False
    assert link.recipient == "cps@cps.gov.uk"  # trimmed and lower case
    assert link.permission == "view" and link.expires_at == T0 + timedelta(days=7)
    assert link.created_by == ACTOR and link.kid == world.keys.current and link.uses == 0
    assert world.actions()[-1] == "link.created"


def test_chosen_items_once_each_in_the_order_given(world: World) -> None:
    first, second, _ = world.items
    link, _ = world.share(item_ids=[second, first, second], download=True, max_uses=2)
    assert link.scope == "items" and link.item_ids == [second, first]
    assert link.permission == "download" and link.max_uses == 2


def test_a_passcode_is_returned_once_and_stored_hashed(world: World) -> None:
    link, passcode = world.share(passcode=True)
    assert passcode is not None and len(passcode) == 10 and passcode.isalnum() and passcode.isupper()
    assert link.passcode_hash is not None and passcode not in link.passcode_hash
    assert check_passcode(link.passcode_hash, passcode)


@pytest.mark.parametrize(("changes", "error", "message"), [
    ({"recipient": "not an address"}, InvalidInput, "is not an email address"),
    ({"lifetime": timedelta(seconds=59)}, InvalidInput, "between one minute and 366 days"),
    ({"lifetime": MAX_LIFETIME + timedelta(seconds=1)}, InvalidInput, "between one minute and 366 days"),
    ({"max_uses": 0}, InvalidInput, "at least 1"),
    ({"case_ref": "OP-NONE"}, NotFound, "case OP-NONE does not exist"),
    ({"item_ids": ["0" * 32]}, NotFound, "not items of case OP-1"),
])
def test_what_a_share_refuses(world: World, changes: dict[str, object], error: type[Exception], message: str) -> None:
    before = world.actions()
    with pytest.raises(error, match=message):
        world.share(**changes)
    assert world.actions() == before  # nothing recorded


def test_an_item_of_another_case_is_not_shared(world: World) -> None:
    with pytest.raises(NotFound, match=world.other):
        world.share(item_ids=[world.items[0], world.other])


def test_only_a_case_wide_share_takes_later_items(world: World) -> None:
    with pytest.raises(InvalidInput, match="only a case-wide share"):
        world.share(item_ids=[world.items[0]], include_future=True)
    link, _ = world.share(include_future=True)
    assert link.include_future and link.scope == "case"


def test_the_edges_of_a_lifetime_are_allowed(world: World) -> None:
    assert world.share(lifetime=timedelta(minutes=1))[0].expires_at == T0 + timedelta(minutes=1)
    assert world.share(lifetime=MAX_LIFETIME)[0].expires_at == T0 + MAX_LIFETIME


def test_revoking_is_recorded_once(world: World) -> None:
    link, _ = world.share()
    later = T0 + timedelta(hours=1)
    for _ in range(2):
        with world.rt.db.transaction() as session:
            revoked = revoke_link(session, link.id, "operator:admin", later if _ == 0 else later + timedelta(hours=1))
            assert revoked.revoked_at == later and revoked.revoked_by == "operator:admin"
    assert world.actions().count("link.revoked") == 1
    with world.rt.db.transaction() as session, pytest.raises(NotFound):
        revoke_link(session, "0" * 32, ACTOR, later)


def test_a_cases_links_in_the_order_made(world: World) -> None:
    made = [world.share()[0].id for _ in range(3)]
    with world.rt.db.sessions() as session:
        assert [link.id for link in list_links(session, "OP-1")] == made
        assert list_links(session, "OP-2") == []
        with pytest.raises(NotFound):
            list_links(session, "OP-NONE")


def test_what_a_link_covers(world: World) -> None:
    first, second, third = world.items
    with world.rt.db.sessions() as session:
        items = {i.id: i for i in session.scalars(select(Item))}
    chosen = Link(case_id=items[first].case_id, scope="items", item_ids=[first], include_future=False)
    assert covers(chosen, items[first]) and not covers(chosen, items[second])
    snapshot = Link(case_id=items[first].case_id, scope="case", item_ids=[first, second], include_future=False)
    assert not covers(snapshot, items[third])
    future = Link(case_id=items[first].case_id, scope="case", item_ids=[first], include_future=True)
    assert covers(future, items[third])
    # Never another case's item, whatever the link says.
    assert not covers(future, items[world.other])
    assert not covers(Link(case_id=items[first].case_id, scope="items", item_ids=[world.other],
                           include_future=False), items[world.other])


def test_the_url_is_the_same_each_time_until_the_key_is_retired(world: World) -> None:
    link, _ = world.share()
    url = link_url(world.keys, link, "https://evidence.example")
    assert url == link_url(world.keys, link, "https://evidence.example") == f"https://evidence.example/s/{token_of(world.keys, link)}"
    claims = world.keys.verify(url.rsplit("/", 1)[1], T0)
    assert claims.link_id == link.id and claims.scope_hash == link_scope_hash(link)
    assert link_scope_hash(link) == scope_hash(list(link.item_ids), False)
    (world.keys.folder / f"{link.kid}.pem").unlink()
    assert link_url(world.keys, link, "https://evidence.example") is None


def test_the_actor_names_the_link_and_its_recipient(world: World) -> None:
    link, _ = world.share()
    assert link_actor(link) == f"link:{link.id} (cps@cps.gov.uk)"


# -- passcodes -----------------------------------------------------------------------------


def test_a_passcode_is_forgiving_of_case_and_spacing_only() -> None:
    stored = hash_passcode("ABCDE23456")
    assert check_passcode(stored, "ABCDE23456")
    assert check_passcode(stored, " abcde 23456\n")
    assert not check_passcode(stored, "ABCDE23457")
    assert not check_passcode(stored, "ABCDE2345")
    assert not check_passcode(stored, "")
    assert not check_passcode(stored, "ABCDE23456" + "X" * 100)


def test_each_passcode_hash_has_its_own_salt() -> None:
    assert hash_passcode("ABCDE23456") != hash_passcode("ABCDE23456")


def test_an_unknown_scheme_never_matches() -> None:
    stored = hash_passcode("ABCDE23456")
    assert not check_passcode("bcrypt$" + stored.split("$", 1)[1], "ABCDE23456")
