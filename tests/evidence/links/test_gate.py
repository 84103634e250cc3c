"""The gate every reviewer request passes (evidence.links.gate), called directly with time
passed in, on SQLite and PostgreSQL: the order of its checks, what each refusal is, view
sessions and their cookie, uses, passcodes, and what reaches the custody record.
(Through HTTP, with real media and hostile clients: test_links.py, test_links_hostile.py.)"""

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
from evidence.links.gate import Access, Client, Denied, Gate, PasscodeRequired, TooMany
from evidence.links.sharing import Share, create_link, revoke_link, token_of
from evidence.links.tokens import KeyRing
from evidence.models import CustodyEvent, Item, Link, Upload
from evidence.runtime import Runtime
from evidence.settings import Settings

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REVIEWER = Client.of("203.0.113.7", "Mozilla/5.0", None)


@dataclass
class World:
    rt: Runtime
    gate: Gate
    now: list[datetime]
    items: list[str]  # of OP-1
    other: str  # of OP-2

    def share(self, **changes: Any) -> tuple[Link, str, str | None]:
        """A new link of OP-1: the row, its token, and its passcode if asked for."""
        request = dataclasses.replace(Share("OP-1", "cps@cps.gov.uk", timedelta(days=1)), **changes)
        with self.rt.db.transaction() as session:
            link, passcode = create_link(session, self.gate.keys, request, "operator:test", None, self.now[0])
            return link, token_of(self.gate.keys, link), passcode

    def accessed(self) -> list[dict[str, Any]]:
        with self.rt.db.sessions() as session:
            rows = session.scalars(select(CustodyEvent).where(CustodyEvent.action == "link.accessed")
                                   .order_by(CustodyEvent.seq))
            return [row.details for row in rows]

    def uses(self, link: Link) -> int:
        with self.rt.db.sessions() as session:
            return session.get_one(Link, link.id).uses


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, link_requests_per_minute=10,
                        link_passcode_interval_seconds=1.0, link_passcode_attempts=3, link_session_minutes=60)
    rt = Runtime.build(settings)
    migrate.upgrade(rt.db.engine)
    try:
        with rt.db.transaction() as session:
            officer = users.add_user(session, "pc@force.police.uk", "officer")
            ids: dict[str, list[str]] = {}
            for ref, count in (("OP-1", 2), ("OP-2", 1)):
                case = cases.create_case(session, ref, None, "operator:test")
                ids[ref] = []
                for n in range(count):
                    upload = Upload(id=f"{ref[-1]}{n}".ljust(32, "0"), owner_id=officer.id, case_id=case.id,
                                    storage_key="k")
                    session.add(upload)
                    session.flush()
                    item = Item(case_id=case.id, upload_id=upload.id, officer_id=officer.id, filename=f"f{n}", size=10,
                                storage_key="k", created_at=T0 + timedelta(seconds=n))
                    session.add(item)
                    session.flush()
                    ids[ref].append(item.id)
        now = [T0]
        gate = Gate(rt, KeyRing(tmp_path / "keys", "evidence"), b"c" * 32, lambda: now[0])
        yield World(rt, gate, now, ids["OP-1"], ids["OP-2"][0])
    finally:
        rt.close()


