"""Every kind of exhibit, as a reviewer with a view-only link and the officer see it: a photo
(its screen-size image and EXIF tags), a PDF (its pages, one at a time), a phone extraction
(its contents, with previews of the photo and clip inside), an interview recording, a text file
and a Word document (no preview). Through the real pipeline: one ``evidence serve`` with its
worker, one upload of every file, then the reviewer's routes over HTTP and in Debian's
Chromium (screenshots in test-artifacts/, axe-core on each page). One server, one upload
batch and one browser for the whole module, to keep the suite's time."""

from __future__ import annotations

import hashlib
import html
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from evidence.http.reviewer import pages
from tests.evidence.http.reviewer import samples
from tests.support.browser import FLAGS, chromium_or_fail, screenshot, serious_accessibility_problems
from tests.support.server import Server, sign_in

CASE, OTHER = "OP-MIXED", "OP-ELSEWHERE"
REVIEWER = "reviewer@cps.gov.uk"
SETTLED = ("ready", "failed", "quarantined")
FILES = {"photo": "IMG_0001.jpg", "pdf": "statement.pdf", "zip": "phone extraction.zip", "audio": "interview.mp3",
         "text": "notes.txt", "office": "letter.docx"}
# The working copy each route serves, by the exhibit it is asked of: (route, content type).
COPIES = {"photo": ("view", "image/jpeg"), "audio": ("audio", "audio/mp4"),
          "text": ("text", "text/plain; charset=utf-8"), "pdf": ("pages/1", None), "zip": ("previews/1", "image/jpeg")}


@dataclass
class World:
    server: Server
    officer: str
    admin: str
    items: dict[str, dict[str, Any]]  # by the keys of FILES
    other: dict[str, Any]  # an item of another case

    def api(self, path: str, token: str | None = None, headers: dict[str, str] | None = None) -> requests.Response:
        return requests.get(f"{self.server.url}{path}", timeout=30,
                            headers={"Authorization": f"Bearer {token or self.officer}", **(headers or {})})

    def share(self, *items: str) -> tuple[str, str]:
        """A view-only link to ``items`` (else the whole case): its URL and id."""
        made = requests.post(f"{self.server.url}/api/v1/links", headers={"Authorization": f"Bearer {self.officer}"},
                             json={"case": CASE, "to": REVIEWER, "expires_in": 86400, "items": list(items)}, timeout=30)
        assert made.status_code == 201, made.text
        return made.json()["url"], made.json()["id"]

    def revoke(self, link_id: str) -> None:
        done = requests.post(f"{self.server.url}/api/v1/links/{link_id}/revoke", timeout=30,
                             headers={"Authorization": f"Bearer {self.officer}"})
        assert done.status_code == 200, done.text

    def id(self, name: str) -> str:
        return str(self.items[name]["id"])

    def entries(self, after: int = -1) -> list[dict[str, Any]]:
        found = self.api(f"/api/v1/audit/entries?after={after}&limit=5000", self.admin)
        assert found.status_code == 200, found.text
        return [e["entry"] for e in found.json()]

    def seq(self) -> int:
        entries = self.entries()
        return entries[-1]["seq"] if entries else -1


