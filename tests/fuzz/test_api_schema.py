"""schemathesis against the running app's own OpenAPI schema, as every kind of caller.

A real ``evidence serve`` (SQLite, then PostgreSQL) holds a small world: two cases, each
with an item, an unfinished upload and a link, and one account of each role. Every
operation of /openapi.json is driven with generated requests (the schema's examples, the
boundary "coverage" cases, then random valid and invalid data), with the world's real
identifiers and edge-case integers mixed in so that requests reach real objects. Once per
caller:

- everyone: no 5xx; where the schema describes an answer (content type, body), the
  answer conforms; data the schema forbids is not accepted;
- callers that may not change something (no token, bad credentials, a reviewer, an
  officer not assigned to the cases, an auditor): the database is compared before and
  after every request, and nothing may change but what that caller may cause (an
  auditor's report export is itself recorded); their writes are refused (401, 403, 404,
  405, 422, or 400/413/431 for requests the server cannot take at all); a caller with no
  API access gets nothing else from /api; no 2xx answer names an item, upload or link of
  a case the caller may not see;
- the officer assigned to case A may change case A and its own new cases only;
- an admin may change anything: only the first check applies.

The run is bounded: ``EXAMPLES`` random requests per operation and caller on top of the
examples and coverage phases, and past ``BUDGET_SECONDS`` per caller each operation gets
only its first ``MIN_REQUESTS_PER_OPERATION`` requests. A summary per run is printed at
the end of the session ("schemathesis runs").
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, currently_in_test_context, note, settings
from sqlalchemy import create_engine, text

from tests.fuzz.conftest import SUMMARY
from tests.support import postgres
from tests.support.server import Server

EXAMPLES = 12
BUDGET_SECONDS = 25.0
MIN_REQUESTS_PER_OPERATION = 3
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Refusals. FastAPI decodes a JSON body before any dependency runs, so a body it cannot
# decode is a 400 whoever sends it; 413 and 431 are the request-size limits.
REFUSED = frozenset({400, 401, 403, 404, 405, 413, 422, 431})
CASE_A, CASE_B = "OP-FUZZ-A", "OP-FUZZ-B"
# The state a caller could change through the API, compared row by row; and the ledger.
TABLES = ("users", "cases", "case_assignments", "uploads", "items", "derivatives", "links")
# Numbers at the edges of what int64 columns, timedelta and JSON parsers take.
EDGE_INTEGERS = [-1, 0, 1, 59, 60, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**15, 10**20, 10**400]
TIMEDELTA_MAX_SECONDS = 86_400 * 1_000_000_000


# Defects these runs found (all fixed; their regression tests are below): Range numbers
# past int()'s digit limit, link expiry and audit `after` past their ranges (500s), the public
# key's undocumented content type, NUL in text on PostgreSQL (500s).


# -- the world ---------------------------------------------------------------------------


def _tus_upload(url: str, token: str, case: str, body: bytes | None) -> str:
    metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                        {"filename": "exhibit.bin", "case": case}.items())
    headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", "Upload-Metadata": metadata,
               "Upload-Length": str(len(body) if body is not None else 10)}
    if body is not None:
        headers["Content-Type"] = "application/offset+octet-stream"
    response = requests.post(f"{url}/files/", headers=headers, data=body, timeout=30)
    assert response.status_code == 201, response.text
    return response.headers["Location"].rsplit("/", 1)[1]


class World:
    """Accounts of each role; case A (officer A assigned) and case B (a colleague), each
    with a finished upload (its item), an unfinished upload and a live link."""

    def __init__(self, server: Server, database_url: str) -> None:
        self.url = server.url
        self.database_url = database_url or f"sqlite:///{server.data_dir / 'evidence.db'}"
        self.tokens: dict[str, str] = {"admin": server.token("admin@force.police.uk", "admin")}
        self.user_ids: dict[str, str] = {}
        self.emails: dict[str, str] = {"admin": "admin@force.police.uk"}
        for name, role in (("officer-a", "officer"), ("officer-b", "officer"), ("colleague", "officer"),
                           ("auditor", "auditor"), ("reviewer", "reviewer")):
            made = self.api("admin", "POST", "/api/v1/users", json={"email": f"{name}@force.police.uk", "role": role})
            self.tokens[name], self.user_ids[name], self.emails[name] = made["token"], made["id"], made["email"]
        admin_id = next(u["id"] for u in self.api("admin", "GET", "/api/v1/users") if u["email"] == self.emails["admin"])
        self.bad_credentials = self._bad_credentials(admin_id)
        for ref, officer in ((CASE_A, "officer-a"), (CASE_B, "colleague")):
            self.api("admin", "POST", "/api/v1/cases", json={"ref": ref, "title": f"fuzzing {ref}"})
            self.api("admin", "POST", "/api/v1/assignments", json={"case": ref, "email": self.emails[officer]})
        self.uploads: dict[str, list[str]] = {}
        self.items: dict[str, str] = {}
        self.links: dict[str, str] = {}
        for ref, officer in ((CASE_A, "officer-a"), (CASE_B, "colleague")):
            finished = _tus_upload(self.url, self.tokens[officer], ref, b"evidence " + ref.encode())
            self.uploads[ref] = [finished, _tus_upload(self.url, self.tokens[officer], ref, None)]
            self.items[ref] = self.api(officer, "GET", f"/api/v1/uploads/{finished}")["item"]
            self.links[ref] = self.api(officer, "POST", "/api/v1/links", json={
                "case": ref, "to": "cps@cps.gov.uk", "expires_in": 3600, "download": True})["id"]
        self.engine = create_engine(self.database_url.replace("postgresql://", "postgresql+psycopg://", 1))

    def api(self, caller: str, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, self.url + path, timeout=30,
                                    headers={"Authorization": f"Bearer {self.tokens[caller]}"}, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def _bad_credentials(self, admin_id: str) -> tuple[str, ...]:
        """Authorization headers naming the real admin, each wrong in its own way."""
        claims = jwt.decode(self.tokens["admin"], options={"verify_signature": False})
        forged = jwt.encode({**claims, "sub": admin_id}, "not-the-server-secret-" * 2, algorithm="HS256")
        unsigned = jwt.encode({**claims, "sub": admin_id}, None, algorithm="none")
        return (
            f"Bearer {forged}",
            f"Bearer {unsigned}",
            f"Bearer {self.tokens['admin'][:-4]}AAAA",  # the admin's own token, signature altered
            "Basic " + base64.b64encode(b"admin@force.police.uk:admin").decode(),
            "Bearer",
            "Bearer " + "A" * 2000,
        )

    def secrets_of(self, ref: str) -> list[str]:
        """Identifiers of a case that nobody outside it is ever told."""
        return [self.items[ref], self.links[ref], *self.uploads[ref]]

    def state(self) -> State:
        with self.engine.connect() as connection:
            rows = {
                table: frozenset(json.dumps(list(row), default=str)
                                 # Table names from TABLES above, never from a request.
                                 for row in connection.execute(text(f"SELECT * FROM {table}")))  # noqa: S608
                for table in TABLES
            }
            ledger = tuple(
                (seq, action, actor, bytes(leaf).hex())
                for seq, action, actor, leaf in connection.execute(text(
                    # Checkpoints are signed in the background, whoever asks for nothing.
                    "SELECT seq, action, actor, leaf_hash FROM custody_events "
                    "WHERE action != 'checkpoint.signed' ORDER BY seq"
                ))
            )
        return State(rows, ledger)

    def config(self) -> schemathesis.Config:
        values = {
            "refs": [CASE_A, CASE_B, "OP-NO-SUCH-CASE"],
            "items": [*self.items.values(), "0" * 32],
            "uploads": [u for pair in self.uploads.values() for u in pair],
            "links": [*self.links.values(), "f" * 32],
            # Not the admin's own id: an admin disabling itself would end its run early.
            "users": list(self.user_ids.values()),
            "emails": [*self.emails.values(), "new-officer@force.police.uk"],
            "kinds": ["proxy", "poster", "contact_sheet", "probe", "manifest", "hls"],
            "edge-integers": EDGE_INTEGERS,
            # Link lifetimes and use counts: valid ones (so links do get made, with whatever
            # else was generated) and the edges around and far past the limits.
            "lifetimes": [60, 3600, 14 * 86_400, 366 * 86_400, 59, 366 * 86_400 + 1, 2**31, 2**63,
                          TIMEDELTA_MAX_SECONDS, 10**20],
            "uses": [1, 5, 1_000_000, 1_000_001, 2**31 - 1, 2**31, 2**63],
        }
        bindings = {
            "path.ref": "refs", "query.case": "refs", "body.case": "refs", "body.ref": "refs",
            "path.item_id": "items", "query.item": "items", "body.items[*]": "items",
            "path.upload_id": "uploads", "path.link_id": "links", "path.user_id": "users",
            "query.email": "emails", "body.email": "emails", "body.to": "emails", "path.kind": "kinds",
            # The type-wide integer binding below reaches parameters; body fields are named.
            "body.expires_in": "lifetimes", "body.max_uses": "uses",
        }
        all_checks = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
                      "response_schema_conformance", "response_headers_conformance", "negative_data_rejection",
                      "positive_data_acceptance", "missing_required_header", "unsupported_method", "use_after_free",
                      "ensure_resource_availability", "ignored_auth", "allow_header_conformance")
        # The schema documents success and 422 answers only, not 401/403/404/409, and no
        # security scheme: checks that want every status documented, valid data accepted,
        # or an Allow header listing the path's other routes would only restate that.
        enabled = {"not_a_server_error", "content_type_conformance", "response_schema_conformance",
                   "negative_data_rejection"}
        return schemathesis.Config.from_dict({
            "seed": 9,
            "cache": {"enabled": False},  # nothing written into the working tree
            "request-timeout": 30,
            "output": {"sanitization": {"enabled": False}},  # reproductions carry the test tokens
            "generation": {"mode": "all", "max-examples": EXAMPLES,
                           "dictionaries": {"integer": {"dictionary": "edge-integers", "probability": 0.2}}},
            "phases": {"stateful": {"enabled": False}},
            "checks": {name: {"enabled": name in enabled} for name in all_checks},
            "dictionaries": {name: {"values": found} for name, found in values.items()},
            "parameters": {key: {"dictionary": name, "probability": 0.6} for key, name in bindings.items()},
        })


@dataclass(frozen=True)
class State:
    rows: dict[str, frozenset[str]]
    ledger: tuple[tuple[int, str, str, str], ...]

    def changes(self, after: State) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for table in TABLES:
            gone, new = self.rows[table] - after.rows[table], after.rows[table] - self.rows[table]
            if gone or new:
                found[table] = {"before": sorted(gone), "after": sorted(new)}
        if after.ledger[: len(self.ledger)] != self.ledger:
            found["custody_events"] = "existing entries changed or removed"
        elif len(after.ledger) > len(self.ledger):
            found["custody_events"] = [{"action": e[1], "actor": e[2]} for e in after.ledger[len(self.ledger) :]]
        return found


# -- callers -----------------------------------------------------------------------------


@dataclass
class Caller:
    name: str
    # The world's account whose token is sent; else the world's bad credentials (in turn),
    # or no Authorization header at all.
    account: str | None = None
    bad_credentials: bool = False
    # Given the changes one request made, may this caller have made them? None: anything.
    may_change: Callable[[World, dict[str, Any]], bool] | None = None
    writes_refused: bool = True
    reads_refused: bool = False
    hidden_cases: tuple[str, ...] = ()
    skip: frozenset[str] = frozenset()
    postgres: bool = False

    def headers(self, world: World, turn: int) -> dict[str, str]:
        if self.account is not None:
            return {"Authorization": f"Bearer {world.tokens[self.account]}"}
        if self.bad_credentials:
            return {"Authorization": world.bad_credentials[turn % len(world.bad_credentials)]}
        return {}


def _nothing(world: World, changes: dict[str, Any]) -> bool:
    return not changes


def _auditor(world: World, changes: dict[str, Any]) -> bool:
    # An auditor's report export is itself recorded (report.exported); nothing else may change.
    exported = {"action": "report.exported", "actor": f"user:{world.emails['auditor']}"}
    events = changes.get("custody_events", [])
    return set(changes) <= {"custody_events"} and isinstance(events, list) and all(e == exported for e in events)


def _officer_a(world: World, changes: dict[str, Any]) -> bool:
    # Officer A may create cases (and is assigned to them), share from and revoke links of
    # its cases, all recorded under its name. Accounts, uploads, items, case B's link and
    # the colleague's assignments stay as they are.
    if set(changes) - {"cases", "case_assignments", "links", "custody_events"}:
        return False
    removed = changes.get("case_assignments", {}).get("before", [])
    if any(world.user_ids["colleague"] in row for row in removed):
        return False
    links = changes.get("links", {})
    if any(world.links[CASE_B] in row for row in links.get("before", []) + links.get("after", [])):
        return False
    events = changes.get("custody_events", [])
    actor = f"user:{world.emails['officer-a']}"
    return isinstance(events, list) and all(e["actor"] == actor for e in events)


CALLERS = [
    Caller("no token", may_change=_nothing, reads_refused=True),
    Caller("bad credentials", bad_credentials=True, may_change=_nothing, reads_refused=True),
    Caller("reviewer", account="reviewer", may_change=_nothing, reads_refused=True),
    # Creating a case of its own is every officer's right (and then that case is not hidden
    # from it), so that one operation is left to the assigned officer's run.
    Caller("officer not assigned", account="officer-b", may_change=_nothing, hidden_cases=(CASE_A, CASE_B),
           skip=frozenset({"POST /api/v1/cases"}), postgres=True),
    Caller("auditor", account="auditor", may_change=_auditor, postgres=True),
    Caller("officer assigned to case A", account="officer-a", may_change=_officer_a, writes_refused=False,
           hidden_cases=(CASE_B,), postgres=True),
    # Last: an admin's changes (roles, assignments, revoked links) would change the world
    # the other callers are tried in.
    Caller("admin", account="admin", writes_refused=False, postgres=True),
]


# -- the run -----------------------------------------------------------------------------


@dataclass
class Run:
    """One caller's pass over every operation against one server."""

    world: World
    caller: Caller
    database: str
    started: float = field(default_factory=time.monotonic)
    finished: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    capped: int = 0
    api_successes: int = 0

    def exercise(self, case: schemathesis.Case) -> None:
        label = case.operation.label
        if label in self.caller.skip:
            return
        done = self.requests.get(label, 0)
        if done >= MIN_REQUESTS_PER_OPERATION and time.monotonic() - self.started > BUDGET_SECONDS:
            self.capped += 1
            return
        self.requests[label] = done + 1
        headers = self.caller.headers(self.world, sum(self.requests.values()))
        before = self.world.state() if self.caller.may_change else None
        response = case.call(base_url=self.world.url, headers=headers, timeout=30, allow_redirects=False)
        self.finished = time.monotonic()
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        sent = response.request
        body = sent.body if isinstance(sent.body, bytes | None) else str(sent.body).encode()
        if currently_in_test_context():  # shown with a failing example: what went over the wire
            note(f"{self.caller.name} ({self.database}) sent {sent.method} {sent.url}\n"
                 f"  headers: {dict(sent.headers)}\n  body: {(body or b'')[:2000]!r}\n"
                 f"  answer: {response.status_code} {response.text[:300]!r}")
        problems = []
        if before is not None and self.caller.may_change is not None:
            changes = before.changes(self.world.state())
            if not self.caller.may_change(self.world, changes):
                problems.append(f"changed what it may not change: {json.dumps(changes, indent=1)[:3000]}")
        refused = response.status_code in REFUSED
        if self.caller.writes_refused and case.method.upper() in WRITES and not refused:
            problems.append(f"a write was not refused: {response.status_code}")
        if self.caller.reads_refused and case.path.startswith("/api/") and not refused:
            problems.append(f"a caller with no API access got {response.status_code}")
        if 200 <= response.status_code < 300:
            self.api_successes += case.path.startswith("/api/")
            for ref in self.caller.hidden_cases:
                told = [s for s in self.world.secrets_of(ref) if s in response.text]
                if told:
                    problems.append(f"the answer names {told} of case {ref}, which this caller may not see")
        if problems:
            raise AssertionError(f"{self.caller.name} ({self.database}): {sent.method} {sent.url}\n  "
                                 + "\n  ".join(problems) + f"\nanswer {response.status_code}: {response.text[:500]}")
        # No 5xx; where the schema describes the answer, it conforms.
        case.validate_response(response, headers=headers)

    def summary(self) -> str:
        total = sum(self.requests.values())
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (f"{self.database:8} {self.caller.name:27} {len(self.requests):3} operations {total:5} requests "
                f"{max(self.finished - self.started, 0):5.1f} s  capped {self.capped:3}  "
                f"[{statuses}]")


