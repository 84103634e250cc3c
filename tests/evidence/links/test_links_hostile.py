"""Hostile clients against signed links, through a real `evidence serve` on SQLite and on
PostgreSQL: the custody record stays complete (every byte range of an original served is on
it) and bounded (a flood of requests adds a handful of entries), HEAD spends nothing,
dropping the cookie does not burn uses, tokens stay out of the log, reviewers see no server
internals, and a client hammering a link gets 429."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import shutil
import socket
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from evidence.models import Item
from tests.support import postgres
from tests.support.media import library
from tests.support.server import Server

CASE, OTHER = "OP-HOSTILE", "OP-ELSEWHERE"
REVIEWER = "reviewer@cps.gov.uk"
SETTLED = ("ready", "failed", "quarantined")
HOST = socket.gethostname()
# The host name as a word of its own (it may be as short as "vm", which base64 text holds by chance).
HOST_WORD = re.compile(rf"(?<![A-Za-z0-9+/=]){re.escape(HOST)}(?![A-Za-z0-9+/=])")


@dataclass
class Site:
    server: Server
    officer: str
    admin: str
    items: dict[str, dict[str, Any]]  # by filename

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.officer}"}
        return requests.request(method, f"{self.server.url}{path}", headers=headers, timeout=60, **kwargs)

    def share(self, *items: str, download: bool = True, max_uses: int | None = None) -> tuple[str, str]:
        """A new link (through the API, as an officer would): its URL and id."""
        body = {"case": CASE, "to": REVIEWER, "expires_in": 7 * 86400, "items": list(items), "download": download,
                "max_uses": max_uses}
        made = self.api("POST", "/api/v1/links", json=body)
        assert made.status_code == 201, made.text
        return made.json()["url"], made.json()["id"]

    def revoke(self, link_id: str) -> None:
        assert self.api("POST", f"/api/v1/links/{link_id}/revoke").status_code == 200

    def entries(self, after: int = -1) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self.api("GET", f"/api/v1/audit/entries?after={after}&limit=5000", self.admin)
            assert page.status_code == 200, page.text
            got = [e["entry"] for e in page.json()]
            if not got:
                return found
            found += got
            after = got[-1]["seq"]

    def seq(self) -> int:
        entries = self.entries(max(self._size() - 50, -1))
        return entries[-1]["seq"] if entries else -1

    def _size(self) -> int:
        return int(self.api("GET", "/api/v1/audit/checkpoint", self.admin).json().get("size", 0))

    def about(self, link_id: str, after: int) -> list[dict[str, Any]]:
        return [e for e in self.entries(after) if e["subject"].get("link") == link_id]

    def uses(self, link_id: str, case: str = CASE) -> int:
        return int(next(x for x in self.api("GET", f"/api/v1/links?case={case}").json() if x["id"] == link_id)["uses"])


def _upload(server: Server, token: str, path: Path, case: str) -> None:
    """One tus request (creation-with-upload): the officer's whole file."""
    given = {"filename": path.name, "case": case, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in given.items())
    done = requests.post(f"{server.url}/files/", data=path.read_bytes(), timeout=30, headers={
        "Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", "Upload-Length": str(path.stat().st_size),
        "Upload-Metadata": metadata, "Content-Type": "application/offset+octet-stream"})
    assert done.status_code == 201 and done.headers["Upload-Offset"] == str(path.stat().st_size), done.text


def _items(server: Server, token: str, case: str, count: int, settled: bool) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 120
    while True:
        found = requests.get(f"{server.url}/api/v1/items?case={case}", headers={"Authorization": f"Bearer {token}"},
                             timeout=10).json()
        if len(found) == count and (not settled or all(i["state"] in SETTLED for i in found)):
            return found  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"{found}\n{server.log.read_text()[-3000:]}"
        time.sleep(0.2)


def _site(root: Path, database: str, env: dict[str, str], media: bool) -> Iterator[Site]:
    url = postgres.create_database() if database == "postgres" else ""
    server = Server(root, {**env, **({"EVIDENCE_DATABASE_URL": url} if url else {})})
    try:
        server.start()
        officer = server.token()
        admin = server.token("admin@force.police.uk", "admin")
        site = Site(server, officer, admin, {})
        for ref in (CASE, OTHER):
            assert site.api("POST", "/api/v1/cases", json={"ref": ref}).status_code == 201
        files = [root / "extraction.bin"]
        files[0].write_bytes(random.Random(7).randbytes(100_000))
        if media:
            files.append(root / "CCTV cam 2.mp4")
            shutil.copyfile(library().path("h264_aac_mp4"), files[-1])
        other = root / "elsewhere.bin"
        other.write_bytes(b"another case's original")
        for path in files:
            _upload(server, officer, path, CASE)
        _upload(server, officer, other, OTHER)
        found = _items(server, officer, CASE, len(files), media) + _items(server, officer, OTHER, 1, media)
        site.items = {i["filename"]: i for i in found}
        yield site
    finally:
        server.stop()
        if url:
            postgres.drop_database(url)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server with its worker (so the clip has working copies) and the default record window."""
    env = {"EVIDENCE_EMBEDDED_WORKER": "true", "EVIDENCE_LINK_REQUESTS_PER_MINUTE": "1000000"}
    yield from _site(tmp_path_factory.mktemp("hostile"), request.param, env, media=True)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def brief(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server whose record windows close every two seconds, with a tight request limit."""
    env = {"EVIDENCE_LINK_RECORD_WINDOW_SECONDS": "2", "EVIDENCE_CHECKPOINT_INTERVAL_SECONDS": "0.25",
           "EVIDENCE_LINK_REQUESTS_PER_MINUTE": "40"}
    yield from _site(tmp_path_factory.mktemp("brief"), request.param, env, media=False)


