"""The HTML custody report: every value an officer, a reviewer's browser or a worker put in the record
is text on the page, never markup, and the embedded machine-readable report cannot end its script
element or change how it is parsed. Checked on the bytes, with Python's HTML parser, and in headless
Chromium (Debian's, through Playwright); the page still verifies offline, as do pages made before
the template."""

from __future__ import annotations

import json
import re
import shlex
from html.parser import HTMLParser
from typing import Any

import pytest
from markupsafe import escape

from audit import canonical
from evidence import custody
from evidence.custody import report
from evidence.custody.actions import Action
from evidence.custody.report_html import embedded_json, render, script_json
from evidence.custody.statement import label
from evidence.models import Case, Item, Upload, User
from evidence.runtime import Runtime
from tests.support.browser import chromium_or_fail

# Ends the script element, opens one, opens a comment that would swallow the real end tag
# (the "double escaped" state of the HTML tokenizer), breaks out of quoted attributes, adds an
# element with an event handler, carries entities, and a literal backslash-u003c, which the
# embedded JSON must keep apart from its own escapes.
HOSTILE = ("</script><script>window.__pwned=1</script>\"'><!--<script>"
           "<img src=x onerror=\"window.__pwned=2\">&amp;&lt; \\u003c </SCRIPT >")
SCRIPT_TAG = '<script type="application/json" id="custody-report">'
TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "code", "table", "colgroup", "col", "thead", "tbody", "tr",
        "th", "td", "ul", "li", "script", "br"}


def hostile(field: str) -> str:
    return f"{field}:{HOSTILE}"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_inert(page: str, report_: dict[str, Any], shown: list[str]) -> None:
    """Nothing in ``page`` but the template's own markup; each of ``shown`` is there as text."""
    assert page.count("<script") == 1 and page.count("</script>") == 1 and page.lower().count("<script") == 1
    assert page.count("<!--") == 0, "no comment opens before the signature"
    assert HOSTILE not in page and "<img" not in page and "onerror=\"" not in page
    parsed = _Page()
    parsed.feed(page)
    parsed.close()
    assert {tag for tag, _ in parsed.tags} <= TAGS
    assert [tag for tag, _ in parsed.tags].count("script") == 1
    attributes = {name for _, attrs in parsed.tags for name, _ in attrs}
    assert attributes <= {"lang", "charset", "scope", "class", "colspan", "type", "id"}, attributes
    text = "".join(parsed.text)
    for value in shown:
        assert value in text, value
    # The embedded report: no character that means anything to HTML, and exactly the signed JSON.
    start = page.index(SCRIPT_TAG) + len(SCRIPT_TAG)
    embedded = page[start : page.index("</script>", start)]
    assert not {"<", ">", "&"} & set(embedded)
    assert json.loads(embedded) == report_
    assert embedded_json(embedded.encode()) == canonical(report_)


def made_up_report() -> dict[str, Any]:
    """A report as `report.build` makes one, with a hostile value wherever a value comes from outside."""
    entry = {"seq": 0, "time": "2026-03-01T02:14:00.000000Z", "actor": hostile("actor"), "action": "link.accessed",
             "subject": {"case": "OP-1", "item": "i1", "link": "l1"},
             "details": {"user_agent": hostile("user_agent"), "ip": "203.0.113.9"}}
    return {
        "format": report.FORMAT, "generated_at": "2026-03-02T00:00:00.000000Z",
        "ledger": {"origin": hostile("origin"), "public_key": hostile("public_key")},
        "checkpoint": hostile("checkpoint"), "tree_size": 2, "root": "AA==",
        "item": {"id": hostile("id"), "case": hostile("case"), "exhibit": hostile("exhibit"),
                 "filename": hostile("filename"), "size": 5, "hashes": {"sha256": hostile("sha256")},
                 "client_sha256": hostile("client_sha256"), "state": "failed", "reason": hostile("reason"),
                 "kind": "video", "media": {}, "warnings": [hostile("warning")], "storage_key": "originals/x"},
        "derivatives": [{"kind": hostile("kind"), "sha256": "ab" * 32, "size": 7, "content_type": "video/mp4",
                         "method": {"tool": "ffmpeg", "argv": ["ffmpeg", "-metadata", hostile("argv")]}}],
        "entries": [{"seq": 0, "entry": entry, "body": canonical(entry).decode(), "leaf_hash": "00" * 32,
                     "proof": []}],
        "copy": "reviewer",
        "withheld": [{"seq": 1, "action": hostile("action"), "reason": hostile("withheld"), "leaf_hash": "11" * 32,
                      "proof": []}],
        "signature": hostile("signature"),
    }


def test_every_value_is_text_on_the_page() -> None:
    made_up = made_up_report()
    page = render(made_up)
    shown = [hostile(field) for field in ("origin", "public_key", "checkpoint", "id", "case", "exhibit", "filename",
                                          "sha256", "client_sha256", "reason", "warning", "kind", "actor",
                                          "action", "withheld", "user_agent")]
    # A command line is shown as a shell would take it.
    assert_inert(page, made_up, shown + [shlex.quote(hostile("argv"))])
    assert f"<title>Continuity statement: {hostile('filename')}</title>" not in page


def test_a_value_that_would_open_a_comment_cannot_hide_the_end_of_the_script() -> None:
    """Before the template, "</" alone was escaped: "<!--<script>" in a filename left the embedded
    report open to the end of the file for an HTML parser (and JSON.parse in a browser failed)."""
    made_up = made_up_report()
    made_up["item"]["filename"] = "<!--<script>"
    embedded = script_json(made_up)
    assert "<!--" not in embedded and "<script" not in embedded
    assert embedded_json(embedded.encode()) == canonical(made_up)


