"""The pages in a real browser (Debian's headless Chromium, driven by Playwright), as the
people who use them would: an officer uploads a folder's worth of files through the case
page with the tus browser client, reloads in the middle of a 300 MB file and picks it again,
watches a proxy play, shares and revokes; an auditor verifies the ledger, then sees it
broken; an officer signs in through the force's identity provider. Every page is checked
with axe-core and kept as a screenshot in test-artifacts/."""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.browser import FLAGS, chromium_or_fail, screenshot, serious_accessibility_problems
from tests.support.files import random_file
from tests.support.idp import IdentityProvider
from tests.support.media import library
from tests.support.proxy import Proxy
from tests.support.server import Server

BIG = 300 * 1000 * 1000


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_or_fail()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def sign_in(page: Any, base: str, token: str) -> None:
    page.goto(f"{base}/app/login")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/app/")



def items_of(server: Server, case: str) -> dict[str, dict[str, Any]]:
    """The case's items by file name, read by the API as the officer's CLI would."""
    token = server.token("reader@force.police.uk", "admin")
    found = requests.get(f"{server.url}/api/v1/items", params={"case": case},
                         headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    return {item["filename"]: item for item in found}


def wait_settled(server: Server, case: str, names: set[str], timeout: float = 120) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        items = items_of(server, case)
        if names <= set(items) and all(items[n]["state"] in ("ready", "failed", "quarantined") for n in names):
            return items
        assert time.monotonic() < deadline, {n: i["state"] for n, i in items.items()}
        time.sleep(0.5)


def wait_for_progress(page: Any, name: str, percent: int, timeout: float = 60_000) -> None:
    """Until the upload row of ``name`` shows at least ``percent`` sent."""
    page.wait_for_function("""([name, percent]) => { const bar = [...document.querySelectorAll('[role=progressbar]')]
            .find(b => b.getAttribute('aria-label') === name);
        return bar && +bar.getAttribute('aria-valuenow') >= percent; }""", arg=[name, percent], timeout=timeout)


def no_problems(page: Any) -> None:
    problems = serious_accessibility_problems(page)
    assert not problems, "\n".join(problems)


def test_an_officer_uploads_reloads_resumes_plays_shares_and_revokes(  # type: ignore[no-untyped-def]
        make_server, browser: Any, tmp_path: Path) -> None:
    server = make_server({"EVIDENCE_EMBEDDED_WORKER": "true"}, start=False)
    # Every byte the browser sends passes a counting proxy, with a cap on its rate so that
    # the reload lands in the middle of the large file whatever the machine's speed.
    proxy = Proxy("127.0.0.1", server.port, upstream_rate=60e6)
    proxy.start()
    base = proxy.url
    server.env["EVIDENCE_PUBLIC_URL"] = base
    server.start()
    try:
        _officer_journey(server, browser, base, proxy, tmp_path)
    finally:
        proxy.stop()


def _officer_journey(server: Server, browser: Any, base: str, proxy: Proxy, tmp_path: Path) -> None:
    token = server.token()
    case = server.case("OP-KESTREL")
    folder = tmp_path / "CCTV export"
    folder.mkdir()
    clip = folder / "cam 3 02h14.mp4"
    shutil.copy(library().path("h264_aac_mp4"), clip)
    statement = folder / "statement.txt"
    statement.write_text("Witness statement, page 1 of 1.\n")
    big = folder / "phone extraction.bin"
    random_file(big, BIG)
    sizes = sum(p.stat().st_size for p in (clip, statement, big))

    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    sign_in(page, base, token)
    screenshot(page, "pages-cases")
    no_problems(page)
    page.get_by_role("link", name=case, exact=True).click()
    page.wait_for_url(f"{base}/app/cases/{case}")
    # No layout shift while uploads progress: record every shift from here on.
    page.evaluate("""() => { window.shifts = [];
        new PerformanceObserver(list => list.getEntries().forEach(e => { if (!e.hadRecentInput) window.shifts.push(e.value); }))
            .observe({type: 'layout-shift', buffered: false}); }""")
    page.get_by_label("Exhibit reference").fill("JS/1")
    page.get_by_label("Description").fill("CCTV and phone, Kestrel Road")
    page.get_by_label("Add files").set_input_files([str(clip), str(statement), str(big)])

    big_bar = page.get_by_role("progressbar", name=big.name)
    wait_for_progress(page, big.name, 25, timeout=120_000)
    screenshot(page, "pages-case-uploading")
    no_problems(page)
    before_reload = int(big_bar.get_attribute("aria-valuenow") or 0)
    assert before_reload < 100
    shifts = page.evaluate("window.shifts.reduce((a, b) => a + b, 0)")
    assert shifts < 0.05, f"layout shifted by {shifts} while uploading"

    # The laptop lid closes: the page goes away mid-upload. It comes back and lists the
    # unfinished upload; the officer chooses the same file again and it continues.
    page.reload()
    interrupted = page.locator("#interrupted")
    interrupted.get_by_text(big.name).wait_for(timeout=10_000)
    screenshot(page, "pages-case-interrupted")
    page.get_by_label("Add files").set_input_files([str(big)])
    row = page.locator("li.upload", has_text=big.name)
    row.locator(".upload-status", has_text="Uploaded").wait_for(timeout=180_000)
    assert proxy.upstream_bytes < 1.3 * sizes, f"{proxy.upstream_bytes} bytes sent for {sizes} bytes of files"

    items = wait_settled(server, case, {clip.name, statement.name, big.name})
    for path in (clip, statement, big):
        item = items[path.name]
        # The browser's SHA-256 (recorded as the officer's) equals the worker's.
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert item["client_sha256"] == item["hashes"]["sha256"] == digest, item
        assert item["state"] == "ready", item
    assert items[clip.name]["exhibit"] == "JS/1"

    # The items table refreshes by itself, with the state words.
    page.locator("#items tr", has_text=big.name).get_by_text("ready").wait_for(timeout=30_000)
    screenshot(page, "pages-case-uploaded")

    # The proxy plays inline on the item page.
    page.locator("#items").get_by_role("link", name=clip.name).click()
    page.wait_for_function("document.querySelector('video') && document.querySelector('video').readyState >= 3",
                           timeout=30_000)
    assert "Custody timeline" in page.inner_text("main")
    screenshot(page, "pages-item")
    no_problems(page)

    # Share with the CPS from the case page, open the link elsewhere, then revoke it.
    page.goto(f"{base}/app/cases/{case}")
    page.get_by_label("Recipient email").fill("reviewer@cps.gov.uk")
    page.get_by_label("Expires in").fill("7d")
    page.get_by_label("Allow download").check()
    page.get_by_label("Maximum uses").fill("5")
    page.get_by_role("button", name="Create link").click()
    link = page.get_by_label("Link", exact=True).input_value()
    assert link.startswith(f"{base}/s/")
    screenshot(page, "pages-case-shared")
    no_problems(page)
    reviewer = browser.new_context()
    review = reviewer.new_page()
    review.goto(link)
    assert case in review.inner_text("h1") and clip.name in review.inner_text("body")
    page.get_by_role("row", name=re.compile("reviewer@cps.gov.uk")).get_by_role("button", name="Revoke").click()
    page.get_by_text("The link was revoked").wait_for()
    review.goto(link)
    assert "no longer valid" in review.inner_text("body")
    reviewer.close()

    # At phone width the case page still works without sideways scrolling of the page.
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"{base}/app/cases/{case}")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "pages-case-phone")
    assert not [e for e in console_errors if "favicon" not in e], console_errors
    context.close()


