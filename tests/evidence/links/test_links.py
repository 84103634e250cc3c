"""Signed links end to end through real HTTP: a real `evidence serve` with its worker (so
items have proxies and hashes), the CLI beside it, and for tests that pass time in, the same
app in-process on the same data dir with its clock replaced. Nothing is mocked."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from evidence.http.app import create_app
from evidence.links.gate import FRESH_SECONDS, PASSCODE_BURST
from evidence.models import utcnow
from evidence.settings import Settings
from tests.support.inprocess import serving
from tests.support.media import library
from tests.support.server import Server

CASE, OTHER = "OP-HALFORD", "OP-OTHER"
TRICKY = 'CCTV "cam 1" Überwachung.mp4'
REVIEWER = "reviewer@cps.gov.uk"
SETTLED = ("ready", "failed", "quarantined")


@dataclass
class World:
    server: Server
    officer: str
    admin: str
    items: dict[str, dict[str, Any]]  # by filename
    other: dict[str, Any]  # the item of the other case

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.officer}"}
        return requests.request(method, f"{self.server.url}{path}", headers=headers, timeout=30, **kwargs)

    def share(self, *args: str) -> str:
        return self.server.cli("share", "--case", CASE, "--to", REVIEWER, "--expires", "7d", *args, token=self.officer).stdout.strip()

    def ids(self, *names: str) -> list[str]:
        return [self.items[n]["id"] for n in names]

    def entries(self, after: int = -1) -> list[dict[str, Any]]:
        found = self.api("GET", f"/api/v1/audit/entries?after={after}&limit=5000", self.admin)
        assert found.status_code == 200, found.text
        return [e["entry"] for e in found.json()]

    def seq(self) -> int:
        entries = self.entries()
        return entries[-1]["seq"] if entries else -1


def _wait(world_server: Server, token: str, case: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 120
    while True:
        found = requests.get(f"{world_server.url}/api/v1/items?case={case}",
                             headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        if len(found) == count and all(i["state"] in SETTLED for i in found):
            return found  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"{found}\n{world_server.log.read_text()[-3000:]}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("links")
    env = {"EVIDENCE_EMBEDDED_WORKER": "true", "EVIDENCE_LINK_PASSCODE_INTERVAL_SECONDS": "0"}
    server = Server(root, env).start()
    try:
        officer = server.token()
        admin = server.token("admin@force.police.uk", "admin")
        server.case(CASE)
        server.case(OTHER)
        media = library()
        tricky = root / TRICKY
        shutil.copyfile(media.path("h264_aac_mp4"), tricky)
        uploads = [(tricky, CASE, "JD/1"), (media.path("mpeg4_mp3_avi"), CASE, "JD/2"),
                   (media.path("mjpeg_mulaw_avi"), CASE, "JD/3"), (media.path("no_audio_mp4"), OTHER, "XY/1")]
        for path, case, exhibit in uploads:
            server.cli("upload", str(path), "--case", case, "--server", server.url, "--token", officer,
                       "--exhibit", exhibit)
        items = {i["filename"]: i for i in _wait(server, officer, CASE, 3)}
        other = _wait(server, officer, OTHER, 1)[0]
        assert all(i["state"] == "ready" for i in [*items.values(), other]), items
        yield World(server, officer, admin, items, other)
    finally:
        server.stop()


def token_of(url: str) -> str:
    return url.rsplit("/s/", 1)[1]


def proxy_bytes(world: World, item_id: str) -> bytes:
    got = world.api("GET", f"/api/v1/items/{item_id}/derivatives/proxy")
    assert got.status_code == 200
    return got.content


# -- what a link shows ------------------------------------------------------------------------


def test_a_link_for_two_of_three_items_shows_exactly_those(world: World) -> None:
    shared, hidden = world.ids(TRICKY, "mpeg4_mp3.avi"), world.ids("mjpeg_mulaw.avi")[0]
    url = world.share("--item", shared[0], "--item", shared[1], "--download")
    assert url.startswith(f"{world.server.url}/s/")
    page = requests.get(url, timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    text = page.text
    assert f"Case {CASE}" in text
    assert TRICKY not in text and TRICKY in html.unescape(text)  # escaped, and shown as it is
    assert "mpeg4_mp3.avi" in text and "mjpeg_mulaw.avi" not in text and hidden not in text
    for item_id in shared:
        item = next(i for i in world.items.values() if i["id"] == item_id)
        assert item["hashes"]["sha256"] in text and item["exhibit"] in text
        assert f'/items/{item_id}/proxy"' in text and f'/items/{item_id}/original"' in text
        assert f'/items/{item_id}/report"' in text and f'/items/{item_id}/contact-sheet"' in text
    assert text.count('<video controls preload="metadata"') == 2
    assert "<script" not in text and "http://" not in text.replace(world.server.url, "")


def test_a_view_only_link_offers_no_download_and_refuses_one(world: World) -> None:
    item_id = world.ids(TRICKY)[0]
    url = world.share("--item", item_id)
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and "/original" not in page.text
    refused = requests.get(f"{url}/items/{item_id}/original", timeout=10)
    assert refused.status_code == 404 and "Not found" in refused.text and CASE not in refused.text


def test_a_case_wide_share_holds_what_existed_unless_it_says_otherwise(world: World, tmp_path: Path) -> None:
    fixed = world.server.cli("share", "--case", OTHER, "--to", REVIEWER, "--expires", "1d", token=world.officer).stdout.strip()
    future = world.server.cli("share", "--case", OTHER, "--to", REVIEWER, "--expires", "1d",
                              "--include-future", token=world.officer).stdout.strip()
    late = tmp_path / "late.mp4"
    shutil.copyfile(library().path("vfr_mp4"), late)
    world.server.cli("upload", str(late), "--case", OTHER, "--server", world.server.url, "--token", world.officer)
    added = next(i for i in _wait(world.server, world.officer, OTHER, 2) if i["filename"] == "late.mp4")
    assert "late.mp4" not in requests.get(fixed, timeout=10).text
    assert requests.get(f"{fixed}/items/{added['id']}/proxy", timeout=10).status_code == 404
    assert "late.mp4" in requests.get(future, timeout=10).text
    assert requests.get(f"{future}/items/{added['id']}/proxy", timeout=10).status_code == 200
    listed = json.loads(world.server.cli("links", "list", "--case", OTHER, "--json", token=world.officer).stdout)
    by_url = {link["url"]: link for link in listed}
    assert by_url[fixed]["items"] == [world.other["id"]] and by_url[fixed]["include_future"] is False
    assert by_url[future]["include_future"] is True and by_url[future]["scope"] == "case"


# -- media: Range, digests, names -------------------------------------------------------------


def test_range_requests_at_the_start_middle_end_and_beyond(world: World) -> None:
    item_id = world.ids(TRICKY)[0]
    url = f"{world.share('--item', item_id)}/items/{item_id}/proxy"
    whole = proxy_bytes(world, item_id)
    size = len(whole)
    with requests.Session() as browser:
        full = browser.get(url, timeout=10)
        assert full.status_code == 200 and full.content == whole
        assert full.headers["Accept-Ranges"] == "bytes" and full.headers["Content-Length"] == str(size)
        cases = {"bytes=0-99": (0, 99), f"bytes={size // 2}-{size // 2 + 999}": (size // 2, size // 2 + 999),
                 "bytes=-500": (size - 500, size - 1), f"bytes={size - 10}-": (size - 10, size - 1),
                 f"bytes={size - 5}-{size + 100}": (size - 5, size - 1), "bytes=5-9,20-29": (5, 9)}
        for header, (first, last) in cases.items():
            part = browser.get(url, headers={"Range": header}, timeout=10)
            assert part.status_code == 206, header
            assert part.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
            assert part.content == whole[first : last + 1] and part.headers["Content-Length"] == str(last - first + 1)
        for header in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
            beyond = browser.get(url, headers={"Range": header}, timeout=10)
            assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"
        ignored = browser.get(url, headers={"Range": "bytes=9-1"}, timeout=10)
        assert ignored.status_code == 200 and ignored.content == whole
        head = browser.head(url, timeout=10)
        assert head.status_code == 200 and head.headers["Content-Length"] == str(size) and head.content == b""
        stale = browser.get(url, headers={"Range": "bytes=0-9", "If-Range": '"not-this-one"'}, timeout=10)
        assert stale.status_code == 200 and len(stale.content) == size


def test_a_download_matches_its_repr_digest_and_is_named_safely(world: World) -> None:
    item = world.items[TRICKY]
    url = f"{world.share('--item', item['id'], '--download')}/items/{item['id']}/original"
    got = requests.get(url, timeout=30)
    assert got.status_code == 200 and got.headers["Content-Type"] == "application/octet-stream"
    match = re.fullmatch(r"sha-256=:([A-Za-z0-9+/=]+):", got.headers["Repr-Digest"])
    assert match and base64.b64decode(match.group(1)) == hashlib.sha256(got.content).digest()
    assert hashlib.sha256(got.content).hexdigest() == item["hashes"]["sha256"]
    disposition = got.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="CCTV _cam 1_ Uberwachung.mp4"; ')
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == TRICKY
    tail = requests.get(url, headers={"Range": "bytes=-100"}, timeout=10)
    assert tail.status_code == 206 and tail.content == got.content[-100:]
    head = requests.head(url, timeout=10)
    assert head.status_code == 200 and head.headers["Repr-Digest"] == got.headers["Repr-Digest"]


# -- refusals ---------------------------------------------------------------------------------


def _tamper(token: str) -> dict[str, str]:
    header_b64, payload_b64, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    header, payload = json.loads(base64.urlsafe_b64decode(pad(header_b64))), json.loads(base64.urlsafe_b64decode(pad(payload_b64)))
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    import hmac

    hs_input = f"{enc({**header, 'alg': 'HS256'})}.{payload_b64}"
    hs = base64.urlsafe_b64encode(hmac.new(b"public key", hs_input.encode(), "sha256").digest()).rstrip(b"=").decode()
    variants = {f"claim {k}": f"{header_b64}.{enc({**payload, k: v})}.{signature}" for k, v in
                {"sub": "f" * 32, "exp": payload["exp"] + 86400, "aud": "x", "iss": "x", "iat": payload["iat"] - 1,
                 "scp": "0" * 32}.items()}
    variants.update({
        "signature cut": token[:-20], "no signature": f"{header_b64}.{payload_b64}.",
        "alg none": f"{enc({**header, 'alg': 'none'})}.{payload_b64}.",
        "HS256": f"{hs_input}.{hs}", "RS256 header": f"{enc({**header, 'alg': 'RS256'})}.{payload_b64}.{signature}",
        "unknown kid": f"{enc({**header, 'kid': '20200101T000000Z-00000000'})}.{payload_b64}.{signature}",
        "kid traversal": f"{enc({**header, 'kid': '../token.secret'})}.{payload_b64}.{signature}",
    })
    return variants


def test_tampered_tokens_get_a_plain_404_and_touch_nothing(world: World) -> None:
    item_id = world.ids(TRICKY)[0]
    url = world.share("--item", item_id, "--download")
    token = token_of(url)
    before = world.seq()
    for name, forged in _tamper(token).items():
        for path in ("", f"/items/{item_id}/original", f"/items/{item_id}/proxy"):
            got = requests.get(f"{world.server.url}/s/{forged}{path}", timeout=10)
            assert got.status_code == 404, (name, path)
            assert "Not found" in got.text and CASE not in got.text and "set-cookie" not in got.headers, name
    assert world.seq() == before  # forged requests are refused before the database is reached


@pytest.mark.parametrize("path", [
    "/items/../../etc/passwd", "/items/%2e%2e/%2e%2e/etc/passwd", "/items/..%2f..%2fetc%2fpasswd/original",
    "/items/%252e%252e%252fetc%252fpasswd/original", "/items/..%5c..%5cetc%5cpasswd/proxy",
    "/items/{item}/../../../keys/token.secret", "/items/{item}/hls", "/items/{item}/probe",
    "/items/{item}%00/original", "/../../etc/passwd", "/items//original",
])
def test_path_traversal_finds_nothing(world: World, path: str) -> None:
    item_id = world.ids(TRICKY)[0]
    token = token_of(world.share("--item", item_id, "--download"))
    raw = f"/s/{token}{path.replace('{item}', item_id)}"
    # Sent exactly as written, not normalised by the client.
    session = requests.Session()
    prepared = requests.Request("GET", f"{world.server.url}{raw}").prepare()
    prepared.url = f"{world.server.url}{raw}"
    got = session.send(prepared, timeout=10)
    # A NUL anywhere in a URL is refused before routing (400), the rest as any other refusal.
    assert got.status_code == (400 if "%00" in path else 404), (path, got.status_code)
    assert "root:" not in got.text and CASE not in got.text and "BEGIN" not in got.text


def test_an_item_of_another_case_or_not_shared_is_not_found(world: World) -> None:
    shared, unshared = world.ids(TRICKY)[0], world.ids("mjpeg_mulaw.avi")[0]
    url = world.share("--item", shared, "--download")
    before = world.seq()
    for item_id in (world.other["id"], unshared, "0" * 32):
        for what in ("original", "proxy", "report", "contact-sheet"):
            got = requests.get(f"{url}/items/{item_id}/{what}", timeout=10)
            assert got.status_code == 404 and "Not found" in got.text
            assert OTHER not in got.text and CASE not in got.text
    denied = [e for e in world.entries(before) if e["action"] == "link.accessed"]
    assert denied and all(e["details"]["reason"] == "item not covered by the link" for e in denied)
    # One entry per kind of refusal from this client in the window, not one per request or per
    # item asked for; nothing taken from the URL is on it.
    assert len(denied) == 1 and "item" not in denied[0]["subject"] and "requested_item" not in denied[0]["details"]


def test_revocation_takes_effect_mid_session(world: World) -> None:
    item_id = world.ids(TRICKY)[0]
    url = world.share("--item", item_id)
    link_id = next(link["id"] for link in world.api("GET", f"/api/v1/links?case={CASE}").json() if link["url"] == url)
    with requests.Session() as browser:
        assert browser.get(url, timeout=10).status_code == 200
        assert browser.get(f"{url}/items/{item_id}/proxy", headers={"Range": "bytes=0-9"}, timeout=10).status_code == 206
        assert world.api("POST", f"/api/v1/links/{link_id}/revoke").status_code == 200
        # A view session's read of its link is reused for at most FRESH_SECONDS (1 s), on
        # every API node: past that, the very next request is refused.
        time.sleep(FRESH_SECONDS)
        after = browser.get(f"{url}/items/{item_id}/proxy", headers={"Range": "bytes=10-19"}, timeout=10)
        assert after.status_code == 410 and "This link is no longer valid" in after.text and CASE not in after.text
        assert browser.get(url, timeout=10).status_code == 410
    listed = world.api("GET", f"/api/v1/links?case={CASE}").json()
    assert next(link for link in listed if link["id"] == link_id)["revoked_at"] is not None


def test_use_limits_count_sessions_not_requests(world: World) -> None:
    item_id = world.ids(TRICKY)[0]
    url = world.share("--item", item_id, "--max-uses", "1")
    with requests.Session() as first:
        assert first.get(url, timeout=10).status_code == 200
        for offset in range(5):  # seeking in the same session uses nothing more
            got = first.get(f"{url}/items/{item_id}/proxy", headers={"Range": f"bytes={offset}-{offset}"}, timeout=10)
            assert got.status_code == 206
        assert first.get(url, timeout=10).status_code == 200
    with requests.Session() as again:  # the same client without its cookie: still its one use
        assert again.get(url, timeout=10).status_code == 200
    with requests.Session() as second:  # another client (through the proxy the server trusts)
        refused = second.get(url, headers={"X-Forwarded-For": "198.51.100.9"}, timeout=10)
        assert refused.status_code == 410 and "no longer valid" in refused.text


def test_passcode_lockout(world: World) -> None:
    item_id = world.ids(TRICKY)[0]
    result = world.server.cli("share", "--case", CASE, "--to", REVIEWER, "--expires", "1d", "--item", item_id,
                              "--passcode", token=world.officer)
    url, code = result.stdout.strip(), result.stderr.strip().rsplit(" ", 1)[1]
    assert code not in result.stdout
    form = requests.get(url, timeout=10)
    assert form.status_code == 200 and '<form method="post"' in form.text and "mpeg4" not in form.text
    assert requests.get(f"{url}/items/{item_id}/proxy", timeout=10).status_code == 404
    with requests.Session() as browser:  # the right passcode opens the page; case and spacing are forgiven
        opened = browser.post(url, data={"passcode": f" {code[:5].lower()} {code[5:]}"}, timeout=10)
        assert opened.status_code == 200 and TRICKY in html.unescape(opened.text)
        assert browser.get(f"{url}/items/{item_id}/proxy", timeout=10).status_code == 200
    with requests.Session() as attacker:
        for attempt in range(1, 5):
            wrong = attacker.post(url, data={"passcode": f"WRONG{attempt}"}, timeout=10)
            assert wrong.status_code == 403 and "not right" in wrong.text
        locked = attacker.post(url, data={"passcode": "WRONG5"}, timeout=10)
        assert locked.status_code == 410
        assert attacker.post(url, data={"passcode": code}, timeout=10).status_code == 410  # even the right one
    assert requests.get(url, timeout=10).status_code == 410
    link = next(link for link in world.api("GET", f"/api/v1/links?case={CASE}").json() if link["url"] == url)
    assert link["locked_at"] and link["failed_attempts"] == 5
    failures = [e for e in world.entries() if e["subject"].get("link") == link["id"] and e["details"].get("reason") == "wrong passcode"]
    assert [e["details"]["attempt"] for e in failures] == [1, 2, 3, 4, 5] and failures[-1]["details"]["locked"] is True


# -- the API ----------------------------------------------------------------------------------


def test_the_api_shares_lists_and_revokes(world: World) -> None:
    item_id = world.ids("mpeg4_mp3.avi")[0]
    body = {"case": CASE, "to": REVIEWER, "expires_in": 3600, "items": [item_id], "download": True, "max_uses": 3}
    made = world.api("POST", "/api/v1/links", json=body)
    assert made.status_code == 201, made.text
    link = made.json()
    assert link["items"] == [item_id] and link["permission"] == "download" and link["issued_passcode"] is None
    assert requests.get(link["url"], timeout=10).status_code == 200
    auditor = world.server.token("auditor@force.police.uk", "auditor")
    assert world.api("POST", "/api/v1/links", auditor, json=body).status_code == 403
    assert world.api("GET", f"/api/v1/links?case={CASE}", auditor).status_code == 403
    assert requests.post(f"{world.server.url}/api/v1/links", json=body, timeout=10).status_code == 401
    stranger = world.server.token("stranger@force.police.uk", "officer")  # not assigned: the case is not there for them
    assert world.api("POST", "/api/v1/links", stranger, json=body).status_code == 404
    assert world.api("GET", f"/api/v1/links?case={CASE}", stranger).status_code == 404
    assert world.api("POST", f"/api/v1/links/{link['id']}/revoke", stranger).status_code == 404
    listed = world.api("GET", f"/api/v1/links?case={CASE}").json()
    assert next(x for x in listed if x["id"] == link["id"])["url"] == link["url"]  # the same URL, shown again
    bad = world.api("POST", "/api/v1/links", json={**body, "items": [world.other["id"]]})
    assert bad.status_code == 404
    for absurd in ({"expires_in": 86_400_000_000_000}, {"expires_in": 367 * 86400}, {"max_uses": 10**12},
                   {"items": ["x" * 100_000]}):  # refused as input, never a 500
        assert world.api("POST", "/api/v1/links", json={**body, **absurd}).status_code == 422, absurd
    assert world.server.cli("share", "--case", CASE, "--to", REVIEWER, "--expires", "1000000000d",
                            check=False, token=world.officer).returncode == 2
    revoked = world.api("POST", f"/api/v1/links/{link['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert requests.get(link["url"], timeout=10).status_code == 410
    cli = json.loads(world.server.cli("links", "list", "--case", CASE, "--json", token=world.officer).stdout)
    mine = next(x for x in cli if x["id"] == link["id"])
    assert {"id", "url", "to", "items", "expires_at", "revoked_at", "uses"} <= set(mine) and mine["uses"] == 1


def test_a_rotated_key_signs_new_links_and_old_ones_still_work(world: World) -> None:
    item_id = world.ids(TRICKY)[0]
    old = world.share("--item", item_id)
    kid = world.server.cli("links", "rotate-key").stdout.strip()
    new = world.share("--item", item_id)
    header = json.loads(base64.urlsafe_b64decode(token_of(new).split(".")[0] + "=="))
    assert header == {"alg": "EdDSA", "kid": kid, "typ": "JWT"}
    assert requests.get(old, timeout=10).status_code == 200 and requests.get(new, timeout=10).status_code == 200


# -- time passed in ---------------------------------------------------------------------------


@pytest.fixture
def clocked(world: World) -> Iterator[tuple[str, Any]]:
    """The same app in this process, on the same data dir, with a clock the test turns."""
    settings = Settings(data_dir=world.server.data_dir, embedded_worker=False, public_url="")
    app = create_app(settings)
    now = [utcnow()]
    app.state.link_gate.clock = lambda: now[0]
    with serving(app) as url:
        yield url, now


def test_expiry_with_time_passed_in(world: World, clocked: tuple[str, Any]) -> None:
    url, now = clocked
    item_id = world.ids(TRICKY)[0]
    link = world.server.cli("share", "--case", CASE, "--to", REVIEWER, "--expires", "1h", "--item", item_id, token=world.officer).stdout.strip()
    path = link.split(world.server.url, 1)[1]
    with requests.Session() as browser:
        assert browser.get(f"{url}{path}", timeout=10).status_code == 200
        now[0] += timedelta(minutes=59)
        assert browser.get(f"{url}{path}/items/{item_id}/proxy", headers={"Range": "bytes=0-0"}, timeout=10).status_code == 206
        now[0] += timedelta(minutes=2)
        expired = browser.get(f"{url}{path}/items/{item_id}/proxy", timeout=10)
        assert expired.status_code == 410 and "no longer valid" in expired.text
    link_id = next(x["id"] for x in world.api("GET", f"/api/v1/links?case={CASE}").json() if x["url"] == link)
    reasons = [e["details"].get("reason") for e in world.entries() if e["subject"].get("link") == link_id]
    assert reasons.count("expired") == 1


def test_passcode_attempts_are_rate_limited(world: World, clocked: tuple[str, Any]) -> None:
    url, now = clocked
    item_id = world.ids(TRICKY)[0]
    link = world.server.cli("share", "--case", CASE, "--to", REVIEWER, "--expires", "1h", "--item", item_id,
                            "--passcode", token=world.officer).stdout.strip()
    path = link.split(world.server.url, 1)[1]
    # A few quick tries pass (a typo is not punished); repeated ones are paced, one a second per link.
    for _ in range(PASSCODE_BURST):
        assert requests.post(f"{url}{path}", data={"passcode": "NOPE"}, timeout=10).status_code == 403
    fast = requests.post(f"{url}{path}", data={"passcode": "NOPE"}, timeout=10)
    assert fast.status_code == 429 and fast.headers["Retry-After"] == "1"
    now[0] += timedelta(seconds=2)
    assert requests.post(f"{url}{path}", data={"passcode": "NOPE"}, timeout=10).status_code == 403


# -- the record -------------------------------------------------------------------------------


def test_the_ledger_and_the_items_report_hold_every_link_event(world: World, tmp_path: Path) -> None:
    item = world.items["mjpeg_mulaw.avi"]
    before = world.seq()
    url = world.share("--item", item["id"], "--download")
    with requests.Session() as browser:
        browser.headers["User-Agent"] = "reviewer-browser/1.0"
        browser.get(url, timeout=10)
        browser.get(f"{url}/items/{item['id']}/contact-sheet", timeout=10)
        for offset in range(0, 40, 4):  # a player seeking: many Range requests, one record
            browser.get(f"{url}/items/{item['id']}/proxy", headers={"Range": f"bytes={offset}-{offset + 3}"}, timeout=10)
        browser.get(url, timeout=10)
        for _ in range(2):  # downloads in one window: one entry now, a summary when it closes
            browser.get(f"{url}/items/{item['id']}/original", timeout=30)
        browser.get(f"{url}/items/{item['id']}/original", headers={"Range": "bytes=0-99"}, timeout=30)
    link_id = next(x["id"] for x in world.api("GET", f"/api/v1/links?case={CASE}").json() if x["url"] == url)
    world.server.cli("links", "revoke", link_id, token=world.officer)
    requests.get(url, timeout=10)
    requests.get(url, timeout=10)
    mine = [e for e in world.entries(before) if e["subject"].get("link") == link_id]
    kinds = Counter((e["action"], e["details"].get("kind") or e["details"].get("reason")) for e in mine)
    assert kinds == Counter({("link.created", None): 1, ("link.accessed", "page"): 1, ("link.accessed", "view"): 1,
                             ("link.accessed", "download"): 1, ("link.revoked", None): 1,
                             ("link.accessed", "revoked"): 1}), kinds
    created = next(e for e in mine if e["action"] == "link.created")
    assert created["details"]["items"] == [item["id"]] and created["details"]["to"] == REVIEWER
    downloads = [e["details"] for e in mine if e["details"].get("kind") == "download"]
    assert [d["range"] for d in downloads] == [{"first": 0, "last": item["size"] - 1}]
    assert downloads[0]["whole_file"] is True and downloads[0]["window"]["from"] < downloads[0]["window"]["until"]
    assert all(d["user_agent"] == "reviewer-browser/1.0" and d["client_ip"] == "127.0.0.1" for d in downloads)
    report = tmp_path / "report.json"
    world.server.cli("audit", "report", item["id"], "--format", "json", "-o", str(report))
    in_report = Counter(e["entry"]["action"] for e in json.loads(report.read_text())["entries"]
                        if e["entry"]["subject"].get("link") == link_id)
    assert in_report == Counter({"link.created": 1, "link.accessed": 4, "link.revoked": 1})
    assert world.server.cli("audit", "verify").returncode == 0


def test_the_reviewer_can_fetch_the_items_custody_report(world: World) -> None:
    item = world.items[TRICKY]
    url = world.share("--item", item["id"])
    got = requests.get(f"{url}/items/{item['id']}/report", timeout=30)
    assert got.status_code == 200 and got.text.startswith("<!DOCTYPE html") and item["hashes"]["sha256"] in got.text
    exported = [e for e in world.entries() if e["action"] == "report.exported" and e["subject"]["item"] == item["id"]]
    assert exported[-1]["actor"].startswith("link:")