@dataclass
class Api:
    server: Server
    world: World
    schema: schemathesis.BaseSchema
    database: str
    runs: list[Run] = field(default_factory=list)


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    database = getattr(request, "param", "sqlite")
    database_url = postgres.create_database() if database == "postgres" else ""
    server = Server(tmp_path_factory.mktemp(f"schema-{database}"),
                    {"EVIDENCE_DATABASE_URL": database_url} if database_url else {})
    try:
        server.start()
        world = World(server, database_url)
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=world.config())
        found = Api(server, world, schema, database)
        yield found
        world.engine.dispose()
        request.config.stash.setdefault(SUMMARY, []).extend(run.summary() for run in found.runs)
        operations = {result.ok().label for result in schema.get_all_operations()}
        for done in found.runs:
            # Every operation was tried: a run that silently did nothing would prove nothing.
            assert set(done.requests) == operations - done.caller.skip, (done.caller.name, sorted(done.requests))
            # A caller with API access was let in at least sometimes (its token kept working).
            assert done.api_successes > 0 or done.caller.reads_refused, done.caller.name
    finally:
        server.stop()
        if database_url:
            postgres.drop_database(database_url)


@pytest.fixture
def api_schema(api: Api) -> schemathesis.BaseSchema:
    return api.schema


@pytest.fixture
def run(request: pytest.FixtureRequest, api: Api) -> Run:
    # schemathesis 4.32's pytest integration reads and rewrites `Function._nodeid`, which
    # pytest 9.2 no longer has (the id is derived from `_id`); give it one. Its rewrites
    # only relabel subtests in reports.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
    caller: Caller = request.param
    if api.database == "postgres" and not caller.postgres:
        # Within the time budget: callers refused before any query but their own account's
        # row behave alike on both databases; those whose requests reach the cases, items,
        # links and ledger run on both.
        pytest.skip("refused before the database matters: run on SQLite only")
    found = Run(api.world, caller, api.database)
    api.runs.append(found)
    return found


