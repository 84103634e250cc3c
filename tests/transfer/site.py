"""A running ``evidence serve`` for the tus tests, on the file store or the S3 store, its
users and cases, and small helpers to speak tus to it and to look behind the HTTP
(database rows, ledger entries, what the store holds)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import text

from evidence import cases
from evidence.accounts import users as accounts
from evidence.db import make_engine
from evidence.runtime import Runtime
from evidence.settings import Settings
from tests.conftest import s3_env
from tests.support import postgres, s3
from tests.support.server import Server
from tests.transfer.stored import Bucket, Folder, Stored

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}
LIMIT = 1000  # EVIDENCE_MAX_UPLOAD_SIZE of the limited server
EXPIRY_HOURS = 0.0006  # ~2.2 s, for the limited server: long enough to create and write, short to wait out
LIFETIME_HOURS = 0.001  # 3.6 s: the brief server's absolute limit on an unfinished upload

OFFICER = "officer@force.police.uk"
COLLEAGUE = "colleague@force.police.uk"
# Officers whose rights the authorization tests take away: never used elsewhere.
LEAVER = "leaver@force.police.uk"
MOVER = "mover@force.police.uk"
ADMIN = "admin@force.police.uk"


def b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


def metadata(**values: str | bytes) -> str:
    return ",".join(f"{key} {b64(value)}" for key, value in values.items())


def digest(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {b64(hashlib.new(algorithm, data).digest())}"


def data(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (size // len(block) + 1))[:size]


@dataclass
class Site:
    """One running server with its users, a case and a way to look behind the HTTP."""

    server: Server
    database_url: str
    officer: str
    other_officer: str
    case: str
    http: requests.Session
    extra_tokens: dict[str, str]
    stored: Stored
    # More cases by role in the tests: "second" (the officer is assigned), "foreign" (only
    # the colleague is), and whatever a fixture adds.
    cases: dict[str, str] = field(default_factory=dict)

    @property
    def files_url(self) -> str:
        return self.server.url + "/files/"

    @property
    def vault(self) -> Path:
        """The file store's folder (the tests that look at files run on the file store)."""
        assert self.stored.kind == "file", "this server stores uploads in S3"
        return self.server.data_dir / "vault"

    def headers(self, token: str | None = None, **more: str) -> dict[str, str]:
        return {**TUS, "Authorization": f"Bearer {token or self.officer}", **more}

    def create(self, length: int | None, *, token: str | None = None, body: bytes | None = None,
               meta: str | None = None, **more: str) -> requests.Response:
        headers = self.headers(token, **more)
        headers["Upload-Metadata"] = meta if meta is not None else metadata(filename="clip.mp4", case=self.case)
        if length is not None:
            headers["Upload-Length"] = str(length)
        if body is not None:
            headers.update(OCTET)
        return self.http.post(self.files_url, headers=headers, data=body)

    def new_upload(self, length: int | None, **kwargs: Any) -> str:
        response = self.create(length, **kwargs)
        assert response.status_code == 201, response.text
        return response.headers["Location"]

    def head(self, url: str, token: str | None = None) -> requests.Response:
        return self.http.head(url, headers=self.headers(token))

    def offset(self, url: str) -> int:
        response = self.head(url)
        assert response.status_code == 200, response.status_code
        return int(response.headers["Upload-Offset"])

    def patch(self, url: str, body: bytes | Iterator[bytes], offset: int, token: str | None = None,
              **more: str) -> requests.Response:
        headers = {**self.headers(token), **OCTET, "Upload-Offset": str(offset), **more}
        return self.http.patch(url, headers=headers, data=body)

    def api(self, path: str, token: str | None = None) -> requests.Response:
        return self.http.get(self.server.url + path, headers={"Authorization": f"Bearer {token or self.officer}"})

    def working_file(self, url: str) -> Path:
        return self.vault / ".uploads" / f"{upload_id(url)}.bin"

    def received(self, url: str) -> bytes | None:
        """What the store keeps of an unfinished upload (None: nothing, any more)."""
        [(key, state)] = self.sql("SELECT storage_key, store_state FROM uploads WHERE id = :id", id=upload_id(url))
        return self.stored.received(upload_id(url), key, _json(state))

    def original(self, url: str) -> bytes | None:
        """The finished original of an upload, as stored; None when there is none."""
        return self.stored.object(f"originals/{upload_id(url)}")

    def sql(self, query: str, **params: Any) -> list[Any]:
        """Rows of a query on the server's database (to look behind the HTTP)."""
        engine = make_engine(self.database_url)
        try:
            with engine.begin() as connection:
                result = connection.execute(text(query), params)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()

    def events(self, upload: str) -> list[tuple[str, dict[str, Any]]]:
        """The custody entries about an upload (by id or URL) and the item it became:
        (action, details), in order."""
        wanted = upload_id(upload) if "/" in upload else upload
        items = {item for (item,) in self.sql("SELECT id FROM items WHERE upload_id = :id", id=wanted)}
        rows = self.sql("SELECT action, subject, details FROM custody_events ORDER BY seq")
        return [(action, _json(details)) for action, subject, details in rows
                if _json(subject).get("upload") == wanted or _json(subject).get("item") in items]

    def snapshot(self) -> tuple[int, int, frozenset[str]]:
        """Upload rows, custody events, and everything in the store."""
        engine = make_engine(self.database_url)
        try:
            with engine.connect() as connection:
                uploads = connection.execute(text("SELECT count(*) FROM uploads")).scalar_one()
                events = connection.execute(
                    text("SELECT count(*) FROM custody_events WHERE action <> 'checkpoint.signed'")
                ).scalar_one()
        finally:
            engine.dispose()
        return uploads, events, self.stored.names()


