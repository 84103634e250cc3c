"""Every route of the app, with every role and with no token, through a real socket.

The pages under /app/ take a signed-in session (a cookie from signing in with the same
token) instead of a bearer token; they are checked the same way with it: without one, a
page sends the browser to sign in (303 to /app/login) and a script's endpoint answers 401.

One table says who may use each route. Every route the app has must be in it (a new route
fails this test until it is classified), every entry must still be a route, and every
/api route's declared role dependency must agree with it. "Allowed" means the request got
past authentication and the role check (any status but 401 and 403, and no 5xx); not
allowed means 403 with a token and 401 without one. A revoked token or a disabled account
is refused (401) on every route that takes an account; and a case or item an officer may
not see answers exactly like one that does not exist.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastapi.routing
import pytest
import requests
from fastapi import FastAPI
from sqlalchemy import select
from starlette.routing import Mount

from evidence import cases
from evidence.accounts import users as accounts
from evidence.http.app import create_app
from evidence.http.pages import session
from evidence.models import Item, Upload
from evidence.settings import Settings
from tests.support.inprocess import serving

# Uploads here hand their items to the embedded broker (kombu's SQLAlchemy transport), whose
# models use `noload`, deprecated in SQLAlchemy 2.1. As an error it would leave SQLAlchemy's
# mappers half-configured for every later test in the process.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")

IDENTITIES = ("officer", "reviewer", "auditor", "admin")
CALLERS = (None, *IDENTITIES)  # None: no token at all
PUBLIC = frozenset(CALLERS)
ANY_ACCOUNT = frozenset(IDENTITIES)
OFFICER_ADMIN = frozenset({"officer", "admin"})
READERS = frozenset({"officer", "auditor", "admin"})
AUDIT = frozenset({"auditor", "admin"})
ADMIN = frozenset({"admin"})
TUS_METHODS = ("OPTIONS", "POST", "HEAD", "PATCH", "DELETE")
CASE = "OP-MATRIX"

# (method, route path) -> who may use it. Reviewers have no API access: links only.
ALLOWED: dict[tuple[str, str], frozenset[str | None]] = {
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,  # Swagger UI from local files (evidence.http.pages.docs)
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/api/v1/cases"): READERS,
    ("POST", "/api/v1/cases"): OFFICER_ADMIN,
    ("GET", "/api/v1/cases/{ref:path}"): READERS,
    ("GET", "/api/v1/items"): READERS,
    ("GET", "/api/v1/items/{item_id}"): READERS,
    # Media: never auditors.
    ("GET", "/api/v1/items/{item_id}/derivatives/{kind}"): OFFICER_ADMIN,
    ("GET", "/api/v1/items/{item_id}/derivatives/{kind}/{number}"): OFFICER_ADMIN,  # a PDF's page, a ZIP entry's preview
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("PATCH", "/api/v1/users/{user_id}"): ADMIN,
    ("POST", "/api/v1/users/{user_id}/revoke-tokens"): ADMIN,
    ("GET", "/api/v1/assignments"): ADMIN,
    ("POST", "/api/v1/assignments"): ADMIN,
    ("DELETE", "/api/v1/assignments"): ADMIN,
    ("GET", "/api/v1/uploads/{upload_id}"): OFFICER_ADMIN,
    ("GET", "/api/v1/audit/checkpoint"): AUDIT,
    ("GET", "/api/v1/audit/entries"): AUDIT,
    ("GET", "/api/v1/audit/proof/inclusion"): AUDIT,
    ("GET", "/api/v1/audit/proof/consistency"): AUDIT,
    ("GET", "/api/v1/audit/public-key"): AUDIT,
    ("GET", "/api/v1/audit/report/{item_id}"): AUDIT,
    ("POST", "/api/v1/links"): OFFICER_ADMIN,
    ("GET", "/api/v1/links"): OFFICER_ADMIN,
    ("POST", "/api/v1/links/{link_id}/revoke"): OFFICER_ADMIN,
    # Retention: the outcome by the case's officer or an admin; holds and disposal by admins.
    ("POST", "/api/v1/retention/outcome"): OFFICER_ADMIN,
    ("POST", "/api/v1/retention/hold"): ADMIN,
    ("POST", "/api/v1/retention/release"): ADMIN,
    ("GET", "/api/v1/retention/due"): AUDIT,
    ("POST", "/api/v1/retention/disposals"): ADMIN,
    ("POST", "/api/v1/retention/disposals/{item_id}/approve"): ADMIN,
    # The reviewer's pages: the signed link is the credential, no account involved.
    ("GET", "/s/{token}"): PUBLIC,
    ("POST", "/s/{token}"): PUBLIC,
    ("GET", "/s/{token}/items/{item_id}/original"): PUBLIC,
    ("GET", "/s/{token}/items/{item_id}/report"): PUBLIC,
    ("GET", "/s/{token}/items/{item_id}/document"): PUBLIC,
    ("GET", "/s/{token}/items/{item_id}/contents"): PUBLIC,
    ("GET", "/s/{token}/items/{item_id}/{name}"): PUBLIC,
    ("GET", "/s/{token}/items/{item_id}/{name}/{number}"): PUBLIC,
    ("GET", "/s/{rest:path}"): PUBLIC,
    ("POST", "/s/{rest:path}"): PUBLIC,
    # tus: discovery is open; everything else is for uploaders.
    ("OPTIONS", "/files/"): PUBLIC,
    ("POST", "/files/"): OFFICER_ADMIN,
    ("HEAD", "/files/{upload_id}"): OFFICER_ADMIN,
    ("PATCH", "/files/{upload_id}"): OFFICER_ADMIN,
    ("DELETE", "/files/{upload_id}"): OFFICER_ADMIN,
    # The pages: signing in is open, everything else takes a session of the right role.
    ("GET", "/"): PUBLIC,
    ("GET", "/app"): PUBLIC,
    ("GET", "/app/login"): PUBLIC,
    ("POST", "/app/login"): PUBLIC,
    ("GET", "/app/login/oidc"): PUBLIC,
    ("GET", "/app/login/oidc/callback"): PUBLIC,
    ("GET", "/app/static/{path}"): PUBLIC,
    ("POST", "/app/logout"): ANY_ACCOUNT,
    ("GET", "/app/"): ANY_ACCOUNT,
    ("GET", "/app/cases/{ref:path}"): READERS,
    ("GET", "/app/fragments/items"): READERS,
    ("POST", "/app/links"): OFFICER_ADMIN,
    ("POST", "/app/links/{link_id}/revoke"): OFFICER_ADMIN,
    ("POST", "/app/uploads/{upload_id}/sha256"): OFFICER_ADMIN,
    ("GET", "/app/items/{item_id}"): READERS,
    ("GET", "/app/items/{item_id}/media/{kind}"): OFFICER_ADMIN,
    ("GET", "/app/items/{item_id}/media/{kind}/{number}"): OFFICER_ADMIN,
    ("GET", "/app/items/{item_id}/report"): AUDIT,
    ("GET", "/app/audit"): AUDIT,
    ("POST", "/app/audit/verify"): AUDIT,
    ("GET", "/app/audit/jobs/{job_id}"): AUDIT,
}
PAGE_DEPENDENCIES = (session.page_user, session.script_user)


def app_routes(app: FastAPI) -> dict[tuple[str, str], Any]:
    """(method, path) of every route, with included routers flattened and the tus mount
    expanded into its methods. HEAD beside GET is Starlette's automatic twin: it is
    checked through GET."""
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    found: dict[tuple[str, str], Any] = {}
    for route in walk(app.routes) if walk else app.routes:
        if isinstance(getattr(route, "route", route), Mount) and route.path != "/files":
            found[("GET", f"{route.path}/{{path}}")] = route  # static files
            continue
        if isinstance(getattr(route, "route", route), Mount):
            for method in TUS_METHODS:
                found[(method, f"{route.path}/" if method in ("OPTIONS", "POST") else f"{route.path}/{{upload_id}}")] = route
            continue
        methods = set(route.methods or ())
        if "GET" in methods:
            methods.discard("HEAD")
        for method in methods:
            found[(method, route.path)] = route
    return found


def takes_session(route: Any) -> bool:
    """Whether the route resumes the pages' session (and so checks the account)."""
    dependant = getattr(route, "dependant", None)
    pending = list(dependant.dependencies) if dependant else []
    while pending:
        dependency = pending.pop()
        if dependency.call in PAGE_DEPENDENCIES:
            return True
        pending.extend(dependency.dependencies)
    return False