# -- the checks can fail -----------------------------------------------------------------

# The same servers as the fuzz runs (same parameter, same fixture instance).
ON_SQLITE = pytest.mark.parametrize("api", ["sqlite"], indirect=True)
ON_BOTH = pytest.mark.parametrize("api", ["sqlite", "postgres"], indirect=True)
ON_POSTGRES = pytest.mark.parametrize("api", ["postgres"], indirect=True)


def _held_to_nothing(api: Api, account: str, **kwargs: Any) -> Run:
    return Run(api.world, Caller(f"{account}, held to nothing", account=account, may_change=_nothing, **kwargs),
               api.database)


@ON_SQLITE
def test_a_change_by_a_caller_held_to_nothing_is_caught(api: Api) -> None:
    case = api.schema["/api/v1/users"]["POST"].Case(body={"email": "canary@force.police.uk", "role": "officer"})
    with pytest.raises(AssertionError, match=r"(?s)changed what it may not change.*canary@force.police.uk.*"
                                             r"a write was not refused: 201"):
        _held_to_nothing(api, "admin").exercise(case)


@ON_SQLITE
def test_a_ledger_entry_is_a_change(api: Api) -> None:
    # An auditor may export a report (recorded); held to nothing, that record is caught.
    case = api.schema["/api/v1/audit/report/{item_id}"]["GET"].Case(
        path_parameters={"item_id": api.world.items[CASE_A]}, query={"format": "json"})
    with pytest.raises(AssertionError, match=r"(?s)changed what it may not change.*report\.exported"):
        _held_to_nothing(api, "auditor").exercise(case)
    Run(api.world, next(c for c in CALLERS if c.name == "auditor"), api.database).exercise(case)