# -- a flood of hostile requests ---------------------------------------------------------------


def _flood(site: Site, url: str, count: int) -> Counter[int]:
    """``count`` cookieless requests with varied agents, paths, items, methods and ranges."""
    clip, extraction = site.items["CCTV cam 2.mp4"], site.items["extraction.bin"]
    elsewhere = site.items["elsewhere.bin"]["id"]
    rng = random.Random(count)

    def one(n: int) -> int:
        item = rng.choice([clip, extraction, clip])
        size = item["size"]
        first = rng.randrange(size)
        paths = ["", f"/items/{item['id']}/original", f"/items/{item['id']}/proxy", f"/items/{item['id']}/poster",
                 f"/items/{item['id']}/contact-sheet", f"/items/{elsewhere}/original", f"/items/{n:032x}/proxy",
                 f"/items/{item['id']}/original", f"/items/{item['id']}/probe", "/items/../../etc/passwd"]
        path = f"/items/{item['id']}/report" if n % 100 == 1 else paths[n % len(paths)]
        headers = {"User-Agent": f"scanner-{n}/{'x' * rng.randrange(2000)}",
                   "Range": f"bytes={first}-{rng.randrange(first, size)}" if n % 3 else f"bytes=-{rng.randrange(1, 500)}"}
        method = "HEAD" if n % 7 == 0 else "GET"
        return requests.request(method, f"{url}{path}", headers=headers, timeout=60).status_code

    with ThreadPoolExecutor(4) as pool:
        return Counter(pool.map(one, range(count)))


def _report_size(site: Site, item_id: str) -> int:
    got = site.api("GET", f"/api/v1/audit/report/{item_id}?format=json", site.admin)
    assert got.status_code == 200
    return len(got.content)


def test_a_thousand_hostile_requests_add_a_handful_of_entries(site: Site) -> None:
    clip = site.items["CCTV cam 2.mp4"]
    url, link_id = site.share()  # the whole case
    gone, gone_id = site.share()
    site.revoke(gone_id)
    size_before = _report_size(site, clip["id"])
    before = site.seq()
    statuses = _flood(site, url, 1000)
    assert statuses[200] + statuses[206] > 300 and 500 not in statuses, statuses
    revoked = _flood(site, gone, 1000)
    assert set(revoked) <= {404, 410}, revoked
    after = site.entries(before)
    mine = Counter((e["action"], e["details"].get("kind") or e["details"].get("reason"))
                   for e in after if e["subject"].get("link") == link_id)
    theirs = Counter((e["action"], e["details"].get("kind") or e["details"].get("reason"))
                     for e in after if e["subject"].get("link") == gone_id)
    added = Counter(e["action"] for e in after if e["action"] != "checkpoint.signed")
    growth = _report_size(site, clip["id"]) - size_before
    print(f"\n2,000 hostile requests added {sum(added.values())} entries {dict(added)}: for the valid link"
          f" {sum(mine.values())} {dict(mine)}, for the revoked one {sum(theirs.values())} {dict(theirs)};"
          f" the clip's report grew by {growth:,} bytes (from {size_before:,})")
    # One per kind of access per item (page, view, download, report) and per kind of refusal.
    assert sum(mine.values()) <= 10, mine
    assert theirs == Counter({("link.accessed", "revoked"): 1}), theirs
    assert sum(added.values()) <= 12, added
    assert growth < 25_000
    assert site.server.cli("audit", "verify").returncode == 0


# -- what reviewers see ------------------------------------------------------------------------