def test_an_auditor_verifies_the_ledger_then_sees_it_broken(  # type: ignore[no-untyped-def]
        uploaded: tuple[Server, str, str], browser: Any) -> None:
    server, item_id, auditor_token = uploaded
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    sign_in(page, server.url, auditor_token)
    page.get_by_role("link", name="Audit", exact=True).click()
    page.get_by_role("button", name="Verify ledger").click()
    status = page.get_by_role("status").filter(has_text="Ledger")
    status.wait_for(timeout=30_000)
    page.wait_for_function("/Ledger (verified|broken)/.test(document.getElementById('verify-status').textContent)")
    assert re.fullmatch(r"Ledger verified: \d+ entries", page.locator("#verify-status").inner_text().strip())
    screenshot(page, "pages-audit-verified")
    no_problems(page)

    page.get_by_label("Item id").fill(item_id)
    page.get_by_role("button", name="Show custody timeline").click()
    page.wait_for_url(f"{server.url}/app/items/{item_id}")
    timeline = page.locator("table.timeline")
    assert "Original stored" in timeline.inner_text()
    # The upload's entries are proven in a signed checkpoint once the next one is signed (every
    # few seconds): until then they read "not yet in a signed checkpoint".
    deadline = time.monotonic() + 30
    while "included" not in timeline.inner_text():
        assert time.monotonic() < deadline, timeline.inner_text()
        time.sleep(1)
        page.reload()
    assert page.get_by_role("link", name="Report (CASE/UCO)").count() == 1
    screenshot(page, "pages-item-auditor")
    no_problems(page)

    # Someone edits the ledger behind the server's back.
    with sqlite3.connect(server.data_dir / "evidence.db") as db:
        changed = db.execute("UPDATE custody_events SET body = CAST(replace(CAST(body AS TEXT), 'officer@', 'someone@') AS BLOB) "
                             "WHERE seq = (SELECT min(seq) FROM custody_events WHERE actor LIKE '%officer@%')")
        assert changed.rowcount == 1
        seq = db.execute("SELECT min(seq) FROM custody_events WHERE actor LIKE '%officer@%'").fetchone()[0]
    page.goto(f"{server.url}/app/audit")
    page.get_by_role("button", name="Verify ledger").click()
    page.wait_for_function("/Ledger (verified|broken)/.test(document.getElementById('verify-status').textContent)")
    assert page.locator("#verify-status").inner_text().startswith(f"Ledger broken at entry {seq}:")
    screenshot(page, "pages-audit-broken")
    context.close()


