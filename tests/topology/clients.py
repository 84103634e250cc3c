"""The officers' side of the topology tests: tuspy uploads through nginx, slowed to an
uplink's pace so that a fault lands while bytes are still moving, and the checks every
fault test ends with."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tusclient.client import TusClient
from tusclient.uploader.uploader import Uploader

from tests.support.topology import Topology

MiB = 1024 * 1024
SETTLED = ("ready", "failed", "quarantined")


class ThrottledFile(io.RawIOBase):
    """A file read no faster than ``rate`` bytes a second: tuspy reads one chunk per PATCH,
    so the upload as a whole moves at that pace."""

    def __init__(self, path: Path, rate: float) -> None:
        super().__init__()
        self._file = open(path, "rb")  # closed in close()
        self.rate = rate

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        time.sleep(len(data) / self.rate)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._file.close()
        super().close()


def random_file(folder: Path, name: str, size: int) -> Path:
    path = folder / name
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, MiB))
            out.write(block)
            left -= len(block)
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Upload:
    """One file on its way through nginx: the tus client retries (HEAD for the offset, then
    PATCH from there) on a dropped connection or an error status, as an officer's would."""

    path: Path
    sha256: str
    url: str | None = None
    statuses: list[int] | None = None  # error statuses the client met and retried past

    def run(self, topology: Topology, rate: float, chunk_size: int = 512 * 1024, retries: int = 60) -> str:
        client = TusClient(f"{topology.url}/files/", headers={"Authorization": f"Bearer {topology.officer}"})
        stream = ThrottledFile(self.path, rate)
        try:
            uploader = Uploader(
                file_stream=stream, client=client, chunk_size=chunk_size, retries=retries, retry_delay=1,
                metadata={"filename": self.path.name, "case": topology.case, "sha256": self.sha256},
                url=self.url,
            )
            if uploader.url is None:
                uploader.set_url(_with_retries(uploader.create_url, retries))
                uploader.offset = 0
            self.url = str(uploader.url)
            uploader.upload()
        finally:
            stream.close()
        return self.url


def _with_retries(action: Callable[[], str], retries: int) -> str:
    from tusclient.exceptions import TusCommunicationError

    for attempt in range(retries + 1):
        try:
            return action()
        except TusCommunicationError:
            if attempt == retries:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def upload_many(topology: Topology, paths: list[Path], rate: float,
                meanwhile: Callable[[list[Future[str]]], None] | None = None,
                chunk_size: int = 512 * 1024) -> dict[Path, str]:
    """Uploads every file at once (one thread each) while ``meanwhile`` (the fault) runs in
    this thread, given the uploads' futures. Returns {path: item id}; a client that gave up
    fails the test."""
    uploads = [Upload(path, sha256_of(path)) for path in paths]
    with ThreadPoolExecutor(len(uploads)) as pool:
        futures: list[Future[str]] = [pool.submit(u.run, topology, rate, chunk_size) for u in uploads]
        if meanwhile is not None:
            meanwhile(futures)
        urls = [future.result() for future in futures]
    return {upload.path: item_of(topology, url) for upload, url in zip(uploads, urls, strict=True)}


def item_of(topology: Topology, upload_url: str, timeout: float = 60) -> str:
    upload_id = upload_url.rstrip("/").rsplit("/", 1)[-1]
    deadline = time.monotonic() + timeout
    while True:
        found = topology.api_get(f"/api/v1/uploads/{upload_id}")
        if found.get("item"):
            return str(found["item"])
        assert time.monotonic() < deadline, f"upload {upload_id} finished but has no item: {found}"
        time.sleep(0.3)


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 60, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(every)


def settled(topology: Topology, item_ids: list[str], timeout: float = 180) -> dict[str, dict[str, Any]]:
    """Each item as the API shows it once it is ready, failed or quarantined."""
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while True:
        for item_id in item_ids:
            if item_id not in found:
                item = topology.api_get(f"/api/v1/items/{item_id}")
                if item["state"] in SETTLED:
                    found[item_id] = item
        if len(found) == len(item_ids):
            return found
        if time.monotonic() > deadline:
            states = {i: topology.api_get(f"/api/v1/items/{i}")["state"] for i in item_ids if i not in found}
            raise AssertionError(f"items not settled after {timeout:.0f} s: {states}")
        time.sleep(0.5)


def assert_recovered(topology: Topology, uploaded: dict[Path, str], timeout: float = 180) -> None:
    """The end of every fault test (issue 12): every upload complete and byte-identical in the
    bucket, every item settled (ready, with the hash of the source), and the whole custody
    ledger verifying."""
    items = settled(topology, list(uploaded.values()), timeout)
    for path, item_id in uploaded.items():
        expected = sha256_of(path)
        item = items[item_id]
        assert item["state"] == "ready", (path.name, item["state"], item["reason"])
        assert item["size"] == path.stat().st_size, path.name
        assert item["hashes"]["sha256"] == item["client_sha256"] == expected, (path.name, item["hashes"])
        assert topology.stored_sha256(item_id) == expected, f"{path.name}: the bucket holds other bytes"
    verified = topology.cli("audit", "verify", check=False)
    assert verified.returncode == 0, f"audit verify exited {verified.returncode}:\n{verified.stdout}\n{verified.stderr}"


def in_background(action: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    return thread
