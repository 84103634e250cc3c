"""The gate every reviewer request passes (evidence.links.gate), called directly with time
passed in, on SQLite and PostgreSQL: the order of its checks, what each refusal is, view
sessions and their cookie, uses, passcodes, and what reaches the custody record.
(Through HTTP, with real media and hostile clients: test_links.py, test_links_hostile.py.)"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from evidence import cases, migrate
from evidence.accounts import users
from evidence.links import record as link_record
from evidence.links.gate import Access, Client, Denied, Gate, PasscodeRequired, TooMany
from evidence.links.sharing import Share, create_link, revoke_link, token_of
from evidence.links.tokens import KeyRing
from evidence.links.window import window_of
from evidence.models import CustodyEvent, Derivative, Item, Link, LinkAccess, Upload
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
        # Counts held in memory are written when a test says (flush), not by the thread.
        gate = Gate(rt, KeyRing(tmp_path / "keys", "evidence"), b"c" * 32, lambda: now[0], flush_seconds=3600)
        yield World(rt, gate, now, ids["OP-1"], ids["OP-2"][0])
        gate.close()
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
    # A typo, then the right passcode straight after: in at once (the pace applies to repeated tries).
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


def _rows(world: World) -> dict[str, tuple[int, int, list[Any]]]:
    with world.rt.db.sessions() as session:
        return {row.key: (row.requests, row.bytes_sent, row.ranges) for row in session.scalars(select(LinkAccess))
                if row.key != "use"}


def test_a_revoked_link_stops_an_open_view_session_within_the_freshness_bound(world: World) -> None:
    link, token, _ = world.share()
    opened = world.gate.check(token, REVIEWER, world.items[0])
    viewer = dataclasses.replace(REVIEWER, cookie=opened.new_cookie)
    world.gate.check(token, viewer, world.items[0])  # read and kept fresh for the session
    with world.rt.db.transaction() as session:
        revoke_link(session, link.id, "operator:test", world.now[0])
    # No cookie: a fresh read every time, so refused at once.
    assert _refused(world, token, item_id=world.items[0]) == (410, "revoked")
    # With one: refused once the copy read is older than the bound (1 s), on every node.
    world.now[0] += timedelta(seconds=world.gate.fresh_seconds)
    assert _refused(world, token, viewer, item_id=world.items[0]) == (410, "revoked")
    assert world.gate.fresh_seconds <= 1.0  # the bound the module states


def test_a_view_session_reuses_one_read_for_at_most_the_bound(world: World) -> None:
    link, token, _ = world.share()
    world.now[0] = T0 + timedelta(minutes=30)
    opened = world.gate.check(token, REVIEWER)
    viewer = dataclasses.replace(REVIEWER, cookie=opened.new_cookie)
    world.gate.check(token, viewer)
    with world.rt.db.transaction() as session:
        session.get_one(Link, link.id).locked_at = world.now[0]
    world.now[0] += timedelta(milliseconds=500)
    world.gate.check(token, viewer)  # the read of half a second ago still stands
    world.now[0] -= timedelta(minutes=10)  # a clock stepped back does not stretch the bound
    # (from another address: the rate limit's own clock would hold this one back)
    assert _refused(world, token, dataclasses.replace(viewer, ip="198.51.100.3")) == (410, "locked after wrong passcodes")


def test_a_read_is_kept_only_for_view_sessions(world: World) -> None:
    link, token, _ = world.share()
    world.gate.check(token, REVIEWER)
    with world.rt.db.transaction() as session:
        session.get_one(Link, link.id).locked_at = world.now[0]
    # Same moment, no cookie: read again, so the lock is seen at once.
    assert _refused(world, token) == (410, "locked after wrong passcodes")


def test_the_working_copy_comes_in_the_same_read(world: World) -> None:
    _, token, _ = world.share()
    with world.rt.db.transaction() as session:
        session.add(Derivative(item_id=world.items[0], kind="proxy", key="p", sha256="0" * 64, size=5,
                               content_type="video/mp4"))
    found = world.gate.check(token, REVIEWER, world.items[0], copy="proxy")
    assert found.copy is not None and found.copy.key == "p"
    assert world.gate.check(token, REVIEWER, world.items[1], copy="proxy").copy is None
    assert world.gate.check(token, REVIEWER, world.items[0]).copy is None  # none asked for


def test_requests_after_the_first_of_a_window_are_counted_in_memory_then_written(world: World) -> None:
    _, token, _ = world.share(download=True)
    view = world.gate.check(token, REVIEWER, world.items[0])
    for n in range(5):
        world.gate.record(view, REVIEWER, "view", (n * 10, n * 10 + 9))
    download = world.gate.check(token, REVIEWER, world.items[0], download=True)
    world.gate.record(download, REVIEWER, "download", (0, 3), 10)
    world.gate.record(download, REVIEWER, "download", (6, 7), 10)
    view_key, download_key = f"view:{world.items[0]}", f"download:{world.items[0]}"
    # Only the first of each window is written (with its ledger entry) before a flush...
    assert _rows(world) == {view_key: (1, 10, []), download_key: (1, 4, [[0, 3]])}
    assert [d["kind"] for d in world.accessed()] == ["view", "download"]
    # ...except a whole-file download, written before it is sent.
    world.gate.record(download, REVIEWER, "download", (0, 9), 10)
    assert _rows(world)[download_key] == (2, 14, [[0, 9]])
    assert world.gate.flush() == 2
    assert _rows(world) == {view_key: (5, 50, []), download_key: (3, 16, [[0, 9]])}
    assert world.gate.flush() == 0  # nothing counted twice
    # The window's summary tells of every request.
    end = window_of(world.now[0], world.rt.settings.link_record_window_seconds).end
    assert link_record.close_windows(world.rt.db, end + timedelta(seconds=5), timedelta(seconds=5)) == 2
    summaries = {d["kind"]: d for d in world.accessed() if d.get("summary")}
    assert summaries["view"]["requests"] == 5 and summaries["view"]["bytes_sent"] == 50
    assert summaries["download"]["requests"] == 3 and summaries["download"]["whole_file"] is True


def test_counts_are_written_by_the_flushing_thread_and_at_close(world: World) -> None:
    gate = Gate(world.rt, world.gate.keys, b"c" * 32, lambda: world.now[0], flush_seconds=0.05)
    _, token, _ = world.share()
    try:
        access = gate.check(token, REVIEWER)
        for _ in range(3):
            gate.record(access, REVIEWER, "page")
        deadline = time.monotonic() + 20
        while _rows(world)["page"][0] != 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _rows(world)["page"][0] == 3
        gate._stopping.set()  # the thread stopped: what is counted now is written by close()
        assert gate._flusher is not None
        gate._flusher.join(5)
        gate.record(access, REVIEWER, "page")
        assert _rows(world)["page"][0] == 3
    finally:
        gate.close()
    assert _rows(world)["page"][0] == 4


def test_a_count_of_a_window_that_has_ended_is_written_at_once(world: World) -> None:
    _, token, _ = world.share()
    access = world.gate.check(token, REVIEWER)
    world.gate.record(access, REVIEWER, "page")
    window = world.rt.settings.link_record_window_seconds
    world.now[0] = window_of(world.now[0], window).end  # the next window: a new row and entry
    world.gate.record(access, REVIEWER, "page")
    with world.rt.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(LinkAccess).where(LinkAccess.key == "page")) == 2
    assert [d["kind"] for d in world.accessed()] == ["page", "page"]


def test_counts_kept_when_the_database_refuses_them(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _, token, _ = world.share()
    access = world.gate.check(token, REVIEWER)
    world.gate.record(access, REVIEWER, "page")
    world.gate.record(access, REVIEWER, "page")

    def down(*_: Any) -> int:
        raise OperationalError("UPDATE", {}, Exception("connection refused"))

    monkeypatch.setattr(link_record, "add_counts", down)
    with pytest.raises(OperationalError):
        world.gate.flush()
    monkeypatch.undo()
    assert world.gate.flush() == 1
    assert _rows(world)["page"][0] == 2