def _settled(server: Server, token: str, case: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 180
    while True:
        found = requests.get(f"{server.url}/api/v1/items?case={case}", headers={"Authorization": f"Bearer {token}"},
                             timeout=10).json()
        if len(found) == count and all(i["state"] in SETTLED for i in found):
            return found  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"{found}\n{server.log.read_text()[-3000:]}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("exhibits")
    server = Server(root, {"EVIDENCE_EMBEDDED_WORKER": "true"}).start()
    try:
        officer, admin = server.token(), server.token("admin@force.police.uk", "admin")
        server.case(CASE)
        server.case(OTHER)
        made = {"photo": samples.photo, "pdf": samples.pdf, "zip": samples.extraction, "audio": samples.recording,
                "text": samples.notes, "office": samples.word_document}
        paths = [str(made[name](root / filename)) for name, filename in FILES.items()]
        server.cli("upload", *paths, "--case", CASE, "--server", server.url, "--token", officer)
        server.cli("upload", str(samples.notes(root / "elsewhere.txt")), "--case", OTHER, "--server", server.url,
                   "--token", officer)
        by_name = {i["filename"]: i for i in _settled(server, officer, CASE, len(FILES))}
        items = {name: by_name[filename] for name, filename in FILES.items()}
        other = _settled(server, officer, OTHER, 1)[0]
        assert all(i["state"] == "ready" for i in items.values()), {n: (i["state"], i["reason"]) for n, i in items.items()}
        yield World(server, officer, admin, items, other)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def link(world: World) -> str:
    """A view-only link to the whole case, as most tests read it."""
    return world.share()[0]


def kinds_of(item: dict[str, Any]) -> set[str]:
    return {d["kind"] for d in item["derivatives"]}


# -- what the pipeline made, as the API lists it -----------------------------------------------


def test_the_api_lists_every_working_copy_with_a_url(world: World) -> None:
    expected = {"photo": "view", "pdf": "pages", "zip": "previews", "audio": "audio", "text": "text"}
    for name, kind in expected.items():
        item = world.items[name]
        found = {d["kind"]: d for d in item["derivatives"]}
        assert kind in found, (name, sorted(found))
        url = found[kind]["url"]
        assert url == f"{world.server.url}/api/v1/items/{item['id']}/derivatives/{kind}"
        got = world.api(url.removeprefix(world.server.url))
        assert got.status_code == 200 and got.headers["content-type"].startswith(found[kind]["content_type"])
    assert kinds_of(world.items["office"]) & {"view", "pages", "text", "audio", "proxy"} == set()


def test_the_api_serves_each_page_and_preview_its_index_names(world: World) -> None:
    pdf, zip_id = world.id("pdf"), world.id("zip")
    index = world.api(f"/api/v1/items/{pdf}/derivatives/pages").json()
    assert index["page_count"] == samples.PDF_PAGES and [p["number"] for p in index["pages"]] == [1, 2, 3]
    second = world.api(f"/api/v1/items/{pdf}/derivatives/pages/2")
    assert second.status_code == 200 and hashlib.sha256(second.content).hexdigest() == index["pages"][1]["sha256"]
    ranged = world.api(f"/api/v1/items/{pdf}/derivatives/pages/2", headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == second.content[:4]
    previews = world.api(f"/api/v1/items/{zip_id}/derivatives/previews").json()
    assert sorted((p["index"], p["kind"]) for p in previews["previews"]) == [(1, "image"), (2, "video")]
    assert world.api(f"/api/v1/items/{zip_id}/derivatives/previews/2").headers["content-type"] == "video/mp4"
    for path in (f"{pdf}/derivatives/pages/4", f"{pdf}/derivatives/pages/0", f"{pdf}/derivatives/pages/x",
                 f"{pdf}/derivatives/probe/1", f"{zip_id}/derivatives/previews/3", f"{zip_id}/derivatives/pages/1"):
        assert world.api(f"/api/v1/items/{path}").status_code == 404, path
    stranger = world.server.token("outsider@force.police.uk", "officer")
    assert world.api(f"/api/v1/items/{pdf}/derivatives/pages/1", stranger).status_code == 404
    auditor = world.server.token("auditor@force.police.uk", "auditor")
    assert world.api(f"/api/v1/items/{pdf}/derivatives/pages/1", auditor).status_code == 403


# -- the reviewer's routes ------------------------------------------------------------------------


@pytest.mark.parametrize("name", COPIES)
def test_each_working_copy_is_served_whole_and_in_ranges_and_recorded(world: World, name: str) -> None:
    item_id, (route, content_type) = world.id(name), COPIES[name]
    url, _ = world.share(item_id)
    before = world.seq()
    with requests.Session() as browser:
        assert browser.get(url, timeout=10).status_code == 200
        whole = browser.get(f"{url}/items/{item_id}/{route}", timeout=10)
        assert whole.status_code == 200, whole.text
        assert whole.headers["x-content-type-options"] == "nosniff" and whole.headers["cache-control"] == "no-store"
        if content_type:
            assert whole.headers["content-type"] == content_type
        if name == "text":
            # The file's own words, opened on their own: nothing in them may run or load.
            assert whole.headers["content-security-policy"] == "sandbox; default-src 'none'"
            assert samples.NOTES in whole.content.decode()
        part = browser.get(f"{url}/items/{item_id}/{route}", headers={"Range": "bytes=2-9"}, timeout=10)
        assert part.status_code == 206 and part.content == whole.content[2:10]
        assert part.headers["content-range"] == f"bytes 2-9/{len(whole.content)}"
    views = [e for e in world.entries(before) if e["action"] == "link.accessed" and e["details"].get("kind") == "view"]
    # One entry for the item per window (the requests may straddle a window's end), however
    # many requests, naming the working copy.
    assert views and len(views) == len({v["details"]["window"]["from"] for v in views}), views
    assert all(v["subject"]["item"] == item_id for v in views)
    assert views[0]["details"]["copy"] == route.split("/")[0]


def test_the_parts_are_the_indexed_pages_and_previews(world: World, link: str) -> None:
    pdf, zip_id = world.id("pdf"), world.id("zip")
    with requests.Session() as browser:
        for number in range(1, samples.PDF_PAGES + 1):
            page = browser.get(f"{link}/items/{pdf}/pages/{number}", timeout=10)
            assert page.status_code == 200 and page.headers["content-type"] in ("image/jpeg", "image/png")
        assert browser.get(f"{link}/items/{pdf}/pages/1", timeout=10).content != \
            browser.get(f"{link}/items/{pdf}/pages/2", timeout=10).content
        # The extraction's photo is entry 1 and its clip entry 2 (entry 0 is the folder).
        clip = browser.get(f"{link}/items/{zip_id}/previews/2", timeout=10)
        assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"


@pytest.mark.parametrize("path", [
    "pdf:pages/0", "pdf:pages/4", "pdf:pages/x", "pdf:pages/-1", "pdf:pages/1.0", "pdf:pages/%C2%B9",
    "pdf:pages/9999999999", "pdf:previews/1", "zip:previews/0", "zip:previews/3", "zip:previews/99", "zip:pages/1",
    "photo:pages/1", "pdf:document?page=0", "pdf:document?page=4", "pdf:document?page=abc", "pdf:document?page=",
    "zip:contents?page=2", "zip:contents?page=0", "photo:document", "photo:contents", "pdf:thumbnail",
    "pdf:pages/1/x", "zip:manifest", "photo:probe",
])
def test_a_page_or_preview_not_in_the_index_is_not_found(world: World, link: str, path: str) -> None:
    name, rest = path.split(":")
    got = requests.get(f"{link}/items/{world.id(name)}/{rest}", timeout=10)
    assert got.status_code == 404 and got.text == pages.not_found()


ROUTES = ["view", "audio", "text", "pages/1", "previews/1", "document", "contents"]
OWNER = {"view": "photo", "audio": "audio", "text": "text", "pages/1": "pdf", "previews/1": "zip", "document": "pdf",
         "contents": "zip"}


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_goes_through_the_gate(world: World, route: str) -> None:
    item_id = world.id(OWNER[route])
    url, link_id = world.share(item_id)
    # Another case's item, or one of this case the link does not share: not found.
    assert requests.get(f"{url}/items/{world.other['id']}/{route}", timeout=10).status_code == 404
    unshared = world.id("office")
    assert requests.get(f"{url}/items/{unshared}/{route}", timeout=10).text == pages.not_found()
    with requests.Session() as browser:
        assert browser.get(f"{url}/items/{item_id}/{route}", timeout=10).status_code == 200
        world.revoke(link_id)
        # Revoked through the same process: refused on the very next request (Gate.forget).
        gone = browser.get(f"{url}/items/{item_id}/{route}", timeout=10)
    assert gone.status_code == 410 and gone.text == pages.gone()
    assert requests.get(f"{url}/items/{item_id}/{route}", timeout=10).status_code == 410


def test_the_document_and_contents_pages_are_recorded_as_pages(world: World) -> None:
    pdf, zip_id = world.id("pdf"), world.id("zip")
    url, _ = world.share(pdf, zip_id)
    before = world.seq()
    with requests.Session() as browser:
        document = browser.get(f"{url}/items/{pdf}/document?page=2", timeout=10)
        contents = browser.get(f"{url}/items/{zip_id}/contents", timeout=10)
    assert document.status_code == contents.status_code == 200
    assert document.headers["content-security-policy"] == pages.CSP
    found = [e for e in world.entries(before) if e["action"] == "link.accessed"]
    # Counted as the link's page views are: one entry per window, about the first page seen in it.
    assert found and {e["details"]["kind"] for e in found} == {"page"} and found[0]["subject"]["item"] == pdf
    assert len(found) == len({e["details"]["window"]["from"] for e in found}), found
    assert all(e["details"]["outcome"] == "granted" for e in found)


def test_the_link_page_shows_each_exhibit_by_what_it_has(world: World, link: str) -> None:
    text = requests.get(link, timeout=10).text
    sections = {name: _section(text, world.id(name)) for name in FILES}
    photo = sections["photo"]
    assert f'src="/s/{_token(link)}/items/{world.id("photo")}/view"' in photo and "<details><summary>EXIF data" in photo
    assert "<dt>Make</dt><dd>Apple</dd>" in photo and "<dt>Model</dt><dd>iPhone 12</dd>" in photo
    assert f"Page 1 of {samples.PDF_PAGES}" in sections["pdf"] and "/document?page=1" in sections["pdf"]
    assert "<audio controls" in sections["audio"] and 'type="audio/mp4"' in sections["audio"]
    # The text escaped, in a <pre>: its markup is shown, never made.
    assert "&lt;script&gt;alert(" in sections["text"] and "<script" not in text and "<b>" not in text
    assert "<pre" in sections["text"] and "/text\">Open the whole text working copy" in sections["text"]
    assert "An archive of 4 entries (3 files, 2 with a preview)" in sections["zip"]
    office = sections["office"]
    assert "No preview for this kind of file (an office document)" in office
    assert world.items["office"]["hashes"]["sha256"] in office
    assert all("No preview" not in sections[name] for name in ("photo", "pdf", "audio", "text", "zip"))


def test_the_contents_page_lists_entries_with_previews_and_hashes(world: World, link: str) -> None:
    zip_id = world.id("zip")
    text = requests.get(f"{link}/items/{zip_id}/contents?page=1", timeout=10).text
    manifest = world.api(f"/api/v1/items/{zip_id}/derivatives/manifest").json()
    for entry in manifest["entries"]:
        assert html.escape(entry["path"]) in text
        assert entry["sha256"] is None or entry["sha256"] in text
    assert f'<img src="/s/{_token(link)}/items/{zip_id}/previews/1"' in text
    assert f'src="/s/{_token(link)}/items/{zip_id}/previews/2" aria-label="Preview of DCIM/VID_0002.mp4"' in text


def _token(link: str) -> str:
    return link.rsplit("/s/", 1)[1]


def _section(text: str, item_id: str) -> str:
    found = re.search(rf'<section aria-labelledby="h-{item_id}">(.*?)</section>', text, re.S)
    assert found, item_id
    return found.group(1)


# -- the officer's item page ------------------------------------------------------------------------


def test_the_officer_sees_the_same_working_copies(world: World) -> None:
    browser = sign_in(world.server, world.officer)
    base = f"{world.server.url}/app/items"
    photo = browser.get(f"{base}/{world.id('photo')}", timeout=10).text
    assert f'src="/app/items/{world.id("photo")}/media/view"' in photo and "<dt>Make</dt><dd>Apple</dd>" in photo
    pdf = browser.get(f"{base}/{world.id('pdf')}?page=2", timeout=10).text
    assert f"Page 2 of {samples.PDF_PAGES}" in pdf and "/media/pages/2" in pdf and "?page=3" in pdf
    assert browser.get(f"{base}/{world.id('pdf')}?page=9", timeout=10).status_code == 404
    contents = browser.get(f"{base}/{world.id('zip')}", timeout=10).text
    assert "DCIM/IMG_0001.jpg" in contents and "/media/previews/1" in contents
    assert "<audio controls" in browser.get(f"{base}/{world.id('audio')}", timeout=10).text
    assert "&lt;script&gt;alert(" in browser.get(f"{base}/{world.id('text')}", timeout=10).text
    assert "No preview for this kind of file" in browser.get(f"{base}/{world.id('office')}", timeout=10).text
    for path, expected in ((f"{world.id('pdf')}/media/pages/2", 200), (f"{world.id('zip')}/media/previews/1", 200),
                           (f"{world.id('zip')}/media/previews/0", 404), (f"{world.id('pdf')}/media/pages/0", 404),
                           (f"{world.id('pdf')}/media/manifest/1", 404), (f"{world.id('pdf')}/media/view", 404)):
        assert browser.get(f"{base}/{path}", timeout=10).status_code == expected, path
    text = browser.get(f"{base}/{world.id('text')}/media/text", headers={"Range": "bytes=0-4"}, timeout=10)
    assert text.status_code == 206 and text.headers["content-security-policy"] == "sandbox; default-src 'none'"


def test_an_officer_of_another_case_sees_none_of_it(world: World) -> None:
    stranger = world.server.token("stranger@force.police.uk", "officer")
    browser = sign_in(world.server, stranger)
    for path in (world.id("pdf"), f"{world.id('pdf')}/media/pages/1", f"{world.id('zip')}/media/previews/1",
                 f"{world.id('text')}/media/text"):
        assert browser.get(f"{world.server.url}/app/items/{path}", timeout=10).status_code == 404, path


# -- in a browser ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_or_fail()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # bypass_csp only so that axe-core can be injected; the page's own policy is checked above.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def _accessible(page: Any) -> None:
    problems = serious_accessibility_problems(page)
    assert not problems, "\n".join(problems)


def _section_of(page: Any, world: World, name: str) -> Any:
    return page.locator(f'section[aria-labelledby="h-{world.id(name)}"]')


def _loaded(image: Any) -> None:
    image.scroll_into_view_if_needed()
    image.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(),
                                 timeout=20_000)


def test_browser_an_image_upright_with_its_exif(world: World, link: str, page: Any) -> None:
    page.goto(link)
    section = _section_of(page, world, "photo")
    image = section.locator("img")
    _loaded(image)
    # Stored 640x480 on its side (orientation 6): the working copy stands upright.
    width, height = page.evaluate("img => [img.naturalWidth, img.naturalHeight]", image.element_handle())
    assert height > width, (width, height)
    section.locator("summary", has_text="EXIF data").click()
    assert section.locator("dt", has_text="Model").is_visible()
    assert "iPhone 12" in section.inner_text()
    section.scroll_into_view_if_needed()
    screenshot(page, "reviewer-image")
    _accessible(page)


def test_browser_a_pdf_page_by_page(world: World, link: str, page: Any) -> None:
    page.goto(link)
    section = _section_of(page, world, "pdf")
    _loaded(section.locator("img"))
    assert f"Page 1 of {samples.PDF_PAGES}" in section.inner_text()
    section.get_by_role("link", name="Read the document, page by page").click()
    page.get_by_role("link", name="Next page").click()
    page.wait_for_url(re.compile(r".*/document\?page=2$"))
    assert f"Page 2 of {samples.PDF_PAGES}" in page.inner_text("main")
    _loaded(page.get_by_role("img", name=f"Page 2 of {FILES['pdf']}"))
    screenshot(page, "reviewer-pdf-page-2")
    _accessible(page)
    page.get_by_label(re.compile("Go to page")).fill("3")
    page.get_by_role("button", name="Go").click()
    page.wait_for_url(re.compile(r".*/document\?page=3$"))
    assert page.get_by_role("link", name="Next page").count() == 0
    _loaded(page.get_by_role("img", name=f"Page 3 of {FILES['pdf']}"))


def test_browser_a_zip_extraction_with_its_previews(world: World, link: str, page: Any) -> None:
    page.goto(link)
    _section_of(page, world, "zip").get_by_role("link", name="Browse the contents").click()
    page.wait_for_url(re.compile(r".*/contents\?page=1$"))
    rows = page.locator("tbody tr")
    assert rows.count() == len(samples.EXTRACTION)
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())] == \
        ["DCIM/ (folder)", *samples.EXTRACTION[1:]]
    _loaded(page.get_by_role("img", name="Preview of DCIM/IMG_0001.jpg"))
    page.wait_for_function("document.querySelector('td video').readyState >= 1", timeout=20_000)
    screenshot(page, "reviewer-zip-contents")
    _accessible(page)


