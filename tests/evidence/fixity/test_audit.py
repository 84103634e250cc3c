"""`evidence audit fixity` on a real server's local vault (SQLite and PostgreSQL): an untouched
vault passes and the run is one fixity.checked entry; an original changed or removed behind the
server's back, as root would, is named, the command exits 1, the ledger gets a fixity.failed
entry with what was expected and found, and the flag shows in the item's JSON, its page and its
custody report; `--due` checks only what the schedule would, and an upload still in progress is
no object to check."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import timedelta
from pathlib import Path

import requests

from evidence import fixity
from evidence.models import Derivative, utcnow
from tests.evidence.fixity.conftest import Stored, rewrite_a_byte
from tests.support.server import ADMIN, sign_in


def test_an_untouched_vault_passes_and_the_run_is_one_entry(stored: Stored) -> None:
    done = stored.fixity("--all")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: ") and "read with file system" in done.stdout
    [entry] = stored.entries("fixity.checked")
    details = entry.details
    assert entry.actor == "operator:service" and entry.subject == {} and entry.item_id is None
    objects = details["objects"]
    copies = stored.copies(stored.pdf)
    assert objects["originals"] == 2 and objects["failed"] == 0
    assert objects["working_copies"] == len(copies) + len(stored.copies(stored.blob))
    assert objects["parts"] >= 3  # the PDF's three page images
    assert details["scope"] == "all" and details["trigger"] == "command" and details["items"] == 2
    assert details["started_at"] <= details["finished_at"] and details["bytes"] > 2_000_000
    assert stored.entries("fixity.failed") == []
    shown = stored.item(stored.pdf)["fixity"]
    assert shown["state"] == "ok" and shown["checked_at"] and shown["problems"] == [] and shown["failed_at"] is None


def test_objects_checked_recently_are_not_due(stored: Stored) -> None:
    # Just stored: each object's first turn is somewhere in the next 30 days, not now.
    first = stored.fixity()
    assert first.returncode == 0 and first.stdout.startswith("ok: nothing due now"), first.stdout
    assert stored.fixity("--all").returncode == 0
    again = stored.fixity("--due")
    assert again.returncode == 0 and again.stdout.startswith("ok: nothing due now")
    # Every run of the command is on the record, an empty one too: three summaries.
    summaries = [entry.details for entry in stored.entries("fixity.checked")]
    assert [(s["scope"], s["objects"]["originals"]) for s in summaries] == [("due", 0), ("all", 2), ("due", 0)]
    row = stored.row(stored.blob)
    assert row.fixity_checked_at is not None and row.fixity_due_at is not None
    assert row.fixity_checked_at < row.fixity_due_at <= row.fixity_checked_at + timedelta(days=30)


def test_the_limit_caps_the_objects(stored: Stored) -> None:
    done = stored.fixity("--all", "--limit", "1")
    assert done.returncode == 0 and "1 object(s)" in done.stdout and "limit reached" in done.stdout
    [entry] = stored.entries("fixity.checked")
    assert entry.details["objects"]["originals"] + entry.details["objects"]["working_copies"] == 1
    assert entry.details["limit"] == 1 and entry.details["stopped"] == "limit reached"


def test_a_rewritten_original_is_named_recorded_and_flagged(stored: Stored) -> None:
    server = stored.server
    recorded = stored.item(stored.blob)["hashes"]["sha256"]
    now = rewrite_a_byte(stored.original(stored.blob))
    done = stored.fixity("--all")
    assert done.returncode == 1
    assert f"FAILED {stored.blob}" in done.stdout.splitlines()
    assert stored.pdf not in done.stdout  # the untouched item is not named
    assert f"item {stored.blob} (case OP-FIXITY): original DIFFERS" in done.stderr
    [failed] = stored.entries("fixity.failed")
    assert failed.actor == "operator:service" and failed.subject == {"case": "OP-FIXITY", "item": stored.blob}
    details = failed.details
    assert details["object"] == "original" and details["problem"] == "differs"
    assert details["expected"] == {"sha256": recorded, "size": 2_000_000}
    assert details["found"] == {"sha256": hashlib.sha256(now).hexdigest(), "size": 2_000_000}
    [summary] = stored.entries("fixity.checked")
    assert summary.details["run"] == details["run"] and summary.details["objects"]["failed"] == 1
    assert summary.details["items_failed"] == 1
    # The flag: in the API's item JSON...
    shown = stored.item(stored.blob)["fixity"]
    assert shown["state"] == "failed" and shown["failed_at"]
    [problem] = shown["problems"]
    assert (problem["object"], problem["problem"], problem["found"]["sha256"]) == (
        "original", "differs", hashlib.sha256(now).hexdigest())
    assert stored.item(stored.pdf)["fixity"]["state"] == "ok"
    # ...in `evidence items show`...
    shown_cli = server.cli("items", "show", stored.blob, token=server.token(ADMIN, "admin")).stdout.splitlines()
    assert [line for line in shown_cli if line.startswith("fixity ")] == [
        f"fixity        FAILED: original differs (checked {shown['checked_at'][:19].replace('T', ' ')} UTC)"]
    # ...on the officer's page, as a warning that cannot be missed...
    browser = sign_in(server, server.token())
    page = browser.get(f"{server.url}/app/items/{stored.blob}", timeout=10).text
    assert 'role="alert"' in page and "Fixity audit FAILED" in page and hashlib.sha256(now).hexdigest() in page
    assert "Fixity audit FAILED" not in browser.get(f"{server.url}/app/items/{stored.pdf}", timeout=10).text
    # ...and in the custody report, in the statement's words and the item's facts.
    auditor = sign_in(server, server.token("auditor@force.police.uk", "auditor"))
    report = auditor.get(f"{server.url}/app/items/{stored.blob}/report?format=html", timeout=30).text
    assert "FAILED at the latest check: original: DIFFERS" in report
    assert f"SHA-256 recorded {recorded}, found {hashlib.sha256(now).hexdigest()}" in report
    # Checked again, still different: recorded again (once per run), still flagged.
    assert stored.fixity("--all").returncode == 1
    assert len(stored.entries("fixity.failed")) == 2


def test_a_removed_original_and_a_changed_page_image_are_found(stored: Stored) -> None:
    os.unlink(stored.original(stored.pdf))
    pages = stored.copies(stored.pdf)["pages"]
    page_dir = stored.path(pages.key).parent / "pages"
    page = sorted(page_dir.iterdir())[0]
    rewrite_a_byte(page, at=50)
    done = stored.fixity("--all")
    assert done.returncode == 1 and done.stdout.splitlines()[-1] == f"FAILED {stored.pdf}"
    found = {(e.details["object"], e.details.get("kind"), e.details["part"], e.details["problem"])
             for e in stored.entries("fixity.failed")}
    assert found == {("original", None, None, "missing"), ("working copy", "pages", page.stem, "differs")}
    problems = stored.item(stored.pdf)["fixity"]["problems"]
    assert {p["problem"] for p in problems} == {"missing", "differs"}


def test_the_audit_reads_no_faster_than_its_rate(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Measured, not timed against a deadline: the run takes at least its bytes over its rate."""
    from tests.support.files import random_file

    rate = 4 * 1024 * 1024
    server = make_server({"EVIDENCE_EMBEDDED_WORKER": "true", "EVIDENCE_FIXITY_BYTES_PER_SECOND": str(rate)})
    case = server.case("OP-RATE")
    source = tmp_path / "clip.bin"
    random_file(source, 10 * 1024 * 1024)
    out = server.cli("upload", str(source), "--case", case, "--server", server.url, "--token", server.token())
    server.settled_item(out.stdout.split()[0])
    rt = server.runtime()
    try:
        started = time.monotonic()
        outcome = fixity.audit(rt, fixity.Options(scope=fixity.ALL))
        took = time.monotonic() - started
    finally:
        rt.close()
    assert outcome.bytes >= 10 * 1024 * 1024 and not outcome.findings
    assert took >= outcome.bytes / rate and outcome.seconds >= outcome.bytes / rate
    print(f"\nlocal vault, paced at 4 MiB/s: {outcome.bytes / 2**20 / took:.2f} MiB/s over {took:.2f} s")


