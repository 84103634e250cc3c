"""The reviewer's pages (evidence.http.reviewer.pages) against hostile values.

Every value a page shows comes from someone else: the officer's filename and exhibit
reference, the case reference, the item's state, the link's URL. Each is tried with markup
that would run script or add attributes if it were not escaped, in every place it appears.
A page rendered with a hostile value must have exactly the elements and attribute names of
the same page rendered with a plain value, and show the hostile value as text. Then the same
through a real server: an upload whose filename and exhibit reference are hostile, shared
by link, and refusal pages that echo nothing of the URL.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests

from evidence.http.app import create_app
from evidence.http.reviewer import pages
from evidence.http.reviewer.copies import Entry
from evidence.settings import Settings
from tests.support.inprocess import serving

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    '" autofocus onfocus="alert(1)',
    "</title></style><script>alert(1)</script>",
    "&lt;b&gt; &amp; &#34;",  # already-escaped text is shown as typed, not decoded once more
    "javascript:alert(1)",
]
PLAIN = "plain-value"
CSP = pages.CSP


class Parsed(HTMLParser):
    """The document as a browser's tokenizer sees it: its tags with their attribute names
    (the structure), the text, and the attribute values."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.structure: list[tuple[str, ...]] = []
        self.texts: list[str] = []
        self.values: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.structure.append((tag, *sorted(name for name, _ in attrs)))
        self.values.extend(value for _, value in attrs if value is not None)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.structure.append((f"/{tag}",))

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)


def exhibit(value: str, **changes: Any) -> pages.Exhibit:
    """An exhibit showing ``value`` as its filename, exhibit reference, state and SHA-256."""
    shown = pages.Exhibit(id="a" * 32, filename=value, exhibit=value, size=86232,
                          hashes={"sha256": value, "sha1": "b" * 40, "md5": "c" * 32}, state=value, has_proxy=True,
                          proxy_type="video/mp4", has_contact_sheet=True, has_poster=True)
    return dataclasses.replace(shown, **changes)


def every_kind(value: str, **changes: Any) -> pages.Exhibit:
    """An exhibit with a working copy of every kind, ``value`` in each place one shows text
    from the file: its EXIF tags and their values, its text."""
    return exhibit(value, has_view=True, exif=((value, value), ("Make", value)), audio_type="audio/mp4", text=value,
                   text_more=True, pages=2, page_count=5, entries=3, files=2, previews=1, **changes)


def listed(value: str) -> list[pages.Listed]:
    """Archive entries whose path, hash, time and problem are ``value``: with an image
    preview, a video preview, a reason for none, a folder."""
    entry = Entry(1, value, False, 10, value, value, value)
    return [pages.Listed(entry, "image"), pages.Listed(dataclasses.replace(entry, index=2), "video"),
            pages.Listed(dataclasses.replace(entry, index=3), None, value),
            pages.Listed(Entry(4, value, True, 0, None, None, None))]


# Each page, with a value put in every place that page can show one.
PAGES: dict[str, Callable[[str], str]] = {
    "shared, download": lambda v: pages.shared_page(v, f"/s/{v}", [exhibit(v), exhibit(v, exhibit=None)], True, v),
    "shared, view only": lambda v: pages.shared_page(v, "/s/t", [exhibit(v, has_poster=False)], False, v),
    "shared, nothing shared": lambda v: pages.shared_page(v, "/s/t", [], False, v),
    "shared, every kind": lambda v: pages.shared_page(v, "/s/t", [every_kind(v, has_proxy=False)], True, v),
    "shared, office": lambda v: pages.shared_page(v, "/s/t", [exhibit(v, has_proxy=False, has_contact_sheet=False,
                                                                      entries=3, office=True)], False, v),
    "shared, processing": lambda v: pages.shared_page(v, "/s/t", [exhibit(v, state="processing", has_proxy=False)],
                                                      False, v),
    "document": lambda v: pages.document_page(v, f"/s/{v}", every_kind(v), 2),
    "contents": lambda v: pages.contents_page(v, f"/s/{v}", every_kind(v), listed(v), 2, 3, 101),
    "passcode": lambda v: pages.passcode_form(f"/s/{v}"),
    "passcode, message": lambda v: pages.passcode_form(f"/s/{v}", v),
    "not found": lambda v: pages.not_found(),
    "gone": lambda v: pages.gone(),
    "too many": lambda v: pages.too_many(),
}


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("page", PAGES)
def test_a_hostile_value_changes_no_element_or_attribute(page: str, value: str) -> None:
    plain, hostile = Parsed(PAGES[page](PLAIN)), Parsed(PAGES[page](value))
    assert hostile.structure == plain.structure
    assert not any(tag[0] == "script" or any(a.startswith("on") for a in tag[1:]) for tag in hostile.structure)
    if PLAIN in plain.text or PLAIN in "".join(plain.values):
        # Shown exactly as it was given: as text, or within an attribute's value.
        assert value in hostile.text or any(value in v for v in hostile.values)