PARTIAL = {"Upload-Concat": "partial"}


def partial(site: Site, body: bytes, case: str | None = None, token: str | None = None) -> str:
    """A finished partial upload (creation-with-upload) of ``body`` for ``case``."""
    return site.new_upload(len(body), body=body, token=token, meta=metadata(case=case or site.case), **PARTIAL)


def final(site: Site, urls: list[str], case: str | None = None, token: str | None = None,
          **more: str) -> requests.Response:
    """Ask for a final upload of ``urls`` (partial uploads) into ``case``."""
    headers = {**site.headers(token), "Upload-Concat": "final;" + " ".join(urls),
               "Upload-Metadata": metadata(filename="joined.bin", case=case or site.case), **more}
    return site.http.post(site.files_url, headers=headers)


def upload_id(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


def start_site(root: Path, database: str, store: str, env: dict[str, str], roles: dict[str, str],
               cases: dict[str, list[str]] | None = None) -> Iterator[Site]:
    """Start a server on ``database`` (sqlite, postgres) and ``store`` (file, s3: a fresh
    bucket); add ``roles`` (email: role; the first two are the officer and the
    colleague), the main case (the first officer assigned) and ``cases`` (name: emails
    assigned). They are added the way the CLI adds them, through the application's own
    functions on the server's database and keys, in this process: one CLI call per user
    and case would cost a second of CPU each."""
    url = postgres.create_database() if database == "postgres" else ""
    stored: Stored
    if store == "s3":
        bucket = s3.new_bucket()
        env = {**env, **s3_env(bucket)}
        stored = Bucket(bucket)
    else:
        stored = Folder(root / "data" / "vault")
    server = Server(root, {**env, **({"EVIDENCE_DATABASE_URL": url} if url else {})})
    http = requests.Session()
    try:
        server.start()
        case = f"OP-{root.name.upper()[-20:]}"
        refs = {name: f"{case}-{name.upper()}" for name in cases or {}}
        emails = list(roles)
        assigned = {case: [emails[0]], **{refs[name]: who for name, who in (cases or {}).items()}}
        tokens = _bootstrap(server, url, roles, assigned)
        yield Site(server, url or f"sqlite:///{server.data_dir / 'evidence.db'}", tokens[emails[0]],
                   tokens[emails[1]] if len(emails) > 1 else "", case, http, tokens, stored, refs)
    finally:
        http.close()
        server.stop()
        if isinstance(stored, Bucket):
            stored.close()
        if url:
            postgres.drop_database(url)


def _bootstrap(server: Server, database_url: str, roles: dict[str, str], assigned: dict[str, list[str]]) -> dict[str, str]:
    rt = Runtime.build(Settings(data_dir=server.data_dir, database_url=database_url))
    actor = "operator:tests@localhost"
    try:
        with rt.db.transaction() as session:
            users = {email: accounts.add_user(session, email, role) for email, role in roles.items()}
            for ref, emails in assigned.items():
                made = cases.create_case(session, ref, None, actor)
                for email in emails:
                    cases.assign(session, made, users[email], actor)
            return {email: rt.signer.issue(user) for email, user in users.items()}
    finally:
        rt.close()