def test_an_officer_signs_in_with_the_forces_identity_provider(make_server, browser: Any) -> None:  # type: ignore[no-untyped-def]
    with IdentityProvider() as idp:
        idp.add_key("RS256")
        server = make_server(start=False)
        idp.register_client("evidence-web", f"{server.url}/app/login/oidc/callback")
        idp.sign_in_as("dc.jones@force.police.uk", role="officer")
        server.env.update({f"EVIDENCE_{name.upper()}": str(value)
                           for name, value in idp.settings(oidc_client_id="evidence-web").items()})
        server.start()
        server.case("OP-OIDC", officer="dc.jones@force.police.uk")
        context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        page = context.new_page()
        page.goto(f"{server.url}/app/login")
        screenshot(page, "pages-login")
        no_problems(page)
        page.get_by_role("button", name="Sign in with your force account").click()
        page.get_by_role("button", name="Continue as dc.jones@force.police.uk").click()
        page.wait_for_url(f"{server.url}/app/")
        assert "dc.jones@force.police.uk" in page.inner_text("header")
        page.get_by_role("link", name="OP-OIDC", exact=True).click()
        page.get_by_label("Add files").wait_for()
        # Sign out ends the session: the pages ask to sign in again.
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r".*/app/login.*"))
        page.goto(f"{server.url}/app/cases/OP-OIDC")
        assert "/app/login" in page.url
        context.close()


