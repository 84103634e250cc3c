"""This project's server as a benchmark target: a fresh ``evidence serve`` (tests.support's
Server: its own data dir, SQLite, no embedded worker) with an officer's token and a case."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from bench.measure import BenchFailed, sha256_file
from bench.peers import upload_id
from tests.support.server import Server

CASE = "OP-BENCH"
Reader = Callable[[str], tuple[str, int]]  # upload id -> SHA-256 and length of its stored original


class EvidenceTarget:
    name = "evidence"

    def __init__(self, server: Server, token: str, read_original: Reader | None = None) -> None:
        self.server = server
        self.read_original = read_original or self._read_file
        self.files_url = server.url + "/files/"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.pid = server.pid

    def metadata(self, filename: str, sha256: str) -> dict[str, str]:
        return {"filename": filename, "case": CASE, **({"sha256": sha256} if sha256 else {})}

    def stored(self, upload_url: str) -> tuple[str, int]:
        found = upload_id(upload_url)
        recorded = requests.get(f"{self.server.url}/api/v1/uploads/{found}", headers=self.headers, timeout=30)
        if recorded.status_code != 200 or not recorded.json().get("finished") or not recorded.json().get("item"):
            raise BenchFailed(f"the server did not record the finished upload {found}: {recorded.text[:300]}")
        return self.read_original(found)

    def _read_file(self, upload: str) -> tuple[str, int]:
        return sha256_file(self.server.data_dir / "vault" / "originals" / upload)

    def log_tail(self) -> str:
        return self.server.log.read_text(errors="replace")[-3000:] if self.server.log.exists() else ""


@contextlib.contextmanager
def evidence_server(
    work: Path, env: dict[str, str] | None = None, label: str = "evidence", read_original: Reader | None = None
) -> Iterator[EvidenceTarget]:
    """A new server in a folder of its own under ``work``, stopped and removed afterwards.
    ``env`` sets its storage (the file store in its data dir unless told otherwise), and
    ``read_original`` hashes an upload's original from there (SHA-256, length)."""
    root = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=work))
    server = Server(root, env)
    try:
        try:
            server.start()
            token = server.token()
            server.case(CASE)
        except (RuntimeError, AssertionError) as error:  # tests.support's ways of saying so
            raise BenchFailed(f"could not start {label}: {error}") from error
        yield EvidenceTarget(server, token, read_original)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
