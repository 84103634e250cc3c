"""The API's OpenAPI document (/openapi.json, shown at /docs) describes every answer.

Every /api route declares what its successful answers hold: a named Pydantic model for
JSON, a typed schema for text and bytes, nothing for a 204. A route without one fails
here. Then real answers from a running app, for every route, are checked against what the
document says (schemathesis' own response validation, as the fuzz run uses it), with items
that have hashes, working copies and warnings, so no field goes untried.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from fastapi import FastAPI
from sqlalchemy import select

from evidence import cases
from evidence.accounts import users
from evidence.http.app import create_app
from evidence.models import Derivative, Item
from evidence.settings import Settings
from tests.support.inprocess import serving

CASE = "OP-SCHEMA"


def described(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """Whether a schema says what the answer holds: a named model (or a list of them), an
    object with properties, or text/bytes. ``{}`` and a bare ``object`` say nothing."""
    if "$ref" in schema:
        target = components[schema["$ref"].rsplit("/", 1)[1]]
        return bool(target.get("properties") or target.get("enum"))
    if schema.get("type") == "array":
        return described(schema.get("items", {}), components)
    if schema.get("type") == "object":
        return bool(schema.get("properties"))
    return schema.get("type") == "string"


def undocumented(spec: dict[str, Any]) -> list[str]:
    """Every /api operation's successful answers that the document does not describe."""
    components = spec.get("components", {}).get("schemas", {})
    found = []
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            successes = {status: r for status, r in operation["responses"].items() if status.startswith("2")}
            if not successes:
                found.append(f"{label}: no successful answer documented")
            for status, response in successes.items():
                content = response.get("content", {})
                if status == "204":
                    if content:
                        found.append(f"{label}: a 204 with a body")
                    continue
                if not content:
                    found.append(f"{label} {status}: no content documented")
                for media_type, body in content.items():
                    schema = body.get("schema", {})
                    if not described(schema, components):
                        found.append(f"{label} {status} {media_type}: no schema")
                    elif media_type == "application/json" and "$ref" not in schema \
                            and "$ref" not in schema.get("items", {}):
                        found.append(f"{label} {status}: JSON without a named model")
    return found


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(Settings(data_dir=tmp_path_factory.mktemp("openapi") / "data"))


def test_every_api_route_documents_its_answers(app: FastAPI) -> None:
    assert undocumented(app.openapi()) == []


def test_a_route_without_a_response_model_is_caught() -> None:
    bare = FastAPI()

    @bare.get("/api/v1/anything")
    def anything() -> dict[str, Any]:
        return {}

    @bare.get("/api/v1/untyped")
    def untyped():  # the case under test: no annotation at all
        return {}

    @bare.get("/api/v1/inline")
    def inline() -> list[int]:
        return []

    @bare.get("/healthz")
    def elsewhere() -> dict[str, Any]:  # not under /api: not this test's business
        return {}

    assert undocumented(bare.openapi()) == [
        "GET /api/v1/anything 200 application/json: no schema",
        "GET /api/v1/untyped 200 application/json: no schema",
        "GET /api/v1/inline 200 application/json: no schema",
    ]


