"""Reviewers' media handed to nginx (EVIDENCE_ACCEL_REDIRECT): a real nginx, built from
infra/nginx.conf, in front of a real ``evidence serve`` whose embedded worker made the item's
proxy. The node checks and records every request; nginx sends the bytes from the vault's
folder. Nothing is mocked: the bytes are compared with the vault's file, the refusals are
the gate's, and the internal location is asked for from outside."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from evidence.links.gate import FRESH_SECONDS
from tests.conftest import s3_env
from tests.support import s3
from tests.support.media import library
from tests.support.nginx import answers, nginx_binary, nginx_service
from tests.support.processes import Service
from tests.support.s3 import free_port
from tests.support.server import Server

CASE = "OP-ACCEL"
PREFIX = "/_vault/"
RATE = 60


@dataclass
class Front:
    """nginx in front of one node, and a ready item on the node."""

    server: Server
    nginx: Service
    url: str  # nginx's
    officer: str
    item_id: str
    original: bytes
    proxy: bytes

    def share(self, *args: str) -> str:
        """A link to the item, through nginx."""
        link = self.server.cli("share", "--case", CASE, "--item", self.item_id, "--to", "reviewer@cps.gov.uk",
                               "--expires", "1d", *args, token=self.officer).stdout.strip()
        return link.replace(self.server.url, self.url)

    def reviewer(self, link: str) -> requests.Session:
        """A reviewer's browser with the link's page opened (a view session)."""
        browser = requests.Session()
        page = browser.get(link, timeout=30)
        assert page.status_code == 200, page.text
        return browser


def start_front(root: Path, env: dict[str, str]) -> Front:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (infra/test-services.sh installs Debian's nginx-light)")
    server = Server(root, {"EVIDENCE_EMBEDDED_WORKER": "true", "EVIDENCE_ACCEL_REDIRECT": PREFIX, **env}).start()
    port = free_port()
    nginx = nginx_service(binary, [f"127.0.0.1:{server.port}"], port, root / "nginx", root / "nginx.log",
                          vault=server.data_dir / "vault")
    try:
        url = f"http://127.0.0.1:{port}"
        nginx.start(ready=lambda: answers(url), timeout=30)
        officer = server.token()
        server.case(CASE)
        clip = library().path("h264_aac_mp4")
        line = server.cli("upload", str(clip), "--case", CASE, "--server", server.url, "--token", officer).stdout
        item_id = line.split()[0]
        item = server.settled_item(item_id, timeout=120)
        assert item["state"] == "ready", item
        proxy = requests.get(f"{server.url}/api/v1/items/{item_id}/derivatives/proxy",
                             headers={"Authorization": f"Bearer {officer}"}, timeout=30)
        assert proxy.status_code == 200
        return Front(server, nginx, url, officer, item_id, clip.read_bytes(), proxy.content)
    except BaseException:
        nginx.stop()
        server.stop()
        raise


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    # A low rate, so the limit is reached in a test; no test but the rate's makes that many requests.
    found = start_front(tmp_path_factory.mktemp("accel"), {"EVIDENCE_LINK_REQUESTS_PER_MINUTE": str(RATE)})
    yield found
    found.nginx.stop()
    found.server.stop()


def digest(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


def ledger_views(front: Front) -> list[dict[str, object]]:
    admin = front.server.token("admin@force.police.uk", "admin")
    found = requests.get(f"{front.server.url}/api/v1/audit/entries?limit=5000",
                         headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    assert found.status_code == 200
    return [e["entry"] for e in found.json() if e["entry"]["action"] == "link.accessed"
            and e["entry"]["subject"].get("item") == front.item_id and e["entry"]["details"].get("kind") == "view"]


def test_a_range_through_the_link_is_the_files_bytes_sent_by_nginx(front: Front) -> None:
    link = front.share()
    browser = front.reviewer(link)
    size = len(front.proxy)
    first, last = size // 3, size // 3 + size // 4
    got = browser.get(f"{link}/items/{front.item_id}/proxy", headers={"Range": f"bytes={first}-{last}"}, timeout=30)
    assert got.status_code == 206
    assert got.content == front.proxy[first:last + 1]
    assert got.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert got.headers["Content-Length"] == str(last - first + 1)
    # The node's headers reach the reviewer, once each; nothing of the hand-off does.
    assert got.headers["Repr-Digest"] == digest(front.proxy)
    assert got.headers["ETag"] == f'"{hashlib.sha256(front.proxy).hexdigest()}"'
    assert got.headers["Content-Type"] == "video/mp4"
    assert got.headers["Cache-Control"] == "no-store" and got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Referrer-Policy"] == "no-referrer" and got.headers["X-Frame-Options"] == "DENY"
    assert got.headers["X-Robots-Tag"] == "noindex, nofollow" and got.headers["Accept-Ranges"] == "bytes"
    assert "X-Accel-Redirect" not in got.headers and "Last-Modified" not in got.headers
    assert PREFIX not in json.dumps(dict(got.headers))
    # Asked of the node alone, the same request is answered with the hand-off, not the bytes:
    # so the bytes above came from nginx.
    cookie = browser.cookies.get_dict()
    alone = requests.get(f"{front.server.url}/s/{link.rsplit('/s/', 1)[1]}/items/{front.item_id}/proxy",
                         headers={"Range": f"bytes={first}-{last}"}, cookies=cookie, timeout=30)
    assert alone.status_code == 200 and alone.content == b""
    assert alone.headers["X-Accel-Redirect"].startswith(f"{PREFIX}derivatives/")
    # On the record like any view: the first request of the window is a ledger entry.
    assert ledger_views(front)


def test_if_range_and_suffix_and_several_ranges_answer_as_the_node_would(front: Front) -> None:
    link = front.share()
    browser = front.reviewer(link)
    url, size = f"{link}/items/{front.item_id}/proxy", len(front.proxy)
    etag = f'"{hashlib.sha256(front.proxy).hexdigest()}"'
    same = browser.get(url, headers={"Range": "bytes=100-199", "If-Range": etag}, timeout=30)
    assert same.status_code == 206 and same.content == front.proxy[100:200]
    other = browser.get(url, headers={"Range": "bytes=100-199", "If-Range": '"another"'}, timeout=30)
    assert other.status_code == 200 and other.content == front.proxy
    suffix = browser.get(url, headers={"Range": "bytes=-500"}, timeout=30)
    assert suffix.status_code == 206 and suffix.content == front.proxy[-500:]
    # Several ranges: the node answers the first alone, as it does without nginx.
    several = browser.get(url, headers={"Range": "bytes=0-9,20-29"}, timeout=30)
    assert several.status_code == 206 and several.content == front.proxy[:10]
    beyond = browser.get(url, headers={"Range": f"bytes={size}-"}, timeout=30)
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"
    # A condition nginx would answer with 304 or 412 is left to the node, which sends the bytes.
    conditional = browser.get(url, headers={"Range": "bytes=0-9", "If-None-Match": etag}, timeout=30)
    assert conditional.status_code == 206 and conditional.content == front.proxy[:10]


def test_the_rate_limit_holds_when_nginx_sends_the_bytes(front: Front) -> None:
    link = front.share()
    browser = front.reviewer(link)
    url = f"{link}/items/{front.item_id}/proxy"
    answers = [browser.get(url, headers={"Range": f"bytes={n}-{n + 99}"}, timeout=30) for n in range(RATE + 20)]
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {206, 429} and statuses.count(206) <= RATE + 1, statuses
    assert all(a.content == front.proxy[n:n + 100] for n, a in enumerate(answers) if a.status_code == 206)
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers if a.status_code == 429)


def test_the_original_downloads_whole_with_its_digest_and_name(front: Front) -> None:
    link = front.share("--download")
    browser = front.reviewer(link)
    got = browser.get(f"{link}/items/{front.item_id}/original", timeout=60)
    assert got.status_code == 200 and got.content == front.original
    assert got.headers["Repr-Digest"] == digest(front.original)
    assert got.headers["Content-Disposition"].startswith('attachment; filename="h264_aac.mp4"')
    assert got.headers["Content-Type"] == "application/octet-stream"


def test_a_revoked_link_is_refused_on_its_next_request(front: Front) -> None:
    link = front.share()
    browser = front.reviewer(link)
    url = f"{link}/items/{front.item_id}/proxy"
    assert browser.get(url, headers={"Range": "bytes=0-99"}, timeout=30).status_code == 206
    links = json.loads(front.server.cli("links", "list", "--case", CASE, "--json", token=front.officer).stdout)
    link_id = next(found["id"] for found in links if found["url"].endswith(link.rsplit("/s/", 1)[1]))
    front.server.cli("links", "revoke", link_id, token=front.officer)
    # A view session may reuse its node's read of the link for FRESH_SECONDS, no longer.
    time.sleep(FRESH_SECONDS + 0.2)
    refused = browser.get(url, headers={"Range": "bytes=0-99"}, timeout=30)
    assert refused.status_code == 410
    assert front.proxy[:100] not in refused.content
    fresh = requests.get(url, headers={"Range": "bytes=0-99"}, timeout=30)  # no session: read at once
    assert fresh.status_code == 410


def test_the_internal_prefix_is_not_reachable_from_outside(front: Front) -> None:
    link = front.share()
    browser = front.reviewer(link)
    alone = requests.get(f"{front.server.url}/s/{link.rsplit('/s/', 1)[1]}/items/{front.item_id}/proxy",
                         cookies=browser.cookies.get_dict(), timeout=30)
    target = alone.headers["X-Accel-Redirect"]  # the very file a reviewer's request is sent
    for path in (target, PREFIX, f"{PREFIX}originals/", f"{PREFIX}../{target[len(PREFIX):]}", "/_vault%2F" + target[8:]):
        direct = requests.get(f"{front.url}{path}", timeout=30)
        assert direct.status_code == 404, path
        assert front.proxy[:1000] not in direct.content
    # Nor through a forged hand-off in a request: nginx acts on the node's answer alone.
    forged = requests.get(f"{front.url}/healthz", headers={"X-Accel-Redirect": target}, timeout=30)
    assert forged.status_code == 200 and forged.json() == {"status": "ok"}


@pytest.mark.slow
def test_an_s3_vault_still_streams_through_the_node(tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    front = start_front(tmp_path, s3_env(bucket))
    try:
        link = front.share()
        browser = front.reviewer(link)
        size = len(front.proxy)
        got = browser.get(f"{link}/items/{front.item_id}/proxy", headers={"Range": f"bytes=10-{size - 11}"}, timeout=30)
        assert got.status_code == 206 and got.content == front.proxy[10:size - 10]
        assert got.headers["Repr-Digest"] == digest(front.proxy)
        # The node sends the bytes itself: no hand-off, even with the setting on.
        alone = requests.get(f"{front.server.url}/s/{link.rsplit('/s/', 1)[1]}/items/{front.item_id}/proxy",
                             headers={"Range": "bytes=0-99"}, cookies=browser.cookies.get_dict(), timeout=30)
        assert alone.status_code == 206 and alone.content == front.proxy[:100]
        assert "X-Accel-Redirect" not in alone.headers
    finally:
        front.nginx.stop()
        front.server.stop()
