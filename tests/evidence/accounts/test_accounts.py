"""Accounts through the running app: identity-provider tokens beside local ones, accounts
found or created from them (by verified email only), officers kept to the cases they are
assigned to (API and tus alike), and tokens revoked and accounts disabled taking effect at
the next request."""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from sqlalchemy import func, select

from evidence import cases
from evidence.accounts import users as accounts
from evidence.http.app import create_app
from evidence.models import CustodyEvent, User
from evidence.settings import Settings
from tests.support.idp import IdentityProvider
from tests.support.inprocess import serving
from tests.support.server import Server

# Uploads here hand their items to the embedded broker (kombu's SQLAlchemy transport), whose
# models use `noload`, deprecated in SQLAlchemy 2.1. As an error it would leave SQLAlchemy's
# mappers half-configured for every later test in the process.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")


@dataclass
class Site:
    url: str
    app: object
    idp: IdentityProvider
    admin: str  # a local admin token

    def get(self, path: str, token: str, **params: str) -> requests.Response:
        return requests.get(self.url + path, headers={"Authorization": f"Bearer {token}"}, params=params, timeout=10)

    def post(self, path: str, token: str, body: dict[str, object]) -> requests.Response:
        return requests.post(self.url + path, headers={"Authorization": f"Bearer {token}"}, json=body, timeout=10)

    def patch(self, path: str, token: str, body: dict[str, object]) -> requests.Response:
        return requests.patch(self.url + path, headers={"Authorization": f"Bearer {token}"}, json=body, timeout=10)

    def upload(self, token: str, case: str, data: bytes = b"evidence") -> requests.Response:
        metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in {"filename": "a.bin", "case": case}.items())
        headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
                   "Upload-Metadata": metadata, "Content-Type": "application/offset+octet-stream"}
        return requests.post(f"{self.url}/files/", headers=headers, data=data, timeout=10)


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    with running_site(tmp_path, database_url) as found:
        yield found


@contextmanager
def running_site(tmp_path: Path, database_url: str = "", **more: Any) -> Iterator[Site]:
    with IdentityProvider() as idp:
        idp.add_key("RS256")
        idp.add_key("ES256")
        settings = Settings(data_dir=tmp_path / "data", database_url=database_url,
                            **idp.settings(oidc_jwks_refresh_cooldown_seconds=0, **more))
        app = create_app(settings)
        rt = app.state.runtime
        with serving(app) as url:
            with rt.db.transaction() as session:
                admin = rt.signer.issue(accounts.add_user(session, "admin@force.police.uk", "admin"))
                for ref in ("OP-OIDC", "OP-OTHER"):
                    cases.create_case(session, ref, None, "operator:test@host")
            yield Site(url, app, idp, admin)


def test_identity_provider_tokens_work_beside_local_ones(site: Site) -> None:
    # Assigned before the officer ever signed in: the account waits for them, by email.
    assert site.post("/api/v1/assignments", site.admin, {"case": "OP-OIDC", "email": "PC.Smith@force.police.uk"}).status_code == 201
    rs256, es256 = site.idp.published
    officer = site.idp.token(rs256)
    listed = site.get("/api/v1/cases", officer)
    assert listed.status_code == 200, listed.text
    assert [c["ref"] for c in listed.json()] == ["OP-OIDC"]
    assert site.upload(site.idp.token(es256), "OP-OIDC").status_code == 201
    assert site.upload(officer, "OP-OTHER").status_code == 404  # as if it did not exist
    assert site.get("/api/v1/cases/OP-OTHER", officer).status_code == 404  # as if it did not exist

    users = {u["email"]: u for u in site.get("/api/v1/users", site.admin).json()}
    assert users["pc.smith@force.police.uk"]["identity_provider"] == site.idp.issuer
    assert users["pc.smith@force.police.uk"]["role"] == "officer"

    # The provider is the authority on the role: the next token's role is the account's.
    auditor = site.idp.token(roles=["auditor"])
    assert [c["ref"] for c in site.get("/api/v1/cases", auditor).json()] == ["OP-OIDC", "OP-OTHER"]
    assert site.upload(auditor, "OP-OIDC").status_code == 403
    assert site.get("/api/v1/audit/entries", auditor).status_code == 200

    # A first sign-in creates the account.
    newcomer = site.idp.token(sub="f:99", email="dc.jones@force.police.uk", roles=["admin"])
    assert site.get("/api/v1/users", newcomer).status_code == 200
    rt = site.app.state.runtime  # type: ignore[attr-defined]
    with rt.db.sessions() as session:
        created = session.scalar(select(User).where(User.email == "dc.jones@force.police.uk"))
        assert created is not None and (created.idp_subject, created.role) == ("f:99", "admin")