def test_events_are_numbered_for_the_statement_with_their_ledger_entries_in_the_appendix() -> None:
    """The ledger's numbers skip entries about other items; the statement numbers its own events
    1, 2, 3... and the appendix names each one's ledger entry."""
    made_up = made_up_report()
    made_up["entries"][0]["seq"] = made_up["entries"][0]["entry"]["seq"] = 4
    made_up["withheld"][0]["seq"] = 9
    seqs = [4, 9]
    page = render(made_up)
    statement, appendix = page.split("id=appendix", 1)
    shown = [int(n) for n in re.findall(r"<tr><td class=n>(\d+)</td><td class=nowrap>", statement)]
    assert shown == list(range(1, len(seqs) + 1))
    for seq in seqs:
        assert f"(ledger entry {seq})" in appendix


def test_labels_come_from_the_action_enum() -> None:
    made_up = made_up_report()
    made_up["entries"][0]["entry"]["action"] = Action.USER_DISABLED
    made_up["withheld"][0]["action"] = "case.archived"  # no longer known: shown as recorded
    page = render(made_up)
    assert f"<td>{escape(Action.USER_DISABLED.label)} by {escape(hostile('actor'))}</td>" in page
    assert "<td>case.archived (ledger entry " in page and "<td>case.archived: withheld from this copy (" in page
    assert label("upload.created") == "Upload started"


# -- through the ledger, on SQLite and PostgreSQL -----------------------------------------------


@pytest.fixture
def hostile_item(rt: Runtime) -> str:
    with rt.db.transaction() as session:
        officer = User(email="pc@force.police.uk", role="officer")
        case = Case(ref="OP-HOSTILE", created_by="operator:root")
        session.add_all([officer, case])
        session.flush()
        upload = "0123456789abcdef0123456789abcdef"
        session.add(Upload(id=upload, owner_id=officer.id, case_id=case.id, storage_key=f"originals/{upload}"))
        session.flush()
        item = Item(case_id=case.id, upload_id=upload, officer_id=officer.id, filename=hostile("filename"), size=5,
                    storage_key=f"originals/{upload}", hashes={"sha256": "ab" * 32}, exhibit=hostile("exhibit"),
                    description=hostile("description"), state="failed", reason=hostile("reason"),
                    warnings=[hostile("warning")])
        session.add(item)
        session.flush()
        subject = {"case": case.ref, "item": item.id}
        custody.record(session, Action.CASE_CREATED, {"case": case.ref}, "operator:root", {"title": hostile("title")})
        custody.record(session, Action.ORIGINAL_STORED, subject, "system:transfer",
                       {"filename": hostile("filename"), "description": hostile("description"), "size": 5})
        custody.record(session, Action.LINK_ACCESSED, {**subject, "link": "l" * 32}, "link:reviewer@cps.gov.uk",
                       {"user_agent": hostile("user_agent"), "ip": "203.0.113.9", "object": "page"})
        custody.record(session, Action.ITEM_FAILED, subject, "system:worker", {"reason": hostile("reason")})
        return item.id


def test_a_hostile_item_and_record_make_an_inert_page_that_verifies(rt: Runtime, hostile_item: str) -> None:
    with rt.db.transaction() as session:
        page = report.export(session, rt.ledger_keys, hostile_item, "html", "system:test")
    checked = report.verify_report(page, rt.ledger_keys.verifier)
    text = page.decode()
    body = text[: text.rindex(report.HTML_SIGNATURE_PREFIX)]
    assert_inert(body, checked, [hostile(field) for field in ("filename", "exhibit", "reason", "warning", "title",
                                                                "description", "user_agent")])
    assert [e["entry"]["action"] for e in checked["entries"]] == [
        "case.created", "original.stored", "link.accessed", "item.failed"]


def test_a_page_made_before_the_template_still_verifies(rt: Runtime, hostile_item: str) -> None:
    """Embedded JSON then had only "</" escaped (as "<\\/"); such pages stay checkable."""
    with rt.db.transaction() as session:
        built = report.build(session, rt.ledger_keys, hostile_item, "system:test")
    page = render(built)
    start = page.index(SCRIPT_TAG) + len(SCRIPT_TAG)
    end = page.index("</script>", start)
    older = page[:start] + canonical(built).decode().replace("</", "<\\/") + page[end:]
    assert report.verify_report(report.sign_html(older, rt.ledger_keys), rt.ledger_keys.verifier) == built
    assert report.verify_report(report.sign_html(page, rt.ledger_keys), rt.ledger_keys.verifier) == built


# -- in a browser ------------------------------------------------------------------------------


def test_in_a_browser_nothing_runs_and_the_embedded_report_parses() -> None:
    executable = chromium_or_fail()
    from playwright.sync_api import sync_playwright

    made_up = made_up_report()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(java_script_enabled=True)
            page.set_content(render(made_up), wait_until="load")
            found = page.evaluate("""() => ({
                pwned: window.__pwned ?? null,
                scripts: document.scripts.length,
                images: document.images.length,
                embedded: JSON.parse(document.getElementById('custody-report').textContent),
                title: document.title,
                text: document.body.innerText,
            })""")
        finally:
            browser.close()
    assert (found["pwned"], found["scripts"], found["images"]) == (None, 1, 0)
    assert found["embedded"] == made_up
    assert found["title"] == f"Continuity statement: {hostile('filename')}"
    assert hostile("warning") in found["text"] and hostile("exhibit") in found["text"]
