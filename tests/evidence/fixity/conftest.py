"""Stored evidence for the fixity tests: a real server with its embedded worker, a PDF (its page
images are a working copy of many objects) and a file of no known kind, both processed, and
helpers that change what is stored behind the server's back, as root would."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from evidence.models import CustodyEvent, Derivative, Item
from tests.support.files import random_file
from tests.support.server import ADMIN, Server


def three_page_pdf(path: Path) -> Path:
    import weasyprint  # type: ignore[import-untyped]

    pages = "".join(f'<section style="page-break-after: always"><h1>Statement page {n}</h1></section>' for n in (1, 2, 3))
    path.write_bytes(weasyprint.HTML(string=f"<html><body>{pages}</body></html>").write_pdf())
    return path


@dataclass
class Stored:
    server: Server
    pdf: str  # item ids
    blob: str

    def entries(self, action: str) -> list[CustodyEvent]:
        rt = self.server.runtime()
        try:
            with rt.db.sessions() as session:
                return list(session.scalars(select(CustodyEvent).where(CustodyEvent.action == action)
                                            .order_by(CustodyEvent.seq)))
        finally:
            rt.close()

    def item(self, item_id: str) -> dict[str, Any]:
        shown = self.server.cli("items", "show", item_id, "--json", token=self.server.token(ADMIN, "admin"))
        found: dict[str, Any] = json.loads(shown.stdout)
        return found

    def row(self, item_id: str) -> Item:
        rt = self.server.runtime()
        try:
            with rt.db.sessions() as session:
                return session.get_one(Item, item_id)
        finally:
            rt.close()

    def copies(self, item_id: str) -> dict[str, Derivative]:
        rt = self.server.runtime()
        try:
            with rt.db.sessions() as session:
                return {d.kind: d for d in session.scalars(select(Derivative).where(Derivative.item_id == item_id))}
        finally:
            rt.close()

    def path(self, key: str) -> Path:
        return self.server.data_dir / "vault" / key

    def original(self, item_id: str) -> Path:
        return self.path(self.row(item_id).storage_key)

    def fixity(self, *args: str) -> Any:
        return self.server.cli("audit", "fixity", *args, check=False)


def rewrite_a_byte(path: Path, at: int = 100) -> bytes:
    """As root on the vault's disk: make the read-only file writable, change one byte, make it
    read-only again (so only the content differs). The new bytes."""
    os.chmod(path, 0o600)
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    os.chmod(path, 0o400)
    return bytes(data)


@pytest.fixture
def stored(make_server, tmp_path: Path, database_url: str) -> Stored:  # type: ignore[no-untyped-def]
    """Two processed items on a local vault, on SQLite and on PostgreSQL."""
    env = {"EVIDENCE_EMBEDDED_WORKER": "true"}
    if database_url:
        env["EVIDENCE_DATABASE_URL"] = database_url
    server = make_server(env)
    token = server.token()
    case = server.case("OP-FIXITY")
    pdf = three_page_pdf(tmp_path / "statement.pdf")
    blob = tmp_path / "extract.bin"
    random_file(blob, 2_000_000, seed=7)
    out = server.cli("upload", str(pdf), str(blob), "--case", case, "--server", server.url, "--token", token)
    ids = {Path(line.split(maxsplit=2)[2]).name: line.split()[0] for line in out.stdout.splitlines()}
    for item_id in ids.values():
        server.settled_item(item_id)
    return Stored(server, ids["statement.pdf"], ids["extract.bin"])