def test_identity_provider_tokens_are_refused_when_wrong(site: Site) -> None:
    no_role = site.idp.token(roles=None)
    response = site.get("/api/v1/cases", no_role)
    assert response.status_code == 403 and "roles" in response.json()["error"]
    assert site.upload(no_role, "OP-OIDC").status_code == 403
    assert site.get("/api/v1/cases", site.idp.token(roles=["reviewer"])).status_code == 403  # links only
    for token in (site.idp.token(aud="other"), site.idp.token(iss="http://127.0.0.1:1/other"),
                  site.idp.token(site.idp.add_key("RS256", publish=False))):
        assert site.get("/api/v1/cases", token).status_code == 401
        assert site.upload(token, "OP-OIDC").status_code == 401
    # Another identity claiming an email that is already bound to a subject.
    site.get("/api/v1/cases", site.idp.token())
    thief = site.idp.token(sub="f:someone-else")
    assert site.get("/api/v1/cases", thief).status_code == 403


def test_an_unreachable_provider_answers_503(site: Site) -> None:
    token = site.idp.token()
    site.idp.stop()
    assert site.get("/api/v1/cases", token).status_code == 503
    assert site.upload(token, "OP-OIDC").status_code == 503
    assert site.get("/api/v1/cases", site.admin).status_code == 200  # local tokens need no provider


def test_officers_see_and_upload_into_their_cases_only(site: Site) -> None:
    rt = site.app.state.runtime  # type: ignore[attr-defined]
    with rt.db.transaction() as session:
        mine = rt.signer.issue(accounts.add_user(session, "officer@force.police.uk", "officer"))
        theirs = rt.signer.issue(accounts.add_user(session, "colleague@force.police.uk", "officer"))
    # An officer who creates a case is assigned to it.
    assert site.post("/api/v1/cases", mine, {"ref": "OP-MINE"}).status_code == 201
    uploaded = site.upload(mine, "OP-MINE")
    assert uploaded.status_code == 201
    [item] = site.get("/api/v1/items", mine, case="OP-MINE").json()
    assert [c["ref"] for c in site.get("/api/v1/cases", mine).json()] == ["OP-MINE"]
    assert site.get("/api/v1/cases", theirs).json() == []
    assert site.get("/api/v1/cases/OP-MINE", theirs).status_code == 404
    assert site.get("/api/v1/items", theirs, case="OP-MINE").status_code == 404
    assert site.get(f"/api/v1/items/{item['id']}", theirs).status_code == 404
    assert site.get(f"/api/v1/items/{item['id']}/derivatives/proxy", theirs).status_code == 404
    # Not assigned, or no such case: the same answer.
    assert site.upload(theirs, "OP-MINE").status_code == 404
    assert site.upload(theirs, "OP-NOPE").status_code == 404

    assert site.post("/api/v1/assignments", site.admin, {"case": "OP-MINE", "email": "colleague@force.police.uk"}).status_code == 201
    assert site.upload(theirs, "OP-MINE").status_code == 201
    assert [u["email"] for u in site.get("/api/v1/assignments", site.admin, case="OP-MINE").json()] == [
        "colleague@force.police.uk", "officer@force.police.uk"]
    gone = requests.delete(f"{site.url}/api/v1/assignments", params={"case": "OP-MINE", "email": "colleague@force.police.uk"},
                           headers={"Authorization": f"Bearer {site.admin}"}, timeout=10)
    assert gone.status_code == 204
    assert site.upload(theirs, "OP-MINE").status_code == 404
    # Only officers are assigned.
    auditor_account = site.post("/api/v1/users", site.admin, {"email": "audit@force.police.uk", "role": "auditor"})
    assert auditor_account.status_code == 201 and auditor_account.json()["token"]
    assert site.post("/api/v1/assignments", site.admin, {"case": "OP-MINE", "email": "audit@force.police.uk"}).status_code == 400
    with rt.db.sessions() as session:
        recorded = [(e.action, e.details.get("officer")) for e in session.scalars(
            select(CustodyEvent).where(CustodyEvent.action.in_(["case.assigned", "case.unassigned"])).order_by(CustodyEvent.seq))]
    assert recorded == [("case.assigned", "officer@force.police.uk"), ("case.assigned", "colleague@force.police.uk"),
                        ("case.unassigned", "colleague@force.police.uk")]


