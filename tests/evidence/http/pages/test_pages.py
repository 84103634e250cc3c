"""The pages over real HTTP (a real ``evidence serve``), without a browser: sessions, CSRF,
roles and cases, security headers, sharing, the officer's late hash and the audit job.
Sessions are checked on SQLite and PostgreSQL (the ``server`` fixture); the rest on SQLite.
The browser tests (test_browser.py) drive the same pages in Chromium."""

from __future__ import annotations

import re
import time
from pathlib import Path

import requests

from tests.support.files import random_file
from tests.support.server import Server, sign_in


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_root_and_pages_send_a_stranger_to_sign_in(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    assert requests.get(f"{server.url}/", allow_redirects=False, timeout=10).headers["location"] == "/app/"
    first = requests.get(f"{server.url}/app/cases/OP-1", allow_redirects=False, timeout=10)
    assert first.status_code == 303 and first.headers["location"] == "/app/login?next=/app/cases/OP-1"
    login = requests.get(f"{server.url}/app/login", timeout=10)
    assert 'for="token">Access token</label>' in login.text and ">Sign in</button>" in login.text
    assert "Sign in with your force account" not in login.text  # no identity provider configured
    csp = login.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    # Scripts' endpoints answer 401, not a redirect.
    assert requests.get(f"{server.url}/app/fragments/items?case=OP-1", timeout=10).status_code == 401


def test_the_session_cookie_is_strict_and_ends_with_the_token_and_on_sign_out(server: Server) -> None:
    token = server.token()
    server.case("OP-1")
    raw = requests.Session()
    csrf = csrf_of(raw.get(f"{server.url}/app/login", timeout=10).text)
    answer = raw.post(f"{server.url}/app/login", data={"token": token, "csrf": csrf}, allow_redirects=False,
                      timeout=10)
    cookie = answer.headers["set-cookie"]
    assert "evidence_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace(
        "SameSite=Strict", "SameSite=strict")
    assert "expires=" in cookie.lower()
    page = raw.get(f"{server.url}/app/", timeout=10)
    assert page.status_code == 200 and ">OP-1</a>" in page.text and "Sign out" in page.text
    stolen = dict(raw.cookies)
    out = raw.post(f"{server.url}/app/logout", data={"csrf": csrf_of(page.text)}, allow_redirects=False, timeout=10)
    assert out.status_code == 303
    # A copy of the cookie made before signing out no longer works either.
    again = requests.get(f"{server.url}/app/", cookies=stolen, allow_redirects=False, timeout=10)
    assert again.status_code == 303 and "/app/login" in again.headers["location"]