def declared_roles(route: Any) -> frozenset[str] | None:
    """The roles of the route's ``role(...)`` dependency, if it has one."""
    dependant = getattr(route, "dependant", None)
    pending = list(dependant.dependencies) if dependant else []
    while pending:
        dependency = pending.pop()
        if hasattr(dependency.call, "roles"):
            return frozenset(dependency.call.roles)
        pending.extend(dependency.dependencies)
    return None


class World:
    """A running app with one account of each role, an officer's case with an item, an
    unfinished upload, and a way to send any route's request."""

    def __init__(self, app: FastAPI, url: str) -> None:
        self.app, self.url = app, url
        rt = app.state.runtime
        with rt.db.transaction() as session:
            users = {name: accounts.add_user(session, f"{name}@force.police.uk", name) for name in IDENTITIES}
            # Admins (who may use every route) soon to be revoked and disabled; an officer on another case.
            for name in ("revoked", "disabled"):
                users[name] = accounts.add_user(session, f"{name}@force.police.uk", "admin")
            users["outsider"] = accounts.add_user(session, "outsider@force.police.uk", "officer")
            colleague = accounts.add_user(session, "colleague@force.police.uk", "officer")
            case = cases.create_case(session, CASE, None, "operator:test@host")
            cases.assign(session, case, users["officer"], "operator:test@host")
            cases.assign(session, case, colleague, "operator:test@host")
            elsewhere = cases.create_case(session, "OP-ELSEWHERE", None, "operator:test@host")
            cases.assign(session, elsewhere, users["outsider"], "operator:test@host")
            self.tokens = {name: rt.signer.issue(user) for name, user in users.items()}
            self.ids = {name: user.id for name, user in users.items()}
            self.colleague_id = colleague.id
        officer = {"Authorization": f"Bearer {self.tokens['officer']}", "Tus-Resumable": "1.0.0"}
        done = requests.post(f"{url}/files/", headers={**officer, "Upload-Length": "5", "Upload-Metadata": self.metadata(),
                             "Content-Type": "application/offset+octet-stream"}, data=b"12345", timeout=10)
        assert done.status_code == 201, done.text
        self.finished = done.headers["Location"].rsplit("/", 1)[1]
        with rt.db.sessions() as session:
            self.item = session.scalar(select(Item.id).where(Item.upload_id == self.finished))
            assert session.get(Upload, self.finished) is not None
        self.created = 0
        self.sessions: dict[str, tuple[requests.cookies.RequestsCookieJar, str]] = {}

    def signed_in(self, caller: str, fresh: bool = False) -> tuple[requests.cookies.RequestsCookieJar, str]:
        """The caller's session cookie and its CSRF token, from signing in with their token
        (``fresh``: a new one, not kept, for signing out)."""
        if fresh or caller not in self.sessions:
            browser = requests.Session()
            form = browser.get(f"{self.url}/app/login", timeout=10).text
            login_csrf = re.search(r'name="csrf" value="([^"]+)"', form)
            assert login_csrf
            signed = browser.post(f"{self.url}/app/login", data={"token": self.tokens[caller], "csrf": login_csrf.group(1)},
                                  allow_redirects=False, timeout=10)
            assert signed.status_code == 303, signed.text
            page = browser.get(f"{self.url}/app/", timeout=10).text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page)
            assert csrf
            if fresh:
                return browser.cookies, csrf.group(1)
            self.sessions[caller] = (browser.cookies, csrf.group(1))
        return self.sessions[caller]

    def page_request(self, method: str, url: str, path: str, caller: str | None) -> requests.Response:
        # Signing out ends the session: a fresh one for it (the revoked and disabled keep theirs).
        fresh = path == "/app/logout" and caller in IDENTITIES
        cookies, csrf = self.signed_in(caller, fresh) if caller else (None, "")
        data: dict[str, str] | None = None
        body: dict[str, str] | None = None
        headers = {"X-CSRF-Token": csrf, "Accept": "text/html"}
        if path == "/app/links":
            data = {"case": CASE, "to": "cps@cps.gov.uk", "expires": "1h", "csrf": csrf}
        elif path == "/app/uploads/{upload_id}/sha256":
            url = url.replace(self.finished, self.unfinished())
            body = {"sha256": "0" * 64}
        elif method == "POST":
            data = {"csrf": csrf}
        params = {"case": CASE} if path == "/app/fragments/items" else {}
        return requests.request(method, self.url + url, headers=headers, cookies=cookies, data=data, json=body,
                                params=params, timeout=30, allow_redirects=False)

    @staticmethod
    def metadata() -> str:
        return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in {"filename": "a.bin", "case": CASE}.items())

    def unfinished(self) -> str:
        response = requests.post(f"{self.url}/files/", headers={
            "Authorization": f"Bearer {self.tokens['officer']}", "Tus-Resumable": "1.0.0",
            "Upload-Length": "10", "Upload-Metadata": self.metadata()}, timeout=10)
        assert response.status_code == 201, response.text
        return response.headers["Location"].rsplit("/", 1)[1]

    def send(self, method: str, path: str, caller: str, **options: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[caller]}", **options.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **options)

    def request(self, method: str, path: str, caller: str | None) -> requests.Response:
        self.created += 1
        values = {"{ref:path}": CASE, "{item_id}": self.item, "{kind}": "proxy", "{user_id}": self.colleague_id,
                  "{link_id}": "0" * 32, "{token}": "not-a-link", "{name}": "proxy.mp4", "{rest:path}": "elsewhere",
                  "{job_id}": "no-such-job", "{path}": "app.css", "{upload_id}": self.finished}
        url = path
        for placeholder, value in values.items():
            url = url.replace(placeholder, value)
        if path == "/" or path.startswith("/app"):
            return self.page_request(method, url, path, caller)
        headers: dict[str, str] = {}
        if caller is not None:
            headers["Authorization"] = f"Bearer {self.tokens[caller]}"
        params: dict[str, str] = {}
        body: dict[str, Any] | None = None
        data: bytes | None = None
        if path.startswith("/files/"):
            headers.update({"Tus-Resumable": "1.0.0"})
            if method == "POST":
                headers.update({"Upload-Length": "5", "Upload-Metadata": self.metadata()})
            else:
                # DELETE needs an unfinished upload of the officer's; the others the finished one.
                url = url.replace(self.finished, self.unfinished()) if method == "DELETE" else url
                if method == "PATCH":
                    headers.update({"Content-Type": "application/offset+octet-stream", "Upload-Offset": "5"})
                    data = b""
        url = url.replace("{upload_id}", self.finished)
        if path in ("/api/v1/items", "/api/v1/assignments", "/api/v1/links") and method in ("GET", "DELETE"):
            params["case"] = CASE
        if (method, path) == ("DELETE", "/api/v1/assignments"):
            params["email"] = "colleague@force.police.uk"
        if path == "/api/v1/audit/proof/inclusion":
            params["seq"] = "0"
        if path == "/api/v1/audit/proof/consistency":
            params["from"] = "1"
        if method in ("POST", "PATCH") and path.startswith("/api/"):
            body = {
                "/api/v1/cases": {"ref": f"OP-NEW-{self.created}"},
                "/api/v1/users": {"email": "new@force.police.uk", "role": "officer"},
                "/api/v1/users/{user_id}": {},
                "/api/v1/assignments": {"case": CASE, "email": "officer@force.police.uk"},
                "/api/v1/links": {"case": CASE, "to": "cps@cps.gov.uk", "expires_in": 3600},
            }.get(path, {})
        if (method, path) == ("POST", "/s/{token}"):
            data = b"passcode=0000"
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return requests.request(method, self.url + url, headers=headers, params=params, json=body, data=data,
                                timeout=30, allow_redirects=False)


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    app = create_app(Settings(data_dir=tmp_path / "data", database_url=database_url))
    with serving(app) as url:
        yield World(app, url)