def test_folders_pause_resume_a_dropped_network_and_an_ended_session(  # type: ignore[no-untyped-def]
        make_server, browser: Any, tmp_path: Path) -> None:
    server = make_server(start=False)
    proxy = Proxy("127.0.0.1", server.port, upstream_rate=8e6)
    proxy.start()
    base = proxy.url
    server.env["EVIDENCE_PUBLIC_URL"] = base
    server.start()
    try:
        token = server.token()
        case = server.case("OP-WREN")
        export = tmp_path / "export"
        (export / "cam 1").mkdir(parents=True)
        (export / "cam 1" / "index.txt").write_text("cam 1 index\n")
        (export / "notes.txt").write_text("notes\n")
        context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        page = context.new_page()
        sign_in(page, base, token)
        page.goto(f"{base}/app/cases/{case}")

        # A whole folder: every file under it, named by its path in the folder.
        page.get_by_label("Add a folder").set_input_files(str(export))
        for name in ("export/cam 1/index.txt", "export/notes.txt"):
            page.locator("li.upload", has_text=name).locator(".upload-status", has_text="Uploaded").wait_for(
                timeout=30_000)
        assert {"index.txt", "notes.txt"} <= set(items_of(server, case))

        # Pause and resume one file.
        big = tmp_path / "interview.bin"
        random_file(big, 40_000_000)
        page.get_by_label("Add files").set_input_files([str(big)])
        row = page.locator("li.upload", has_text=big.name)
        bar = page.get_by_role("progressbar", name=big.name)
        wait_for_progress(page, big.name, 10)
        row.get_by_role("button", name="Pause").click()
        row.locator(".upload-status", has_text="Paused").wait_for()
        paused_at = int(bar.get_attribute("aria-valuenow") or 0)
        time.sleep(1.5)
        assert int(bar.get_attribute("aria-valuenow") or 0) == paused_at
        screenshot(page, "pages-case-paused")
        row.get_by_role("button", name="Resume").click()
        row.locator(".upload-status", has_text="Uploading").wait_for()

        # The network goes: the row says it is retrying; the network comes back: it finishes.
        proxy.stop()
        row.get_by_text(re.compile("Server unreachable, retrying")).wait_for(timeout=30_000)
        screenshot(page, "pages-case-retrying")
        proxy.start()
        row.locator(".upload-status", has_text="Uploaded").wait_for(timeout=120_000)
        assert items_of(server, case)[big.name]["size"] == big.stat().st_size

        # Signed out elsewhere (another tab): the next upload says so plainly.
        other = context.new_page()
        other.goto(f"{base}/app/")
        other.get_by_role("button", name="Sign out").click()
        late = tmp_path / "late.txt"
        late.write_text("late\n")
        page.get_by_label("Add files").set_input_files([str(late)])
        page.locator("li.upload", has_text=late.name).locator(".upload-status").filter(
            has_text="Failed: your session has expired").wait_for(timeout=30_000)
        context.close()
    finally:
        proxy.stop()


def test_an_upload_continues_after_the_browser_is_restarted(  # type: ignore[no-untyped-def]
        make_server, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = chromium_or_fail()
    server = make_server(start=False)
    proxy = Proxy("127.0.0.1", server.port, upstream_rate=15e6)
    proxy.start()
    base = proxy.url
    server.env["EVIDENCE_PUBLIC_URL"] = base
    server.start()
    profile = tmp_path / "profile"
    source = tmp_path / "body-worn camera.bin"
    random_file(source, 60_000_000)
    try:
        token = server.token()
        case = server.case("OP-FINCH")
        with sync_playwright() as playwright:
            def open_case() -> Any:
                context = playwright.chromium.launch_persistent_context(str(profile), executable_path=executable,
                                                                      args=FLAGS)
                page = context.pages[0] if context.pages else context.new_page()
                return context, page

            context, page = open_case()
            sign_in(page, base, token)
            page.goto(f"{base}/app/cases/{case}")
            page.get_by_label("Add files").set_input_files([str(source)])
            wait_for_progress(page, source.name, 40)
            context.close()  # the browser is shut mid-upload

            context, page = open_case()  # the same profile: its cookie and its stored upload URLs
            page.goto(f"{base}/app/cases/{case}")
            page.locator("#interrupted").get_by_text(source.name).wait_for(timeout=10_000)
            page.get_by_label("Add files").set_input_files([str(source)])
            page.locator("li.upload", has_text=source.name).locator(".upload-status", has_text="Uploaded").wait_for(
                timeout=60_000)
            context.close()
        assert proxy.upstream_bytes < 1.3 * source.stat().st_size
        assert items_of(server, case)[source.name]["size"] == source.stat().st_size
    finally:
        proxy.stop()