def test_every_value_of_the_shared_page_is_shown_where_it_belongs() -> None:
    value = '"><img src=x onerror=alert(1)>'
    found = Parsed(pages.shared_page(value, "/s/t", [exhibit(value)], True, value))
    assert f"Case {value}" in found.text
    assert f"Working copy of {value}" in found.values
    assert f"Contact sheet: stills from {value}" in found.values
    # Filename, exhibit reference, state and a hash: each in a row of its own.
    assert found.text.count(value) >= 6


def test_each_exhibit_shows_what_it_has() -> None:
    page = Parsed(pages.shared_page("C", "/s/t", [every_kind("x", has_proxy=False, id="i")], False, "soon"))
    sources = [v for v in page.values if v.startswith("/s/t/items/i/")]
    assert sources == ["/s/t/items/i/contact-sheet", "/s/t/items/i/view", "/s/t/items/i/view", "/s/t/items/i/pages/1",
                       "/s/t/items/i/document?page=1", "/s/t/items/i/text", "/s/t/items/i/audio",
                       "/s/t/items/i/audio", "/s/t/items/i/contents?page=1", "/s/t/items/i/report"]
    assert "Page 1 of 5" in page.text and "Pages after 2 were not rendered." in page.text
    assert "The first 64 KiB of the text are shown." in page.text and "EXIF data (2 tags)" in page.text
    assert "No preview" not in page.text and "Still being processed" not in page.text
    office = Parsed(pages.shared_page("C", "/s/t", [exhibit("x", has_proxy=False, has_contact_sheet=False, entries=3,
                                                             office=True)], False, "soon")).text
    assert "No preview for this kind of file (an office document)" in office
    unlisted = Parsed(pages.shared_page("C", "/s/t", [exhibit("x", has_proxy=False, has_contact_sheet=False,
                                                               unlisted=True)], False, "soon")).text
    assert "too large to show here" in unlisted and "No preview" not in unlisted
    waiting = pages.shared_page("C", "/s/t", [exhibit("x", state="received", has_proxy=False,
                                                      has_contact_sheet=False)], False, "soon")
    assert "Still being processed" in waiting and "No preview" not in waiting


def test_the_pagers_link_only_to_pages_that_exist() -> None:
    first = Parsed(pages.document_page("C", "/s/t", every_kind("x", id="i"), 1))
    assert "/s/t/items/i/document?page=2" in first.values and "/s/t/items/i/document?page=0" not in first.values
    last = Parsed(pages.document_page("C", "/s/t", every_kind("x", id="i"), 2))
    assert "/s/t/items/i/document?page=1" in last.values and "/s/t/items/i/document?page=3" not in last.values
    assert "/s/t/items/i/pages/2" in last.values and "Page 2 of 5" in last.text
    contents = Parsed(pages.contents_page("C", "/s/t", every_kind("x", id="i"), listed("p"), 3, 3, 201))
    assert "/s/t/items/i/contents?page=2" in contents.values and "/s/t/items/i/contents?page=4" not in contents.values
    assert "/s/t/items/i/previews/1" in contents.values and "/s/t/items/i/previews/2" in contents.values
    assert "/s/t/items/i/previews/3" not in contents.values and "Entries 201 to 204" in contents.text