def test_admins_disable_and_enable_accounts(site: Site) -> None:
    rt = site.app.state.runtime  # type: ignore[attr-defined]
    with rt.db.transaction() as session:
        user = accounts.add_user(session, "leaver@force.police.uk", "officer")
        token = rt.signer.issue(user)
    oidc = site.idp.token()  # an identity-provider account, created at its first request
    assert site.get("/api/v1/cases", token).status_code == 200
    assert site.get("/api/v1/cases", oidc).status_code == 200
    listed = {u["email"]: u["id"] for u in site.get("/api/v1/users", site.admin).json()}
    for account in (user.id, listed["pc.smith@force.police.uk"]):
        changed = site.patch(f"/api/v1/users/{account}", site.admin, {"disabled": True})
        assert changed.status_code == 200 and changed.json()["disabled_at"]
    for refused in (token, oidc):
        response = site.get("/api/v1/cases", refused)
        assert response.status_code == 401 and "disabled" in response.json()["error"]
        assert site.upload(refused, "OP-OIDC").status_code == 401
    again = site.post("/api/v1/users", site.admin, {"email": "leaver@force.police.uk", "role": "officer"})
    assert again.status_code == 409 and "enable" in again.json()["error"]  # no token for a shut account

    assert site.patch(f"/api/v1/users/{user.id}", site.admin, {"disabled": False}).json()["disabled_at"] is None
    assert site.get("/api/v1/cases", token).status_code == 200
    assert site.get("/api/v1/cases", oidc).status_code == 401  # still disabled
    assert user_events(site) == [
        ("user.disabled", "leaver@force.police.uk", "user:admin@force.police.uk"),
        ("user.disabled", "pc.smith@force.police.uk", "user:admin@force.police.uk"),
        ("user.enabled", "leaver@force.police.uk", "user:admin@force.police.uk"),
    ]


def user_events(site: Site) -> list[tuple[str, str, str]]:
    rt = site.app.state.runtime  # type: ignore[attr-defined]
    with rt.db.sessions() as session:
        events = session.scalars(select(CustodyEvent).where(CustodyEvent.action.like("user.%")).order_by(CustodyEvent.seq))
        return [(e.action, e.subject["user"], e.actor) for e in events]


def test_revoking_refuses_identity_provider_tokens_issued_until_then(site: Site) -> None:
    now = int(time.time())
    before = site.idp.token(iat=now - 10)
    assert site.get("/api/v1/cases", before).status_code == 200
    account = next(u for u in site.get("/api/v1/users", site.admin).json() if u["email"] == "pc.smith@force.police.uk")
    revoked = site.post(f"/api/v1/users/{account['id']}/revoke-tokens", site.admin, {})
    assert revoked.status_code == 200, revoked.text
    after = datetime.fromisoformat(revoked.json()["tokens_valid_after"]).timestamp()
    response = site.get("/api/v1/cases", before)
    assert response.status_code == 401 and "revoked" in response.json()["error"]
    assert site.upload(before, "OP-OIDC").status_code == 401
    # Whole-second issue times: the revocation's own second cannot be told from before it.
    assert site.get("/api/v1/cases", site.idp.token(iat=math.floor(after))).status_code == 401
    fresh = site.idp.token(iat=math.floor(after) + 1)
    assert site.get("/api/v1/cases", fresh).status_code == 200
    assert user_events(site) == [("user.revoked", "pc.smith@force.police.uk", "user:admin@force.police.uk")]