def test_reviewers_see_no_server_internals_and_auditors_see_everything(site: Site, tmp_path: Path) -> None:
    clip = site.items["CCTV cam 2.mp4"]
    url, link_id = site.share(clip["id"])
    full = site.api("GET", f"/api/v1/audit/report/{clip['id']}?format=json", site.admin).json()
    rt = site.server.runtime()  # the report names no storage key, even to auditors: ask the database
    try:
        with rt.db.sessions() as session:
            storage_key = session.get_one(Item, clip["id"]).storage_key
    finally:
        rt.close()
    upload_id = next(e["entry"]["subject"]["upload"] for e in full["entries"] if "upload" in e["entry"]["subject"])
    internals = [str(site.server.root), storage_key, upload_id]
    page = requests.get(url, timeout=10)
    reviewers = requests.get(f"{url}/items/{clip['id']}/report", timeout=30)
    assert page.status_code == 200 and reviewers.status_code == 200
    for shown in (page.text, reviewers.text):
        assert not [x for x in internals if x in shown] and not HOST_WORD.search(shown)
    # Withheld entries leave their place: each is proven by its leaf hash, and they are
    # exactly the full report's entries that name internals.
    copy = tmp_path / "reviewer.html"
    copy.write_bytes(reviewers.content)
    key = site.api("GET", "/api/v1/audit/public-key", site.admin).text.strip()
    assert site.server.cli("audit", "verify-report", str(copy), "--public-key", key).returncode == 0
    embedded = json.loads(reviewers.text.split('id="custody-report">')[1].split("</script>")[0].replace("<\\/", "</"))
    shown_seqs = {e["seq"] for e in embedded["entries"]}
    withheld = {w["seq"]: w for w in embedded["withheld"]}
    assert embedded["copy"] == "reviewer" and "storage_key" not in embedded["item"]
    for proven in full["entries"]:
        if proven["seq"] >= embedded["tree_size"]:
            continue
        assert proven["seq"] in shown_seqs or withheld[proven["seq"]]["leaf_hash"] == proven["leaf_hash"]
    assert {w["action"] for w in withheld.values()} >= {"upload.created", "upload.completed"}
    shown_actions = {e["entry"]["action"] for e in embedded["entries"]}
    assert {"case.created", "link.created", "integrity.verified"} <= shown_actions, shown_actions
    # What a court needs is shown once it names nothing internal (the pipeline's entries no
    # longer name storage keys; an upload's own entries always do).
    for proven in full["entries"]:
        entry = proven["entry"]
        if entry["action"] in ("original.hashed", "original.stored") and proven["seq"] < embedded["tree_size"]:
            internal = "upload" in entry["subject"] or "storage_key" in entry["details"]
            assert (proven["seq"] in withheld) == bool(internal), entry
    # Actors name no host; the auditors' report has it all and verifies.
    assert all("@" not in e["entry"]["actor"] for e in full["entries"] if e["entry"]["actor"].startswith("system:"))
    auditors = tmp_path / "auditor.html"
    auditors.write_bytes(site.api("GET", f"/api/v1/audit/report/{clip['id']}?format=html", site.admin).content)
    assert upload_id in auditors.read_text()  # the transfer's entries, whole
    assert site.server.cli("audit", "verify-report", str(auditors), "--public-key", key).returncode == 0
    exported = [e for e in site.about(link_id, -1) if e["action"] == "report.exported"]
    assert len(exported) == 1 and exported[0]["details"]["copy"] == "reviewer"


# -- ranges, uses, HEAD, logs and limits, with windows that close in two seconds --------------


def _window_start(seconds: float = 2.0) -> None:
    """Sleep into the beginning of the next record window."""
    time.sleep(seconds - time.time() % seconds + 0.05)