def _refused(world: World, token: str, client: Client = REVIEWER, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(Denied) as refused:
        world.gate.check(token, client, **kwargs)
    return refused.value.status, refused.value.reason


def test_a_first_visit_starts_a_session_and_spends_a_use(world: World) -> None:
    link, token, _ = world.share(max_uses=2)
    access = world.gate.check(token, REVIEWER)
    assert isinstance(access, Access) and access.case_ref == "OP-1" and access.link.id == link.id
    assert access.new_cookie is not None and len(access.session) == 32
    assert world.uses(link) == 1
    # With its cookie, the same session: no new cookie, no use.
    again = world.gate.check(token, dataclasses.replace(REVIEWER, cookie=access.new_cookie))
    assert again.session == access.session and again.new_cookie is None
    assert world.uses(link) == 1


def test_a_forged_token_is_refused_before_anything_else(world: World) -> None:
    _, token, _ = world.share()
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    before = world.accessed()
    assert _refused(world, forged) == (404, "invalid token")
    assert _refused(world, "not-a-token") == (404, "invalid token")
    assert world.accessed() == before  # never recorded: it names no link of ours


def test_revoked_and_expired_links_are_gone(world: World) -> None:
    revoked, revoked_token, _ = world.share()
    _, expiring_token, _ = world.share(lifetime=timedelta(hours=1))
    with world.rt.db.transaction() as session:
        revoke_link(session, revoked.id, "operator:test", T0)
    assert _refused(world, revoked_token) == (410, "revoked")
    world.gate.check(expiring_token, REVIEWER)
    world.now[0] = T0 + timedelta(hours=1)  # the very moment it expires
    assert _refused(world, expiring_token) == (410, "expired")
    assert [d["reason"] for d in world.accessed()] == ["revoked", "expired"]


def test_a_link_edited_behind_its_token_is_not_found(world: World) -> None:
    link, token, _ = world.share(item_ids=[world.items[0]])
    with world.rt.db.transaction() as session:
        session.get_one(Link, link.id).item_ids = list(world.items)  # widened in the database only
    assert _refused(world, token) == (404, "token does not match the link's scope")


def test_an_item_must_be_one_the_link_covers(world: World) -> None:
    _, token, _ = world.share(item_ids=[world.items[0]], download=False)
    assert world.gate.check(token, REVIEWER, world.items[0]).item is not None
    for item_id in (world.items[1], world.other, "../../etc/passwd", "0" * 32):
        assert _refused(world, token, item_id=item_id) == (404, "item not covered by the link")
    assert _refused(world, token, item_id=world.items[0], download=True) == (404, "download not permitted")


def test_uses_count_sessions_and_a_cookieless_client_does_not_burn_them(world: World) -> None:
    link, token, _ = world.share(max_uses=1)
    world.gate.check(token, REVIEWER)
    # The same address again without its cookie, within the session length: no new use.
    world.gate.check(token, REVIEWER)
    assert world.uses(link) == 1
    elsewhere = Client.of("198.51.100.9", "curl", None)
    assert _refused(world, token, elsewhere) == (410, "uses exhausted")
    # An hour on, the first client's use has lapsed too.
    world.now[0] = T0 + timedelta(minutes=61)
    assert _refused(world, token) == (410, "uses exhausted")


def test_head_spends_nothing_and_records_nothing(world: World) -> None:
    link, token, _ = world.share(max_uses=1)
    access = world.gate.check(token, REVIEWER, head=True)
    assert access.new_cookie is None and access.session == ""
    assert world.uses(link) == 0
    world.now[0] = T0 + timedelta(days=2)
    with pytest.raises(Denied):
        world.gate.check(token, REVIEWER, head=True)
    assert world.accessed() == []


def test_cookies_are_for_one_link_until_they_lapse(world: World) -> None:
    _, token, _ = world.share()
    _, other_token, _ = world.share()
    cookie = world.gate.check(token, REVIEWER).new_cookie
    assert cookie is not None
    elsewhere = world.gate.check(other_token, dataclasses.replace(REVIEWER, cookie=cookie))
    assert elsewhere.new_cookie is not None  # not this link's: a new session
    body, mac = cookie.split(".")
    tampered = f"{body[:-2]}AA.{mac}" if not body.endswith("AA") else f"{body[:-2]}BB.{mac}"
    for bad in (tampered, "garbage", "", "a.b.c"):
        assert world.gate.check(token, dataclasses.replace(REVIEWER, cookie=bad)).new_cookie is not None
    world.now[0] = T0 + timedelta(minutes=61)
    assert world.gate.check(token, dataclasses.replace(REVIEWER, cookie=cookie)).new_cookie is not None


def test_a_client_asking_too_fast_is_told_to_wait(world: World) -> None:
    _, token, _ = world.share()
    for _ in range(10):  # a minute's allowance at once
        world.gate.check(token, REVIEWER, head=True)
    with pytest.raises(TooMany) as waiting:
        world.gate.check(token, REVIEWER, head=True)
    assert waiting.value.retry_after >= 1
    # Another client is not held back by this one.
    world.gate.check(token, Client.of("198.51.100.9", "x", None), head=True)


def test_passcodes(world: World) -> None:
    link, token, passcode = world.share(passcode=True)
    assert passcode is not None
    with pytest.raises(PasscodeRequired):
        world.gate.check(token, REVIEWER)
    with pytest.raises(Denied) as wrong:
        world.gate.try_passcode(token, REVIEWER, "WRONG")
    assert wrong.value.status == 403
    with pytest.raises(Denied) as fast:  # one guess a second per link, whoever guesses
        world.gate.try_passcode(token, Client.of("198.51.100.9", "x", None), passcode)
    assert fast.value.status == 429
    world.now[0] += timedelta(seconds=2)
    access = world.gate.try_passcode(token, REVIEWER, passcode.lower())
    assert access.new_cookie is not None
    # The session carries the passcode: no more asking.
    assert world.gate.check(token, dataclasses.replace(REVIEWER, cookie=access.new_cookie)).new_cookie is None
    outcomes = [(d["outcome"], d.get("reason") or d.get("kind")) for d in world.accessed()]
    assert outcomes == [("denied", "wrong passcode"), ("granted", "passcode")]
    assert world.uses(link) == 1


def test_too_many_wrong_passcodes_lock_the_link(world: World) -> None:
    link, token, passcode = world.share(passcode=True)
    statuses = []
    for attempt in range(3):
        world.now[0] = T0 + timedelta(seconds=2 * attempt)
        with pytest.raises(Denied) as refused:
            world.gate.try_passcode(token, REVIEWER, "WRONG")
        statuses.append(refused.value.status)
    assert statuses == [403, 403, 410]
    world.now[0] += timedelta(seconds=2)
    with pytest.raises(Denied) as locked:
        world.gate.try_passcode(token, REVIEWER, passcode or "")
    assert (locked.value.status, locked.value.reason) == (410, "locked after wrong passcodes")
    with world.rt.db.sessions() as session:
        row = session.get_one(Link, link.id)
        assert row.failed_attempts == 3 and row.locked_at is not None
    assert [d.get("locked") for d in world.accessed() if d.get("reason") == "wrong passcode"] == [False, False, True]


def test_a_link_without_a_passcode_takes_none(world: World) -> None:
    _, token, _ = world.share()
    with pytest.raises(Denied) as refused:
        world.gate.try_passcode(token, REVIEWER, "ANYTHING")
    assert refused.value.status == 404


def test_what_is_seen_is_recorded_once_a_window(world: World) -> None:
    link, token, _ = world.share(download=True)
    access = world.gate.check(token, REVIEWER, world.items[0], download=True)
    for first, last in ((0, 4), (5, 9)):
        world.gate.record(access, REVIEWER, "download", (first, last), 10)
    page = world.gate.check(token, REVIEWER)
    world.gate.record(page, REVIEWER, "page")
    recorded = [(d["kind"], d.get("range"), d.get("whole_file")) for d in world.accessed()]
    # The second range of the same window waits for the window's summary.
    assert recorded == [("download", {"first": 0, "last": 4}, False), ("page", None, None)]
    assert world.accessed()[-1]["items"] == sorted(link.item_ids)


def test_a_report_is_counted_for_its_item_only(world: World) -> None:
    _, token, _ = world.share()
    page = world.gate.check(token, REVIEWER)
    with world.rt.db.transaction() as session, pytest.raises(ValueError, match="a report is about an item"):
        world.gate.count_report(session, page, REVIEWER)
    access = world.gate.check(token, REVIEWER, world.items[0])
    with world.rt.db.transaction() as session:
        assert world.gate.count_report(session, access, REVIEWER) is True
    with world.rt.db.transaction() as session:
        assert world.gate.count_report(session, access, REVIEWER) is False
    note = world.gate.report_note(REVIEWER)
    assert note["client_ip"] == "203.0.113.7" and set(note["window"]) == {"from", "until"}


def test_clients_are_cleaned_and_cut() -> None:
    client = Client.of("2001:db8::1%eth0", "agent\r\nX-Injected: 1" + "x" * 500, "c" * 1000)
    assert "\n" not in client.agent and len(client.agent) == 200
    assert client.cookie is not None and len(client.cookie) == 512
    assert client.viewer == "2001:db8::/64"
    assert Client.of("203.0.113.7", "", None).viewer == "203.0.113.7"