def test_an_upload_in_progress_is_not_checked(stored: Stored) -> None:
    server = stored.server
    import base64

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    headers = {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {server.token()}"}
    created = requests.post(f"{server.url}/files/", headers={
        **headers, "Upload-Length": "1000000",
        "Upload-Metadata": f"filename {b64('half.bin')},case {b64('OP-FIXITY')}"}, timeout=10)
    assert created.status_code == 201, created.text
    sent = requests.patch(created.headers["Location"] if created.headers["Location"].startswith("http")
                          else f"{server.url}{created.headers['Location']}", data=b"x" * 500_000, headers={
        **headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}, timeout=10)
    assert sent.status_code == 204, sent.text
    done = stored.fixity("--all")
    assert done.returncode == 0, done.stdout + done.stderr
    assert stored.entries("fixity.checked")[0].details["objects"]["originals"] == 2


def test_working_copies_and_parts_are_due_in_turn(stored: Stored) -> None:
    """Every working copy gets a due date of its own, spread like the originals'."""
    rt = stored.server.runtime()
    try:
        fixity.run.assign_due_dates(rt, timedelta(days=30), utcnow())
        with rt.db.sessions() as session:
            rows = list(session.query(Derivative))
        dues = {row.fixity_due_at for row in rows}
        assert len(dues) == len(rows) and all(row.created_at < row.fixity_due_at for row in rows)
    finally:
        rt.close()