def test_browser_an_audio_recording_plays(world: World, link: str, page: Any) -> None:
    page.goto(link)
    section = _section_of(page, world, "audio")
    section.scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('audio').readyState >= 1", timeout=20_000)
    duration = page.evaluate("document.querySelector('audio').duration")
    assert 2 < duration < 4, duration
    assert page.evaluate("document.querySelector('audio').error") is None
    screenshot(page, "reviewer-audio")
    _accessible(page)


def test_browser_text_and_an_office_file(world: World, link: str, page: Any) -> None:
    page.goto(link)
    text = _section_of(page, world, "text")
    shown = text.locator("pre").inner_text()
    assert samples.NOTES.strip() in shown and page.locator("script, b").count() == 0
    office = _section_of(page, world, "office")
    assert "No preview for this kind of file" in office.inner_text()
    assert world.items["office"]["hashes"]["sha256"] in office.inner_text()
    office.scroll_into_view_if_needed()
    screenshot(page, "reviewer-text-and-office")
    _accessible(page)


def test_browser_the_officer_reads_a_pdf_and_an_extraction(world: World, page: Any) -> None:
    base = world.server.url
    page.goto(f"{base}/app/login")
    page.get_by_label("Access token").fill(world.officer)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/app/")
    page.goto(f"{base}/app/items/{world.id('pdf')}")
    _loaded(page.get_by_role("img", name=f"Page 1 of {FILES['pdf']}"))
    page.get_by_role("link", name="Next page").click()
    page.wait_for_url(re.compile(r".*\?page=2$"))
    _loaded(page.get_by_role("img", name=f"Page 2 of {FILES['pdf']}"))
    screenshot(page, "officer-pdf-page-2")
    _accessible(page)
    page.goto(f"{base}/app/items/{world.id('zip')}")
    _loaded(page.get_by_role("img", name="Preview of DCIM/IMG_0001.jpg"))
    assert "DCIM/VID_0002.mp4" in page.get_by_role("table", name=re.compile("^Entries 1 to 4")).inner_text()
    screenshot(page, "officer-zip-contents")
    _accessible(page)
    page.goto(f"{base}/app/items/{world.id('photo')}")
    _loaded(page.get_by_role("img", name=re.compile("the image at screen size")))
    page.locator("summary", has_text="EXIF data").click()
    assert "iPhone 12" in page.locator("details").inner_text()
    _accessible(page)