def test_described() -> None:
    components = {"Thing": {"properties": {"a": {}}}, "Nothing": {"type": "object"}}
    assert described({"$ref": "#/components/schemas/Thing"}, components)
    assert described({"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}, components)
    assert described({"type": "string", "format": "binary"}, components)
    assert not described({"$ref": "#/components/schemas/Nothing"}, components)
    assert not described({}, components)
    assert not described({"type": "object", "additionalProperties": True}, components)
    assert not described({"type": "array", "items": {}}, components)


# -- real answers against the document ------------------------------------------------------


@dataclass
class World:
    url: str
    tokens: dict[str, str]
    item: str
    upload: str
    schema: schemathesis.BaseSchema

    def call(self, caller: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[caller]}"}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def world(app: FastAPI) -> Iterator[World]:
    rt = app.state.runtime
    with serving(app) as url:
        with rt.db.transaction() as session:
            accounts = {role: users.add_user(session, f"{role}@force.police.uk", role)
                        for role in ("officer", "auditor", "admin")}
            case = cases.create_case(session, CASE, "a title", "operator:test")
            cases.assign(session, case, accounts["officer"], "operator:test")
            tokens = {role: rt.signer.issue(user) for role, user in accounts.items()}
        metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                            {"filename": "cam 1.mp4", "case": CASE, "exhibit": "EX-1", "sha256": "0" * 64}.items())
        done = requests.post(f"{url}/files/", data=b"evidence", timeout=30, headers={
            "Authorization": f"Bearer {tokens['officer']}", "Tus-Resumable": "1.0.0", "Upload-Length": "8",
            "Upload-Metadata": metadata, "Content-Type": "application/offset+octet-stream"})
        assert done.status_code == 201, done.text
        upload = done.headers["Location"].rsplit("/", 1)[1]
        with rt.db.transaction() as session:
            # What the pipeline would have made: hashes, a summary, warnings and working copies.
            item = session.scalars(select(Item).where(Item.upload_id == upload)).one()
            item.hashes = {"sha256": "a" * 64, "sha1": "b" * 40, "md5": "c" * 32}
            item.state, item.kind, item.progress = "processing", "video", 42.5
            item.media, item.warnings = {"duration": 2.0, "codec": "h264"}, ["a warning"]
            for kind, content_type in (("proxy", "video/mp4"), ("poster", "image/jpeg")):
                session.add(Derivative(item_id=item.id, kind=kind, key=f"derivatives/{item.id}/{kind}", sha256="d" * 64,
                                       size=3, content_type=content_type, method={"tool": "ffmpeg", "args": ["-i"]}))
            item_id = item.id
        yield World(url, tokens, item_id, upload, schemathesis.openapi.from_dict(app.openapi()))


def _conforms(world: World, route: str, method: str, response: requests.Response, status: int) -> None:
    assert response.status_code == status, (route, response.status_code, response.text[:500])
    world.schema[route][method].validate_response(response)


def test_every_answer_matches_its_schema(world: World) -> None:
    made = world.call("officer", "POST", "/api/v1/links", json={
        "case": CASE, "to": "cps@cps.gov.uk", "expires_in": 3600, "passcode": True, "max_uses": 2, "download": True})
    _conforms(world, "/api/v1/links", "POST", made, 201)
    link = made.json()["id"]
    user = world.call("admin", "POST", "/api/v1/users", json={"email": "new@force.police.uk", "role": "officer"})
    _conforms(world, "/api/v1/users", "POST", user, 201)
    user_id = user.json()["id"]
    calls: list[tuple[str, str, str, str, dict[str, Any], int]] = [
        ("officer", "GET", "/api/v1/cases", "/api/v1/cases", {}, 200),
        ("officer", "POST", "/api/v1/cases", "/api/v1/cases", {"json": {"ref": "OP-NEW"}}, 201),
        ("officer", "GET", "/api/v1/cases/{ref}", f"/api/v1/cases/{CASE}", {}, 200),
        ("officer", "GET", "/api/v1/items", "/api/v1/items", {"params": {"case": CASE}}, 200),
        ("officer", "GET", "/api/v1/items/{item_id}", f"/api/v1/items/{world.item}", {}, 200),
        ("officer", "GET", "/api/v1/uploads/{upload_id}", f"/api/v1/uploads/{world.upload}", {}, 200),
        ("officer", "GET", "/api/v1/links", "/api/v1/links", {"params": {"case": CASE}}, 200),
        ("officer", "POST", "/api/v1/links/{link_id}/revoke", f"/api/v1/links/{link}/revoke", {}, 200),
        ("admin", "GET", "/api/v1/users", "/api/v1/users", {}, 200),
        ("admin", "PATCH", "/api/v1/users/{user_id}", f"/api/v1/users/{user_id}", {"json": {"disabled": True}}, 200),
        ("admin", "POST", "/api/v1/users/{user_id}/revoke-tokens", f"/api/v1/users/{user_id}/revoke-tokens", {}, 200),
        ("admin", "POST", "/api/v1/assignments", "/api/v1/assignments",
         {"json": {"case": CASE, "email": "colleague@force.police.uk"}}, 201),
        ("admin", "GET", "/api/v1/assignments", "/api/v1/assignments", {"params": {"case": CASE}}, 200),
        ("admin", "DELETE", "/api/v1/assignments", "/api/v1/assignments",
         {"params": {"case": CASE, "email": "colleague@force.police.uk"}}, 204),
        ("auditor", "GET", "/api/v1/audit/entries", "/api/v1/audit/entries", {"params": {"item": world.item}}, 200),
        ("auditor", "GET", "/api/v1/audit/proof/inclusion", "/api/v1/audit/proof/inclusion", {"params": {"seq": 1}}, 200),
        ("auditor", "GET", "/api/v1/audit/proof/consistency", "/api/v1/audit/proof/consistency",
         {"params": {"from": 1}}, 200),
        ("auditor", "GET", "/api/v1/audit/public-key", "/api/v1/audit/public-key", {}, 200),
        *[("auditor", "GET", "/api/v1/audit/report/{item_id}", f"/api/v1/audit/report/{world.item}",
           {"params": {"format": fmt}}, 200) for fmt in ("json", "html", "pdf", "case")],
        # A checkpoint exists once a report has been exported.
        ("auditor", "GET", "/api/v1/audit/checkpoint", "/api/v1/audit/checkpoint", {}, 200),
    ]
    for caller, method, route, path, kwargs, status in calls:
        _conforms(world, route, method, world.call(caller, method, path, **kwargs), status)


def test_every_api_route_was_tried(world: World) -> None:
    """The list above covers the whole API but for the media downloads (no stored bytes
    here; the reviewer tests stream real ones, tests/evidence/http/reviewer/test_exhibits.py
    the pages and previews): a new route must be added to it."""
    tried = {
        "/api/v1/cases", "/api/v1/cases/{ref}", "/api/v1/items", "/api/v1/items/{item_id}",
        "/api/v1/uploads/{upload_id}", "/api/v1/links", "/api/v1/links/{link_id}/revoke", "/api/v1/users",
        "/api/v1/users/{user_id}", "/api/v1/users/{user_id}/revoke-tokens", "/api/v1/assignments",
        "/api/v1/audit/entries", "/api/v1/audit/proof/inclusion", "/api/v1/audit/proof/consistency",
        "/api/v1/audit/public-key", "/api/v1/audit/report/{item_id}", "/api/v1/audit/checkpoint",
        # test_the_retention_answers_match_their_schema
        "/api/v1/retention/outcome", "/api/v1/retention/hold", "/api/v1/retention/release", "/api/v1/retention/due",
        "/api/v1/retention/disposals", "/api/v1/retention/disposals/{item_id}/approve",
    }
    documented = {path for path in world.schema.raw_schema["paths"] if path.startswith("/api/")}
    assert documented - tried == {"/api/v1/items/{item_id}/derivatives/{kind}",
                                  "/api/v1/items/{item_id}/derivatives/{kind}/{number}"}


def test_the_retention_answers_match_their_schema(world: World, app: FastAPI) -> None:
    """Outcome, hold, release, what is due, and a disposal proposed by one admin and approved
    by another, on an item of its own (disposing of the shared one would change the others' answers)."""
    rt = app.state.runtime
    metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in {"filename": "b.bin", "case": CASE}.items())
    done = requests.post(f"{world.url}/files/", data=b"disposable", timeout=30, headers={
        "Authorization": f"Bearer {world.tokens['officer']}", "Tus-Resumable": "1.0.0", "Upload-Length": "10",
        "Upload-Metadata": metadata, "Content-Type": "application/offset+octet-stream"})
    assert done.status_code == 201, done.text
    with rt.db.transaction() as session:
        item = session.scalars(select(Item).where(Item.upload_id == done.headers["Location"].rsplit("/", 1)[1])).one()
        item.state, item.hashes = "ready", {"sha256": "e" * 64}
        item_id = item.id
        second = rt.signer.issue(users.add_user(session, "second-admin@force.police.uk", "admin"))
    calls: list[tuple[str, str, str, str, dict[str, Any], int]] = [
        ("officer", "POST", "/api/v1/retention/outcome", "/api/v1/retention/outcome",
         {"json": {"case": CASE, "event": "convicted", "on": "2020-01-06", "release_on": "2020-03-01"}}, 200),
        ("admin", "POST", "/api/v1/retention/hold", "/api/v1/retention/hold", {"json": {"case": CASE, "reason": "r"}}, 200),
        ("admin", "POST", "/api/v1/retention/release", "/api/v1/retention/release", {"json": {"case": CASE}}, 200),
        ("auditor", "GET", "/api/v1/retention/due", "/api/v1/retention/due", {}, 200),
        ("admin", "POST", "/api/v1/retention/disposals", "/api/v1/retention/disposals",
         {"json": {"item": item_id, "reason": "over"}}, 201),
    ]
    for caller, method, route, path, kwargs, status in calls:
        _conforms(world, route, method, world.call(caller, method, path, **kwargs), status)
    approved = requests.post(f"{world.url}/api/v1/retention/disposals/{item_id}/approve", timeout=30,
                             headers={"Authorization": f"Bearer {second}"})
    _conforms(world, "/api/v1/retention/disposals/{item_id}/approve", "POST", approved, 200)
    assert approved.json()["original_removed"] is True