def test_an_account_is_linked_by_a_verified_email_only(site: Site) -> None:
    # Added before the officer's first sign-in; someone at the provider claims the address.
    assert site.post("/api/v1/assignments", site.admin, {"case": "OP-OIDC", "email": "pc.smith@force.police.uk"}).status_code == 201
    rt = site.app.state.runtime  # type: ignore[attr-defined]

    def accounts() -> int:
        with rt.db.sessions() as session:
            return session.scalar(select(func.count()).select_from(User)) or 0

    count = accounts()
    for unverified in ({"email_verified": None}, {"email_verified": False}, {"email_verified": "true"}):
        token = site.idp.token(sub="f:impostor", **unverified)
        response = site.get("/api/v1/cases", token)
        assert response.status_code == 403, unverified
        assert "not verified pc.smith@force.police.uk" in response.json()["error"]
        assert site.upload(token, "OP-OIDC").status_code == 403
    # Nor is an account created for an unverified address, to wait for its owner.
    newcomer = site.idp.token(sub="f:new", email="dc.new@force.police.uk", email_verified=None)
    assert site.get("/api/v1/cases", newcomer).status_code == 403
    assert accounts() == count
    with rt.db.sessions() as session:
        waiting = session.scalar(select(User).where(User.email == "pc.smith@force.police.uk"))
        assert waiting is not None and waiting.idp_subject is None

    linked = site.get("/api/v1/cases", site.idp.token())
    assert linked.status_code == 200 and [c["ref"] for c in linked.json()] == ["OP-OIDC"]
    # Once bound by subject, later tokens need no verified address to find the account.
    assert site.get("/api/v1/cases", site.idp.token(email_verified=None)).status_code == 200
    assert accounts() == count


def test_the_verified_email_claim_is_configurable(tmp_path: Path) -> None:
    with running_site(tmp_path, oidc_email_verified_claim="https://force.example/email_verified") as site:
        assert site.get("/api/v1/cases", site.idp.token()).status_code == 403  # email_verified is not the claim now
        token = site.idp.token(email_verified=None, **{"https://force.example/email_verified": True})
        assert site.get("/api/v1/cases", token).status_code == 200