def sent_to_sign_in(response: requests.Response) -> bool:
    """Refused for want of a session (signing out sends one there too, with its notice)."""
    location = response.headers.get("location", "")
    return response.status_code == 303 and location.startswith("/app/login") and "signed-out" not in location


def test_every_route_is_classified(world: World) -> None:
    routes = app_routes(world.app)
    assert sorted(set(routes) - set(ALLOWED)) == [], "routes missing from ALLOWED: classify them"
    assert sorted(set(ALLOWED) - set(routes)) == [], "ALLOWED names routes the app no longer has"
    for (method, path), route in routes.items():
        declared = declared_roles(route)
        if path.startswith("/api/"):
            assert declared == ALLOWED[(method, path)], (method, path, declared)
            summary = getattr(route, "summary", "") or ""
            assert all(r in summary for r in declared), f"{method} {path}: the summary must name its roles"
        elif path.startswith("/app/") and ALLOWED[(method, path)] != PUBLIC:
            assert takes_session(route), f"{method} {path}: a page that is not public must resume the session"
        elif ALLOWED[(method, path)] != PUBLIC:
            assert path.startswith("/files/"), f"{method} {path}: only the API, tus and the pages take accounts"


def test_every_route_admits_exactly_its_roles(world: World) -> None:
    wrong = []
    for (method, path) in sorted(app_routes(world.app)):
        allowed = ALLOWED[(method, path)]
        for caller in CALLERS:
            response = world.request(method, path, caller)
            status = response.status_code
            if caller in allowed:
                # (A public route may send anyone to sign in: the identity provider's, when it is off.)
                ok = status not in (401, 403) and status < 500 and (allowed == PUBLIC or not sent_to_sign_in(response))
            elif caller is None and path.startswith("/app/"):
                ok = status == 401 or sent_to_sign_in(response)
            else:
                ok = status == (403 if caller else 401)
            if not ok:
                wrong.append(f"{method} {path} as {caller or 'no token'}: {status}")
    assert wrong == []