def test_pages_are_complete_documents_with_no_script() -> None:
    for page, render in PAGES.items():
        html = render(PLAIN)
        assert html.startswith("<!DOCTYPE html>\n<html lang=\"en\">"), page
        tags = {tag[0] for tag in Parsed(html).structure}
        assert "script" not in tags and "iframe" not in tags, page
        # One link element: the favicon, from this server (no stylesheet or anything else).
        assert html.count("<link ") == 1 and '<link rel="icon" href="/app/static/favicon.svg"' in html, page
        assert html.count("<style>") == 1, page


def test_refusal_pages_say_nothing_of_any_case() -> None:
    for page in (pages.not_found(), pages.gone(), pages.too_many()):
        text = Parsed(page).text
        assert "Case" not in text and "exhibit" not in text.lower()


@pytest.mark.parametrize(("size", "shown"), [
    (0, "0 bytes"), (1023, "1023 bytes"), (1024, "1.0 KiB (1024 bytes)"), (86232, "84.2 KiB (86232 bytes)"),
    (3 * 1024**3, "3.0 GiB (3221225472 bytes)"), (5 * 1024**5, "5120.0 TiB (5629499534213120 bytes)"),
])
def test_human_size(size: int, shown: str) -> None:
    assert pages.human_size(size) == shown


# -- through a real server ------------------------------------------------------------------

CASE = "OP-HOSTILE"
FILENAME = '"><img src=x onerror=alert(1)><script>alert(2)</script>.mp4'
EXHIBIT = "EX-1 '><svg onload=alert(3)>"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """An app with one officer, a case, and one item whose filename and exhibit are hostile;
    the URL and the officer's token."""
    from evidence import cases
    from evidence.accounts import users

    app = create_app(Settings(data_dir=tmp_path / "data"))
    rt = app.state.runtime
    with serving(app) as url:
        with rt.db.transaction() as session:
            officer = users.add_user(session, "officer@force.police.uk", "officer")
            cases.assign(session, cases.create_case(session, CASE, None, "operator:test"), officer, "operator:test")
            token = rt.signer.issue(officer)
        metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}"
                            for k, v in {"filename": FILENAME, "case": CASE, "exhibit": EXHIBIT}.items())
        created = requests.post(f"{url}/files/", data=b"hostile", timeout=30, headers={
            "Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", "Upload-Length": "7",
            "Upload-Metadata": metadata, "Content-Type": "application/offset+octet-stream"})
        assert created.status_code == 201, created.text
        yield url, token


def test_a_shared_page_of_hostile_names_runs_nothing(server: tuple[str, str]) -> None:
    url, token = server
    made = requests.post(f"{url}/api/v1/links", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                         json={"case": CASE, "to": "cps@cps.gov.uk", "expires_in": 3600})
    assert made.status_code == 201, made.text
    page = requests.get(made.json()["url"], timeout=30)
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP
    found = Parsed(page.text)
    assert not any(tag[0] in ("script", "svg") or any(a.startswith("on") for a in tag[1:]) for tag in found.structure)
    assert FILENAME in found.text and EXHIBIT in found.text
    # The item has no working copies yet: no image or video at all, hostile or not.
    assert [tag for tag in found.structure if tag[0] in ("img", "video")] == []


@pytest.mark.parametrize("path", [
    '/s/"><script>alert(1)</script>',
    "/s/x/items/<img src=x onerror=alert(1)>/original",
    "/s/x/items/y/'onmouseover='alert(1)",
])
def test_refusals_echo_nothing_of_the_url(server: tuple[str, str], path: str) -> None:
    url, _ = server
    response = requests.get(url + requests.utils.requote_uri(path), timeout=30)
    assert response.status_code == 404
    assert response.headers["content-security-policy"] == CSP
    assert response.text == pages.not_found()