def test_cli_assigns_officers(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server(start=False)
    admin = ("--token", server.token("admin@force.police.uk", "admin"))
    server.cli("cases", "create", "OP-CLI", "--assign", "pc.a@force.police.uk", "--assign", "pc.b@force.police.uk",
               *admin)
    server.cli("cases", "assign", "OP-CLI", "pc.c@force.police.uk", *admin)
    server.token("auditor@force.police.uk", "auditor")
    refused = server.cli("cases", "assign", "OP-CLI", "auditor@force.police.uk", *admin, check=False)
    assert refused.returncode == 2 and "only officers" in refused.stderr
    server.cli("cases", "unassign", "OP-CLI", "pc.b@force.police.uk", *admin)
    listed = server.cli("cases", "list", *admin).stdout
    assert listed.strip() == "OP-CLI  -  pc.a@force.police.uk,pc.c@force.police.uk"
    # An officer assigned before being added gets their token from `users add` as usual.
    assert server.token("pc.a@force.police.uk", "officer")


# -- revocation and disabling through `evidence serve` and the CLI ---------------------------

OFFICER = "officer@force.police.uk"


class Api:
    """Requests to a running `evidence serve` with one token: the API and tus alike."""

    def __init__(self, server: Server) -> None:
        self.url = server.url

    def get(self, token: str, path: str = "/api/v1/cases") -> requests.Response:
        return requests.get(self.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def post(self, token: str, path: str, body: dict[str, object] | None = None) -> requests.Response:
        return requests.post(self.url + path, headers={"Authorization": f"Bearer {token}"}, json=body or {}, timeout=10)

    def tus(self, method: str, token: str, path: str = "/files/", data: bytes = b"", **headers: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", **headers}
        return requests.request(method, self.url + path, headers=headers, data=data, timeout=10)

    def start_upload(self, token: str, case: str) -> str:
        """An unfinished upload (5 of 10 bytes): its path under /files/."""
        metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in {"filename": "a.bin", "case": case}.items())
        made = self.tus("POST", token, data=b"12345", **{"Upload-Length": "10", "Upload-Metadata": metadata,
                                                          "Content-Type": "application/offset+octet-stream"})
        assert made.status_code == 201, made.text
        return "/files/" + made.headers["Location"].rsplit("/", 1)[1]

    def refused_everywhere(self, token: str, upload: str, case: str, why: str) -> list[str]:
        """Where ``token`` is not refused with 401 (and ``why`` in the message): API, tus
        HEAD, PATCH, creation and DELETE."""
        metadata = f"filename {base64.b64encode(b'b.bin').decode()},case {base64.b64encode(case.encode()).decode()}"
        answers = {
            "api": self.get(token),
            "head": self.tus("HEAD", token, upload),
            "patch": self.tus("PATCH", token, upload, b"67890", **{"Upload-Offset": "5",
                              "Content-Type": "application/offset+octet-stream"}),
            "post": self.tus("POST", token, **{"Upload-Length": "1", "Upload-Metadata": metadata}),
            "delete": self.tus("DELETE", token, upload),
        }
        wrong = [f"{name}: {r.status_code}" for name, r in answers.items() if r.status_code != 401]
        if why not in answers["api"].json().get("error", ""):
            wrong.append(f"api says {answers['api'].text}")
        return wrong

    def user_events(self, admin: str) -> list[tuple[str, str, str]]:
        entries = self.get(admin, "/api/v1/audit/entries").json()
        return [(e["entry"]["action"], e["entry"]["subject"]["user"], e["entry"]["actor"])
                for e in entries if e["entry"]["action"].startswith("user.")]


def test_cli_revokes_tokens_and_disables_accounts(make_server) -> None:  # type: ignore[no-untyped-def]
    # SQLite only: the CLI is the same on both; the API test below runs on both databases.
    server: Server = make_server()
    api = Api(server)
    admin = server.token("admin@force.police.uk", "admin")
    old = server.token(OFFICER, "officer")
    case = server.case("OP-REVOKE", OFFICER)
    upload = api.start_upload(old, case)
    assert api.get(old).status_code == 200 and api.tus("HEAD", old, upload).status_code == 200

    server.cli("users", "revoke", OFFICER)
    assert api.refused_everywhere(old, upload, case, "revoked") == []
    fresh = server.token(OFFICER, "officer")  # at once: within the second of the revocation
    assert api.get(fresh).status_code == 200
    assert api.tus("HEAD", fresh, upload).headers["Upload-Offset"] == "5"  # the upload carries on

    server.cli("users", "disable", OFFICER)
    assert api.refused_everywhere(fresh, upload, case, "disabled") == []
    refused = server.cli("users", "add", OFFICER, "--role", "officer", check=False)
    assert refused.returncode == 5 and "disabled" in refused.stderr and not refused.stdout
    server.cli("users", "enable", OFFICER)
    assert api.get(fresh).status_code == 200 and api.get(old).status_code == 401
    patched = api.tus("PATCH", fresh, upload, b"67890", **{"Upload-Offset": "5", "Content-Type": "application/offset+octet-stream"})
    assert patched.status_code == 204, patched.text

    missing = server.cli("users", "revoke", "nobody@force.police.uk", check=False)
    assert missing.returncode == 3 and "no account" in missing.stderr
    # Maintenance on the server host: the service account (tests/evidence/cli/test_attribution.py
    # checks the OS user it names as a detail).
    assert api.user_events(admin) == [("user.revoked", OFFICER, "operator:service"),
                                      ("user.disabled", OFFICER, "operator:service"),
                                      ("user.enabled", OFFICER, "operator:service")]


def test_the_admin_api_revokes_tokens_within_the_second(server: Server) -> None:
    api = Api(server)
    admin = server.token("admin@force.police.uk", "admin")
    # Issue, revoke and issue again inside one second (tries again if a second boundary
    # falls between): only the token issued after the revocation works.
    for _ in range(5):
        before = api.post(admin, "/api/v1/users", {"email": OFFICER, "role": "officer"}).json()
        revoked = api.post(admin, f"/api/v1/users/{before['id']}/revoke-tokens")
        after = api.post(admin, "/api/v1/users", {"email": OFFICER, "role": "officer"}).json()["token"]
        assert revoked.status_code == 200, revoked.text
        cut = datetime.fromisoformat(revoked.json()["tokens_valid_after"]).timestamp()
        issued = [jwt.decode(t, options={"verify_signature": False})["iat"] for t in (before["token"], after)]
        if math.floor(issued[0]) == math.floor(cut) == math.floor(issued[1]):
            break
    else:
        pytest.fail("could not issue, revoke and issue within one second")
    assert issued[0] < cut < issued[1]
    assert api.get(before["token"]).status_code == 401
    assert api.get(after).status_code == 200

    # Admins too: the request that revokes completes; the next one is refused.
    me = next(u for u in api.get(admin, "/api/v1/users").json() if u["email"] == "admin@force.police.uk")
    assert api.post(admin, f"/api/v1/users/{me['id']}/revoke-tokens").status_code == 200
    assert api.get(admin, "/api/v1/users").status_code == 401
    admin = server.token("admin@force.police.uk", "admin")
    by_admin = "user:admin@force.police.uk"
    assert api.user_events(admin) == [("user.revoked", OFFICER, by_admin)] * (len(api.user_events(admin)) - 1) + [
        ("user.revoked", "admin@force.police.uk", by_admin)]