def test_revoked_tokens_and_disabled_accounts_are_refused_on_every_route(world: World) -> None:
    for caller in ("revoked", "disabled"):
        assert world.send("GET", "/api/v1/users", caller).status_code == 200
        world.signed_in(caller)  # sessions begun before the account was revoked or disabled
    revoked = world.send("POST", f"/api/v1/users/{world.ids['revoked']}/revoke-tokens", "admin")
    disabled = world.send("PATCH", f"/api/v1/users/{world.ids['disabled']}", "admin", json={"disabled": True})
    assert revoked.status_code == disabled.status_code == 200
    wrong = []
    for (method, path) in sorted(app_routes(world.app)):
        if ALLOWED[(method, path)] == PUBLIC:
            continue
        for caller in ("revoked", "disabled"):
            response = world.request(method, path, caller)
            status = response.status_code
            if status != 401 and not (path.startswith("/app/") and sent_to_sign_in(response)):
                wrong.append(f"{method} {path} as {caller}: {status}")
    assert wrong == []


def test_a_case_out_of_reach_answers_like_one_that_does_not_exist(world: World) -> None:
    """For an officer not assigned to the case: every route that takes a case reference, an
    item, an upload or a link gives the same status and body for the real thing as for a
    made-up one (the probed value itself aside)."""
    link = world.send("POST", "/api/v1/links", "officer", json={"case": CASE, "to": "cps@cps.gov.uk", "expires_in": 3600})
    assert link.status_code == 201, link.text
    unfinished = world.unfinished()
    real = {"case": CASE, "item": world.item, "upload": world.finished, "link": link.json()["id"], "unfinished": unfinished}
    made_up = {"case": "OP-NOWHERE", **{k: uuid.uuid4().hex for k in ("item", "upload", "link", "unfinished")}}

    def probes(v: dict[str, str]) -> dict[str, tuple[str, str, dict[str, Any]]]:
        share = {"to": "cps@cps.gov.uk", "expires_in": 3600}
        return {
            "case": ("GET", f"/api/v1/cases/{v['case']}", {}),
            "items of a case": ("GET", "/api/v1/items", {"params": {"case": v["case"]}}),
            "links of a case": ("GET", "/api/v1/links", {"params": {"case": v["case"]}}),
            "share a case": ("POST", "/api/v1/links", {"json": {"case": v["case"], **share}}),
            "a case's outcome": ("POST", "/api/v1/retention/outcome", {"json": {"case": v["case"], "event": "nfa"}}),
            "share an item": ("POST", "/api/v1/links", {"json": {"case": "OP-ELSEWHERE", "items": [v["item"]], **share}}),
            "item": ("GET", f"/api/v1/items/{v['item']}", {}),
            "working copy": ("GET", f"/api/v1/items/{v['item']}/derivatives/proxy", {}),
            "upload": ("GET", f"/api/v1/uploads/{v['upload']}", {}),
            "revoke a link": ("POST", f"/api/v1/links/{v['link']}/revoke", {}),
            "tus HEAD": ("HEAD", f"/files/{v['upload']}", {"headers": {"Tus-Resumable": "1.0.0"}}),
            "tus PATCH": ("PATCH", f"/files/{v['unfinished']}", {"headers": {
                "Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
                "data": b"x"}),
            "tus DELETE": ("DELETE", f"/files/{v['unfinished']}", {"headers": {"Tus-Resumable": "1.0.0"}}),
        }

    def answer(name: str, v: dict[str, str]) -> tuple[int, str, str]:
        method, path, options = probes(v)[name]
        response = world.send(method, path, "outsider", **options)
        text = response.text
        for value in v.values():
            text = text.replace(value, "<probed>")
        return response.status_code, response.headers.get("content-type", ""), text

    differ = []
    for name in probes(real):
        seen, invented = answer(name, real), answer(name, made_up)
        if seen != invented or seen[0] != 404:
            differ.append(f"{name}: {seen} vs {invented}")
    assert differ == []
    # The officer assigned to the case still reaches all of it.
    assert world.send("GET", f"/api/v1/cases/{CASE}", "officer").status_code == 200
    assert world.send("HEAD", f"/files/{unfinished}", "officer", headers={"Tus-Resumable": "1.0.0"}).status_code == 200
