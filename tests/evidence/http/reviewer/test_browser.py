"""The reviewer's page in a real browser: Debian's headless Chromium, driven by Playwright
through its executable path (no browser download). The video must reach a playable state
and seek; a screenshot is kept as a test artifact in test-artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import requests

from tests.support.browser import ARTIFACTS, FLAGS, chromium_or_fail
from tests.support.media import library


def test_reviewer_watches_seeks_and_the_page_renders(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    executable = chromium_or_fail()
    server = make_server({"EVIDENCE_EMBEDDED_WORKER": "true"})
    token = server.token()
    case = server.case("OP-HALFORD")
    clip = tmp_path / "CCTV cam 3 2024-03-01 02h14.mp4"
    shutil.copy(library().path("h264_aac_mp4"), clip)
    item_id, sha256 = server.cli("upload", str(clip), "--case", case, "--server", server.url, "--token", token).stdout.split()[:2]
    assert server.settled_item(item_id)["state"] == "ready"
    link = server.cli("share", "--case", case, "--to", "reviewer@cps.gov.uk", "--expires", "7d", "--download", token=token).stdout.strip()
    assert requests.get(link, timeout=30).status_code == 200

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(link)
            assert "OP-HALFORD" in page.inner_text("h1")
            body = page.inner_text("body")
            assert clip.name in body and sha256 in body
            video = page.locator("video")
            assert video.count() == 1
            # HAVE_ENOUGH_DATA: the proxy plays in the browser.
            page.wait_for_function("document.querySelector('video').readyState >= 3", timeout=30_000)
            duration = page.evaluate("document.querySelector('video').duration")
            assert 1.5 < duration < 2.5
            # Seeking works (served with HTTP Range).
            page.evaluate("""() => new Promise(done => {
                const v = document.querySelector('video');
                v.addEventListener('seeked', () => done(), {once: true});
                v.currentTime = 1.5;
            })""")
            assert abs(page.evaluate("document.querySelector('video').currentTime") - 1.5) < 0.2
            assert page.evaluate("document.querySelector('video').error") is None
            assert page.locator("a", has_text="Download original").count() == 1
            page.screenshot(path=str(ARTIFACTS / "reviewer-page.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "reviewer-page.png").stat().st_size > 10_000