@ON_SQLITE
def test_an_answer_naming_a_hidden_case_is_caught(api: Api) -> None:
    case = api.schema["/api/v1/items"]["GET"].Case(query={"case": CASE_A})
    run = _held_to_nothing(api, "officer-a", hidden_cases=(CASE_A,))
    with pytest.raises(AssertionError, match=r"the answer names .* of case OP-FUZZ-A"):
        run.exercise(case)


@ON_SQLITE
def test_an_api_answer_to_a_caller_without_access_is_caught(api: Api) -> None:
    case = api.schema["/api/v1/cases"]["GET"].Case()
    with pytest.raises(AssertionError, match="a caller with no API access got 200"):
        _held_to_nothing(api, "auditor", reads_refused=True).exercise(case)


# -- regression tests for the defects above ------------------------------------------------


def _as(api: Api, account: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.world.tokens[account]}"}


@ON_BOTH
@pytest.mark.parametrize("expires_in", [TIMEDELTA_MAX_SECONDS, 10**20])
def test_a_link_that_would_outlive_the_calendar_is_refused(api: Api, expires_in: int) -> None:
    response = requests.post(f"{api.world.url}/api/v1/links", headers=_as(api, "officer-a"), timeout=30,
                             json={"case": CASE_A, "to": "cps@cps.gov.uk", "expires_in": expires_in})
    assert response.status_code in (400, 422), (response.status_code, response.text)


