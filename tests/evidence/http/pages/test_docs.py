"""/docs works with no internet: Swagger UI from this server's own files, under the pages'
Content-Security-Policy, in a real browser whose requests to any other origin are refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.browser import FLAGS, chromium_or_fail, screenshot
from tests.support.server import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("docs")).start()
    try:
        yield running
    finally:
        running.stop()


def test_the_reference_page_names_only_this_server(server: Server) -> None:
    answer = requests.get(f"{server.url}/docs", timeout=10)
    assert answer.status_code == 200
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    sources = [s for s in re.findall(r'(?:src|href)="([^"]+)"', answer.text) if not s.startswith("#")]
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources), sources
    for source in sources:
        assert requests.get(f"{server.url}{source}", timeout=10).status_code == 200, source
    # FastAPI's own pages load from a CDN: they must not be there.
    assert requests.get(f"{server.url}/redoc", timeout=10).status_code == 404


def test_the_reference_renders_offline_in_a_browser(server: Server) -> None:
    from playwright.sync_api import sync_playwright

    elsewhere: list[str] = []
    problems: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(server.url):
            route.continue_()
        else:  # as on a force network with no internet
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_or_fail(), args=FLAGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.route("**/*", only_this_server)
            page.goto(f"{server.url}/docs")
            # Operations from this server's OpenAPI document, drawn by Swagger UI.
            page.get_by_text("/api/v1/items", exact=True).first.wait_for(timeout=30_000)
            assert page.locator(".opblock").count() > 10
            screenshot(page, "docs")
        finally:
            browser.close()
    assert not elsewhere, elsewhere
    assert not problems, problems


def test_the_favicon_is_served(server: Server, tmp_path: Path) -> None:
    answer = requests.get(f"{server.url}/app/static/favicon.svg", timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("image/svg+xml")
    assert 'rel="icon" href="/app/static/favicon.svg"' in requests.get(f"{server.url}/app/login", timeout=10).text
