"""The file store's disk fills up (issue 12): a real `evidence serve` whose vault is a small
tmpfs mounted by the test. Writing a chunk, and linking a finished original into place,
answer 507 with a plain message and the ``Upload-Offset`` of what is durably kept; nothing
past that counts; once the disk is made larger (remounted), the upload resumes and the
stored original is byte for byte the source.

Mounting needs root (CAP_SYS_ADMIN). Without it the tests skip on a workstation, but fail
under CI (``CI=true``), where a skip would hide that they never ran.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.support.server import Server

MiB = 1024 * 1024
MakeServer = Callable[..., Server]


class Disk:
    """A tmpfs the test mounts, resizes and unmounts."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mount(self, **options: str) -> None:
        self._run("mount", "-t", "tmpfs", "-o", self._options(options), "tmpfs", str(self.path))

    def resize(self, **options: str) -> None:
        self._run("mount", "-o", "remount," + self._options(options), str(self.path))

    def unmount(self) -> None:
        subprocess.run(["umount", str(self.path)], check=False, capture_output=True)

    def inodes_used(self) -> int:
        found = os.statvfs(self.path)
        return found.f_files - found.f_ffree

    @staticmethod
    def _options(options: dict[str, str]) -> str:
        # Private like any vault root (the server refuses one that others can read).
        return ",".join(["mode=0700", *(f"{name}={value}" for name, value in options.items())])

    @staticmethod
    def _run(*command: str) -> None:
        subprocess.run(command, check=True, capture_output=True, text=True)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    made = Disk(tmp_path / "vault-disk")
    made.path.mkdir()
    try:
        made.mount(size="16m")
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        reason = f"cannot mount a tmpfs here: {getattr(error, 'stderr', '') or error}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield made
    finally:
        made.unmount()


@pytest.fixture
def server(disk: Disk, make_server: MakeServer) -> Server:
    """Started after the disk is mounted, so stopped before it is unmounted."""
    return make_server({"EVIDENCE_STORAGE_URL": disk.path.as_uri()})


def source(size: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (size // len(block) + 1))[:size]


class Client:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.token = server.token()
        self.case = server.case("OP-FULL")

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Tus-Resumable": "1.0.0", **extra}

    def create(self, size: int) -> str:
        meta = f"filename {base64.b64encode(b'cctv.mkv').decode()},case {base64.b64encode(self.case.encode()).decode()}"
        reply = requests.post(f"{self.server.url}/files/", timeout=60,
                              headers=self.headers(**{"Upload-Length": str(size), "Upload-Metadata": meta}))
        assert reply.status_code == 201, reply.text
        return str(reply.headers["Location"])

    def patch(self, url: str, offset: int, body: bytes, checksum: bool = False) -> requests.Response:
        extra = {"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
        if checksum:
            extra["Upload-Checksum"] = "sha256 " + base64.b64encode(hashlib.sha256(body).digest()).decode()
        return requests.patch(url, data=body, headers=self.headers(**extra), timeout=120)

    def head(self, url: str) -> requests.Response:
        return requests.head(url, headers=self.headers(), timeout=60)

    def offset(self, url: str) -> int:
        reply = self.head(url)
        assert reply.status_code == 200, reply.status_code
        return int(reply.headers["Upload-Offset"])


def working(disk: Disk, url: str) -> Path:
    return disk.path / ".uploads" / f"{url.rsplit('/', 1)[1]}.bin"


def original(disk: Disk, url: str) -> Path:
    return disk.path / "originals" / url.rsplit("/", 1)[1]


def test_a_chunk_that_fills_the_disk_keeps_what_was_durable_and_resumes_once_there_is_room(
    disk: Disk, server: Server
) -> None:
    client = Client(server)
    data = source(24 * MiB + 5, seed=1)
    url = client.create(len(data))

    full = client.patch(url, 0, data)
    assert full.status_code == 507, full.text
    assert "storage is full" in full.text
    kept = int(full.headers["Upload-Offset"])
    assert 0 < kept < 16 * MiB
    assert client.offset(url) == kept
    # Exactly what counts is on the disk, and it is the source's first bytes.
    assert working(disk, url).read_bytes() == data[:kept]

    disk.resize(size="64m")  # an operator makes room
    done = client.patch(url, kept, data[kept:])
    assert done.status_code == 204, done.text
    assert client.offset(url) == len(data)
    assert hashlib.sha256(original(disk, url).read_bytes()).digest() == hashlib.sha256(data).digest()


def test_a_checksummed_chunk_that_fills_the_disk_counts_for_nothing_and_frees_its_space(
    disk: Disk, server: Server
) -> None:
    client = Client(server)
    data = source(20 * MiB, seed=2)
    url = client.create(len(data))
    assert client.patch(url, 0, data[: 2 * MiB]).status_code == 204

    full = client.patch(url, 2 * MiB, data[2 * MiB :], checksum=True)
    assert full.status_code == 507, full.text
    assert full.headers["Upload-Offset"] == str(2 * MiB)
    assert client.offset(url) == 2 * MiB
    assert working(disk, url).stat().st_size == 2 * MiB  # the unverified bytes are gone

    disk.resize(size="64m")
    assert client.patch(url, 2 * MiB, data[2 * MiB :], checksum=True).status_code == 204
    assert original(disk, url).read_bytes() == data


def test_no_room_to_link_the_original_into_place_is_507_and_a_later_head_finishes_it(
    disk: Disk, server: Server
) -> None:
    """A tmpfs counts each directory entry against its inodes: with none left, the
    finished upload cannot be linked to its key in originals/."""
    client = Client(server)
    data = source(3 * MiB + 1, seed=3)
    url = client.create(len(data))
    disk.resize(nr_inodes=str(disk.inodes_used()))

    full = client.patch(url, 0, data)
    assert full.status_code == 507, full.text
    assert full.headers["Upload-Offset"] == str(len(data))  # every byte is kept and recorded
    assert not original(disk, url).exists()
    assert client.head(url).status_code == 507  # still no room: HEAD tries to finish it too

    disk.resize(nr_inodes="1000")
    assert client.offset(url) == len(data)  # HEAD finishes it now
    assert original(disk, url).read_bytes() == data
    assert not working(disk, url).exists()
    items = requests.get(f"{server.url}/api/v1/items", params={"case": client.case}, timeout=60,
                         headers={"Authorization": f"Bearer {client.token}"})
    assert items.status_code == 200, items.text
    assert [item["filename"] for item in items.json()] == ["cctv.mkv"]