@ON_BOTH
@pytest.mark.parametrize("after", [2**63, 10**30])
def test_ledger_entries_after_a_huge_sequence_number(api: Api, after: int) -> None:
    response = requests.get(f"{api.world.url}/api/v1/audit/entries", params={"after": after},
                            headers=_as(api, "auditor"), timeout=30)
    assert response.status_code in (200, 400, 422), (response.status_code, response.text)
    if response.status_code == 200:
        assert response.json() == []


@ON_SQLITE
def test_the_public_key_is_served_as_documented(api: Api) -> None:
    response = requests.get(f"{api.world.url}/api/v1/audit/public-key", headers=_as(api, "auditor"), timeout=30)
    assert response.status_code == 200
    spec = requests.get(f"{api.world.url}/openapi.json", timeout=30).json()
    documented = spec["paths"]["/api/v1/audit/public-key"]["get"]["responses"]["200"]["content"]
    served = response.headers["content-type"].split(";")[0]
    assert served in documented, (served, sorted(documented))


NUL = "a\x00b"
NUL_REQUESTS = [
    ("officer-a", "POST", "/api/v1/links", {"json": {"case": NUL, "to": "cps@cps.gov.uk", "expires_in": 3600}}),
    ("officer-a", "GET", "/api/v1/cases/a%00b", {}),
    ("officer-a", "GET", "/api/v1/items", {"params": {"case": NUL}}),
    ("officer-a", "GET", "/api/v1/items/a%00b", {}),
    ("officer-a", "GET", "/api/v1/uploads/a%00b", {}),
    ("officer-a", "GET", "/api/v1/links", {"params": {"case": NUL}}),
    ("officer-a", "POST", "/api/v1/links/a%00b/revoke", {}),
    ("admin", "GET", "/api/v1/assignments", {"params": {"case": NUL}}),
    ("admin", "POST", "/api/v1/assignments", {"json": {"case": CASE_A, "email": NUL}}),
    ("admin", "DELETE", "/api/v1/assignments", {"params": {"case": CASE_A, "email": NUL}}),
    ("admin", "PATCH", "/api/v1/users/a%00b", {"json": {"disabled": True}}),
    ("admin", "POST", "/api/v1/cases", {"json": {"ref": "OP-NUL-TITLE", "title": NUL}}),
    ("auditor", "GET", "/api/v1/audit/entries", {"params": {"item": NUL}}),
    ("auditor", "GET", "/api/v1/audit/report/a%00b", {}),
    ("officer-a", "POST", "/api/v1/retention/outcome", {"json": {"case": NUL, "event": "nfa"}}),
    ("admin", "POST", "/api/v1/retention/hold", {"json": {"case": CASE_A, "reason": NUL}}),
    ("admin", "POST", "/api/v1/retention/disposals", {"json": {"item": NUL, "reason": "over"}}),
    ("admin", "POST", "/api/v1/retention/disposals/a%00b/approve", {}),
]


