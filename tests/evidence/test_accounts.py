"""Accounts through the running app: identity-provider tokens beside local ones, accounts
found or created from them, and officers kept to the cases they are assigned to (API and
tus alike)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from evidence import cases
from evidence.models import CustodyEvent, User
from evidence.settings import Settings
from evidence.web import create_app
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

    def upload(self, token: str, case: str, data: bytes = b"evidence") -> requests.Response:
        metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in {"filename": "a.bin", "case": case}.items())
        headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
                   "Upload-Metadata": metadata, "Content-Type": "application/offset+octet-stream"}
        return requests.post(f"{self.url}/files/", headers=headers, data=data, timeout=10)


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    with IdentityProvider() as idp:
        idp.add_key("RS256")
        idp.add_key("ES256")
        settings = Settings(data_dir=tmp_path / "data", database_url=database_url,
                            **idp.settings(oidc_jwks_refresh_cooldown_seconds=0))
        app = create_app(settings)
        rt = app.state.runtime
        with serving(app) as url:
            with rt.db.transaction() as session:
                admin = rt.signer.issue(cases.add_user(session, "admin@force.police.uk", "admin"))
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
    refused = site.upload(officer, "OP-OTHER")
    assert refused.status_code == 403 and "not assigned" in refused.text
    assert site.get("/api/v1/cases/OP-OTHER", officer).status_code == 403

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
        mine = rt.signer.issue(cases.add_user(session, "officer@force.police.uk", "officer"))
        theirs = rt.signer.issue(cases.add_user(session, "colleague@force.police.uk", "officer"))
    # An officer who creates a case is assigned to it.
    assert site.post("/api/v1/cases", mine, {"ref": "OP-MINE"}).status_code == 201
    uploaded = site.upload(mine, "OP-MINE")
    assert uploaded.status_code == 201
    [item] = site.get("/api/v1/items", mine, case="OP-MINE").json()
    assert [c["ref"] for c in site.get("/api/v1/cases", mine).json()] == ["OP-MINE"]
    assert site.get("/api/v1/cases", theirs).json() == []
    assert site.get("/api/v1/cases/OP-MINE", theirs).status_code == 403
    assert site.get("/api/v1/items", theirs, case="OP-MINE").status_code == 403
    assert site.get(f"/api/v1/items/{item['id']}", theirs).status_code == 404
    assert site.get(f"/api/v1/items/{item['id']}/derivatives/proxy", theirs).status_code == 404
    assert site.upload(theirs, "OP-MINE").status_code == 403
    assert site.upload(theirs, "OP-NOPE").status_code == 400  # no such case: says so

    assert site.post("/api/v1/assignments", site.admin, {"case": "OP-MINE", "email": "colleague@force.police.uk"}).status_code == 201
    assert site.upload(theirs, "OP-MINE").status_code == 201
    assert [u["email"] for u in site.get("/api/v1/assignments", site.admin, case="OP-MINE").json()] == [
        "colleague@force.police.uk", "officer@force.police.uk"]
    gone = requests.delete(f"{site.url}/api/v1/assignments", params={"case": "OP-MINE", "email": "colleague@force.police.uk"},
                           headers={"Authorization": f"Bearer {site.admin}"}, timeout=10)
    assert gone.status_code == 204
    assert site.upload(theirs, "OP-MINE").status_code == 403
    # Only officers are assigned.
    auditor_account = site.post("/api/v1/users", site.admin, {"email": "audit@force.police.uk", "role": "auditor"})
    assert auditor_account.status_code == 201 and auditor_account.json()["token"]
    assert site.post("/api/v1/assignments", site.admin, {"case": "OP-MINE", "email": "audit@force.police.uk"}).status_code == 400
    with rt.db.sessions() as session:
        recorded = [(e.action, e.details.get("officer")) for e in session.scalars(
            select(CustodyEvent).where(CustodyEvent.action.in_(["case.assigned", "case.unassigned"])).order_by(CustodyEvent.seq))]
    assert recorded == [("case.assigned", "officer@force.police.uk"), ("case.assigned", "colleague@force.police.uk"),
                        ("case.unassigned", "colleague@force.police.uk")]


def test_admins_disable_accounts(site: Site) -> None:
    rt = site.app.state.runtime  # type: ignore[attr-defined]
    with rt.db.transaction() as session:
        user = cases.add_user(session, "leaver@force.police.uk", "officer")
        token = rt.signer.issue(user)
    assert site.get("/api/v1/cases", token).status_code == 200
    changed = requests.patch(f"{site.url}/api/v1/users/{user.id}", json={"disabled": True},
                             headers={"Authorization": f"Bearer {site.admin}"}, timeout=10)
    assert changed.status_code == 200 and changed.json()["disabled_at"]
    assert site.get("/api/v1/cases", token).status_code == 401
    assert site.upload(token, "OP-OIDC").status_code == 401


def test_cli_assigns_officers(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server(start=False)
    server.cli("cases", "create", "OP-CLI", "--assign", "pc.a@force.police.uk", "--assign", "pc.b@force.police.uk")
    server.cli("cases", "assign", "OP-CLI", "pc.c@force.police.uk")
    server.token("auditor@force.police.uk", "auditor")
    refused = server.cli("cases", "assign", "OP-CLI", "auditor@force.police.uk", check=False)
    assert refused.returncode == 2 and "only officers" in refused.stderr
    server.cli("cases", "unassign", "OP-CLI", "pc.b@force.police.uk")
    listed = server.cli("cases", "list").stdout
    assert listed.strip() == "OP-CLI\t\tpc.a@force.police.uk,pc.c@force.police.uk"
    # An officer assigned before being added gets their token from `users add` as usual.
    assert server.token("pc.a@force.police.uk", "officer")