def test_the_view_of_an_item_is_the_documented_contract(world: World) -> None:
    """DESIGN.md's item object, field by field and in order (the CLI's --json prints it too)."""
    item = world.call("officer", "GET", f"/api/v1/items/{world.item}").json()
    assert list(item) == ["id", "case", "filename", "size", "state", "reason", "hashes", "client_sha256", "exhibit",
                          "description", "filetype", "warnings", "progress", "kind", "media", "derivatives",
                          "created_at", "url", "fixity"]
    assert list(item["fixity"]) == ["state", "checked_at", "due_at", "failed_at", "problems"]
    assert [list(d) for d in item["derivatives"]] == [["kind", "sha256", "size", "content_type", "url", "method"]] * 2
    assert item["derivatives"][0]["url"] == f"{world.url}/api/v1/items/{world.item}/derivatives/poster"
    assert item["hashes"] == {"sha256": "a" * 64, "sha1": "b" * 40, "md5": "c" * 32}
    assert item["created_at"].endswith("+00:00")  # datetime.isoformat, as before the models


def test_the_media_download_documents_any_media_type(app: FastAPI) -> None:
    responses = app.openapi()["paths"]["/api/v1/items/{item_id}/derivatives/{kind}"]["get"]["responses"]
    assert set(responses) >= {"200", "206", "416"}
    assert list(responses["200"]["content"]) == ["*/*"]


def test_the_document_names_nothing_of_the_host(tmp_path: Path) -> None:
    # The document is the same whatever the data folder: nothing of the host leaks into it.
    first = create_app(Settings(data_dir=tmp_path / "one")).openapi()
    second = create_app(Settings(data_dir=tmp_path / "two")).openapi()
    assert first == second
    assert str(tmp_path) not in str(first)