def test_a_bad_token_or_a_forged_form_does_not_sign_in(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    browser = requests.Session()
    csrf = csrf_of(browser.get(f"{server.url}/app/login", timeout=10).text)
    refused = browser.post(f"{server.url}/app/login", data={"token": "not-a-token", "csrf": csrf}, timeout=10)
    assert refused.status_code == 401 and "was not accepted" in refused.text
    forged = requests.post(f"{server.url}/app/login", data={"token": server.token(), "csrf": "x"},
                           allow_redirects=False, timeout=10)
    assert forged.status_code == 400 and "evidence_session" not in forged.headers.get("set-cookie", "")


def test_revoking_an_accounts_tokens_ends_its_sessions(server: Server) -> None:
    browser = sign_in(server, server.token())
    assert browser.get(f"{server.url}/app/", allow_redirects=False, timeout=10).status_code == 200
    server.cli("users", "revoke", "officer@force.police.uk")
    assert browser.get(f"{server.url}/app/", allow_redirects=False, timeout=10).status_code == 303


def test_an_officer_sees_only_their_cases_and_a_reviewer_none(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    officer = sign_in(server, server.token())
    server.case("OP-MINE")
    server.case("OP-OTHER", officer=None)
    listing = officer.get(f"{server.url}/app/", timeout=10).text
    assert "OP-MINE" in listing and "OP-OTHER" not in listing
    other = officer.get(f"{server.url}/app/cases/OP-OTHER", headers={"Accept": "text/html"}, timeout=10)
    missing = officer.get(f"{server.url}/app/cases/OP-NOPE", headers={"Accept": "text/html"}, timeout=10)
    assert other.status_code == missing.status_code == 404
    assert "OP-OTHER" in other.text and "does not exist" not in other.text
    reviewer = sign_in(server, server.token("reviewer@cps.gov.uk", "reviewer"))
    assert reviewer.get(f"{server.url}/app/cases/OP-MINE", timeout=10).status_code == 403
    assert reviewer.get(f"{server.url}/app/audit", timeout=10).status_code == 403
    assert officer.get(f"{server.url}/app/audit", timeout=10).status_code == 403


def test_share_and_revoke_from_the_case_page_need_the_form_token(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    token = server.token()
    server.case("OP-SHARE")
    source = tmp_path / "clip.bin"
    random_file(source, 10_000)
    server.cli("upload", str(source), "--case", "OP-SHARE", "--server", server.url, "--token", token)
    officer = sign_in(server, token)
    page = officer.get(f"{server.url}/app/cases/OP-SHARE", timeout=10)
    assert 'id="uploader"' in page.text and "clip.bin" in page.text
    form = {"case": "OP-SHARE", "to": "reviewer@cps.gov.uk", "expires": "7d", "download": "1"}
    assert officer.post(f"{server.url}/app/links", data=form, timeout=10).status_code == 403  # no CSRF token
    made = officer.post(f"{server.url}/app/links", data={**form, "csrf": csrf_of(page.text)}, timeout=10)
    assert made.status_code == 200
    link = re.search(r'id="new-link" type="text" readonly value="([^"]+)"', made.text)
    assert link and link.group(1).startswith(f"{server.url}/s/")
    assert requests.get(link.group(1), timeout=10).status_code == 200
    revoke = re.search(r'action="(/app/links/[^"]+/revoke)"', made.text)
    assert revoke
    gone = officer.post(f"{server.url}{revoke.group(1)}", data={"csrf": csrf_of(made.text)}, timeout=10)
    assert gone.status_code == 200 and "was revoked" in gone.text and "No live links" in gone.text
    assert requests.get(link.group(1), timeout=10).status_code == 410
    bad = officer.post(f"{server.url}/app/links", data={**form, "expires": "forever", "csrf": csrf_of(made.text)},
                       timeout=10)
    assert bad.status_code == 400 and "not a duration" in bad.text
    huge = officer.post(f"{server.url}/app/links", data={**form, "expires": "9" * 18 + "d", "csrf": csrf_of(made.text)},
                        timeout=10)
    assert huge.status_code == 400 and "far too long" in huge.text


def _tus_create(server: Server, browser: requests.Session, csrf: str, size: int, case: str = "OP-HASH") -> str:
    import base64

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    made = browser.post(f"{server.url}/files/", headers={
        "Tus-Resumable": "1.0.0", "Upload-Length": str(size), "X-CSRF-Token": csrf,
        "Upload-Metadata": f"filename {b64('a.bin')},case {b64(case)}"}, timeout=10)
    assert made.status_code == 201, made.text
    return made.headers["location"].rstrip("/").rsplit("/", 1)[1]


def test_the_browser_uploads_with_its_session_and_records_its_hash_late(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    server = make_server({"EVIDENCE_EMBEDDED_WORKER": "true"})
    token = server.token()
    server.case("OP-HASH")
    officer = sign_in(server, token)
    csrf = csrf_of(officer.get(f"{server.url}/app/cases/OP-HASH", timeout=10).text)
    # The session cookie alone does not upload: another site's page could send that.
    refused = officer.post(f"{server.url}/files/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "3",
                                                          "Upload-Metadata": "filename YQ==,case T1AtSEFTSA=="},
                           timeout=10)
    assert refused.status_code == 403
    data = b"evidence bytes " * 1000
    digest = hashlib.sha256(data).hexdigest()
    upload_id = _tus_create(server, officer, csrf, len(data))
    url = f"{server.url}/app/uploads/{upload_id}/sha256"
    # Half sent, then the hash (computed while sending) arrives; then the rest.
    patch = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream", "X-CSRF-Token": csrf}
    assert officer.patch(f"{server.url}/files/{upload_id}", data=data[:7000], headers={**patch, "Upload-Offset": "0"},
                         timeout=10).status_code == 204
    assert officer.post(url, json={"sha256": digest}, timeout=10).status_code == 403  # no CSRF header
    early = officer.post(url, json={"sha256": digest}, headers={"X-CSRF-Token": csrf}, timeout=10)
    assert early.json() == {"state": "uploading", "item": None, "matches": None}
    conflict = officer.post(url, json={"sha256": "0" * 64}, headers={"X-CSRF-Token": csrf}, timeout=10)
    assert conflict.status_code == 409
    assert officer.patch(f"{server.url}/files/{upload_id}", data=data[7000:],
                         headers={**patch, "Upload-Offset": "7000"}, timeout=10).status_code == 204
    item = server.settled_item(officer.post(url, json={"sha256": digest}, headers={"X-CSRF-Token": csrf},
                                            timeout=10).json()["item"])
    assert item["client_sha256"] == digest and item["hashes"]["sha256"] == digest and item["state"] == "ready"

    # A hash that comes after the worker hashed the original, and differs: quarantined.
    other = _tus_create(server, officer, csrf, len(data))
    assert officer.patch(f"{server.url}/files/{other}", data=data, headers={**patch, "Upload-Offset": "0"},
                         timeout=10).status_code == 204
    item_id = officer.get(f"{server.url}/api/v1/uploads/{other}", headers={"Authorization": f"Bearer {token}"},
                          timeout=10).json()["item"]
    server.settled_item(item_id)
    late = officer.post(f"{server.url}/app/uploads/{other}/sha256", json={"sha256": "ab" * 32},
                        headers={"X-CSRF-Token": csrf}, timeout=10)
    assert late.json()["matches"] is False and late.json()["state"] == "quarantined"
    # Someone else's upload reads as missing.
    stranger = sign_in(server, server.token("other@force.police.uk"))
    stranger_csrf = csrf_of(stranger.get(f"{server.url}/app/", timeout=10).text)
    assert stranger.post(url, json={"sha256": digest}, headers={"X-CSRF-Token": stranger_csrf},
                         timeout=10).status_code == 404



def test_the_auditor_verifies_the_ledger_in_the_background(uploaded: tuple[Server, str, str]) -> None:
    server, item_id, auditor_token = uploaded
    auditor = sign_in(server, auditor_token)
    page = auditor.get(f"{server.url}/app/audit", timeout=10)
    assert "Verify ledger" in page.text and server.cli("audit", "public-key").stdout.strip() in page.text
    started = auditor.post(f"{server.url}/app/audit/verify", headers={"Accept": "application/json",
                                                                     "X-CSRF-Token": csrf_of(page.text)}, timeout=10)
    assert started.status_code == 202
    deadline = time.monotonic() + 30
    while (status := auditor.get(server.url + started.json()["status_url"], timeout=10).json())["state"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status["ok"] is True and re.fullmatch(r"Ledger verified: \d+ entries", status["message"])
    found = auditor.get(f"{server.url}/app/audit", params={"item": item_id}, allow_redirects=False, timeout=10)
    assert found.headers["location"] == f"/app/items/{item_id}"
    item_page = auditor.get(f"{server.url}/app/items/{item_id}", timeout=10)
    assert "Custody timeline" in item_page.text and "Upload completed" in item_page.text
    assert "report?format=case" in item_page.text and "report?format=pdf" in item_page.text
    report = auditor.get(f"{server.url}/app/items/{item_id}/report", params={"format": "json"}, timeout=10)
    assert report.status_code == 200 and report.json()["item"]["id"] == item_id
    pdf = auditor.get(f"{server.url}/app/items/{item_id}/report", params={"format": "pdf"}, timeout=60)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and f'custody-{item_id}.pdf' in pdf.headers["content-disposition"]


def test_every_page_carries_the_security_headers(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    browser = sign_in(server, server.token("admin@force.police.uk", "admin"))
    for path in ("/app/", "/app/audit", "/app/login"):
        answer = browser.get(server.url + path, timeout=10)
        assert answer.status_code == 200
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-frame-options"] == "DENY"
        assert "script-src 'self' 'wasm-unsafe-eval'" in answer.headers["content-security-policy"]