def _summaries(site: Site, link_id: str, after: int, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        found = [e for e in site.about(link_id, after) if e["details"].get("summary")]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, site.about(link_id, after)
        time.sleep(0.25)


def test_ranges_of_an_original_are_on_the_record_as_fetched(brief: Site) -> None:
    extraction = brief.items["extraction.bin"]
    size = extraction["size"]
    whole_url, whole_id = brief.share(extraction["id"])
    part_url, part_id = brief.share(extraction["id"])
    before = brief.seq()
    original = requests.get(f"{whole_url}/items/{extraction['id']}/original", timeout=10).content
    requests.get(f"{part_url}/items/{extraction['id']}/original", headers={"Range": "bytes=0-0"}, timeout=10)
    _window_start()
    rebuilt = bytearray(size)
    # Out of order, overlapping, touching, one from the end; each from a cookieless client.
    for spec in ("60000-99999", "0-9999", "5000-30000", "30001-45000", "44000-60000", "-10"):
        got = requests.get(f"{whole_url}/items/{extraction['id']}/original", headers={"Range": f"bytes={spec}"},
                           timeout=10)
        assert got.status_code == 206
        first = int(got.headers["Content-Range"].split()[1].split("-")[0])
        rebuilt[first:first + len(got.content)] = got.content
    for spec in ("10-19", "50-59", "15-25"):
        requests.get(f"{part_url}/items/{extraction['id']}/original", headers={"Range": f"bytes={spec}"}, timeout=10)
    assert bytes(rebuilt) == original
    (whole,) = _summaries(brief, whole_id, before, 1)  # the warm-up window held one request: nothing to add
    assert whole["details"]["ranges"] == [[0, size - 1]] and whole["details"]["whole_file"] is True
    assert whole["details"]["requests"] == 6 and whole["details"]["ranges_exact"] is True
    assert whole["subject"]["item"] == extraction["id"] and whole["details"]["bytes_sent"] == 106_012
    first = [e for e in brief.about(whole_id, before) if e["details"].get("range") == {"first": 60000, "last": 99999}]
    assert len(first) == 1 and first[0]["details"]["whole_file"] is False
    (part,) = _summaries(brief, part_id, before, 1)
    assert part["details"]["ranges"] == [[10, 25], [50, 59]] and part["details"]["whole_file"] is False
    assert part["details"]["bytes_covered"] == 26


def test_head_requests_spend_no_use_and_record_nothing(brief: Site) -> None:
    extraction = brief.items["extraction.bin"]
    url, link_id = brief.share(extraction["id"], max_uses=1)
    before = brief.seq()
    for n in range(10):  # a mail scanner prefetching the link and what it points to
        path = ("", f"/items/{extraction['id']}/original")[n % 2]
        head = requests.head(f"{url}{path}", headers={"User-Agent": f"scanner/{n}"}, timeout=10)
        assert head.status_code == 200 and "set-cookie" not in head.headers
    assert brief.uses(link_id) == 0 and brief.about(link_id, before) == []
    assert requests.get(url, timeout=10).status_code == 200 and brief.uses(link_id) == 1
    other = requests.head(url, headers={"X-Forwarded-For": "198.51.100.40"}, timeout=10)
    assert other.status_code == 410 and [e["details"]["kind"] for e in brief.about(link_id, before)] == ["page"]


def test_dropping_the_cookie_does_not_burn_uses(brief: Site) -> None:
    extraction = brief.items["extraction.bin"]
    url, link_id = brief.share(extraction["id"], max_uses=2)
    for n in range(10):
        got = requests.get(url, headers={"X-Forwarded-For": "198.51.100.1", "User-Agent": f"script/{n}"}, timeout=10)
        assert got.status_code == 200
    assert brief.uses(link_id) == 1
    assert requests.get(url, headers={"X-Forwarded-For": "198.51.100.2"}, timeout=10).status_code == 200
    assert requests.get(url, headers={"X-Forwarded-For": "198.51.100.3"}, timeout=10).status_code == 410
    assert brief.uses(link_id) == 2
    # An IPv6 client is one viewer across its /64.
    v6 = [requests.get(url, headers={"X-Forwarded-For": f"2001:db8:7:7::{n:x}"}, timeout=10).status_code
          for n in range(1, 4)]
    assert v6 == [410] * 3


def test_link_tokens_never_reach_the_log(brief: Site) -> None:
    extraction = brief.items["extraction.bin"]
    url, link_id = brief.share(extraction["id"])
    token = url.rsplit("/s/", 1)[1]
    requests.get(url, timeout=10)
    requests.get(f"{url}/items/{extraction['id']}/original", headers={"Range": "bytes=0-9"}, timeout=10)
    requests.get(f"{url[:-8]}AAAAAAAA/items/{extraction['id']}/proxy", timeout=10)
    time.sleep(0.3)
    log = brief.server.log.read_text()
    assert token not in log and token[-40:] not in log
    assert f'"GET /s/link:{link_id} HTTP/1.1" 200' in log
    assert f'"GET /s/link:{link_id}/items/{extraction["id"]}/original HTTP/1.1" 206' in log
    assert f'"GET /s/[invalid]/items/{extraction["id"]}/proxy HTTP/1.1" 404' in log


def test_a_client_hammering_a_link_gets_429(brief: Site) -> None:
    url, link_id = brief.share(brief.items["extraction.bin"]["id"], download=False)
    before = brief.seq()
    _window_start()
    started = time.monotonic()
    statuses = [requests.get(url, timeout=10) for _ in range(80)]  # the limit: 40 a minute
    elapsed = time.monotonic() - started
    passed = sum(r.status_code == 200 for r in statuses)
    limited = [r for r in statuses if r.status_code == 429]
    # 40 at once, then one every 1.5 s: never more, however slowly a loaded machine sends them.
    assert 40 <= passed <= 40 + elapsed / 1.5 + 1, (passed, elapsed)
    assert limited and all(1 <= int(r.headers["Retry-After"]) <= 60 for r in limited)
    assert requests.get(url, headers={"X-Forwarded-For": "198.51.100.77"}, timeout=10).status_code == 200
    assert len([e for e in brief.about(link_id, before) if not e["details"].get("summary")]) == 2  # one page each