@ON_POSTGRES  # SQLite stores a NUL like any character; see the fuzz runs for both
@pytest.mark.parametrize(("account", "method", "path", "kwargs"), NUL_REQUESTS,
                         ids=[f"{m} {p}" for _, m, p, _ in NUL_REQUESTS])
def test_a_nul_character_is_refused_not_a_500(api: Api, account: str, method: str, path: str,
                                             kwargs: dict[str, Any]) -> None:
    response = requests.request(method, api.world.url + path, headers=_as(api, account), timeout=30, **kwargs)
    assert response.status_code < 500, (response.status_code, response.text[:200])


# -- the fuzz runs (after the tests above: the admin's run changes the world) -------------


lazy_schema = schemathesis.pytest.from_fixture("api_schema")


@lazy_schema.parametrize()
# schemathesis' wrapper hides the test's own arguments from pytest: the database and the
# caller reach the `api` and `run` fixtures by indirect parametrization.
@pytest.mark.usefixtures("api", "run")
@pytest.mark.parametrize("run", CALLERS, ids=[c.name for c in CALLERS], indirect=True)
@pytest.mark.parametrize("api", ["sqlite", "postgres"], indirect=True)
@settings(max_examples=EXAMPLES, suppress_health_check=list(HealthCheck))
def test_api(case: schemathesis.Case, run: Run) -> None:
    run.exercise(case)
