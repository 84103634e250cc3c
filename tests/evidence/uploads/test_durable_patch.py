"""One long PATCH keeps what it received when the server dies in the middle of it (issue 12).

tus-js-client sends a whole file in one PATCH by default: a crash after 96 MiB of it used
to keep nothing. Without Upload-Checksum the server now makes its progress durable every
``upload_checkpoint_bytes`` (64 MiB by default: an fdatasync, or an S3 part) and records the
offset, so a SIGKILL loses at most that much; with a checksum nothing counts until the
whole PATCH verifies. A real `evidence serve`, killed for real, on both stores; its
checkpoints every 16 MiB (the S3 part size) here, so the PATCH is a third of the default's 200 MiB.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import s3_env
from tests.support import s3
from tests.support.files import BLOCK, random_file, sha256_of
from tests.support.server import Server

MiB = 1024 * 1024
CHECKPOINT = 16 * MiB  # upload_checkpoint_bytes for these servers (the default is 64 MiB)
# Sent by the client when the server is killed: past the second checkpoint by as much as the
# default's 150 MiB was past its second (128 MiB), for S3's parts confirmed while more arrive.
KILL_AFTER = 2 * CHECKPOINT + 24 * MiB
SIZE = KILL_AFTER + 12 * MiB + 11  # one PATCH; lines up with nothing
SERVER = {"EVIDENCE_UPLOAD_CHECKPOINT_BYTES": str(CHECKPOINT)}

MakeServer = Callable[..., Server]


def headers(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", **extra}


def create(server: Server, token: str, case: str, size: int) -> str:
    meta = f"filename {base64.b64encode(b'phone.bin').decode()},case {base64.b64encode(case.encode()).decode()}"
    reply = requests.post(f"{server.url}/files/", timeout=30,
                          headers=headers(token, **{"Upload-Length": str(size), "Upload-Metadata": meta}))
    assert reply.status_code == 201, reply.text
    return str(reply.headers["Location"])


def head(url: str, token: str) -> requests.Response:
    reply = requests.head(url, headers=headers(token), timeout=30)
    assert reply.status_code == 200, reply.status_code
    return reply


def offset_of(url: str, token: str) -> int:
    return int(head(url, token).headers["Upload-Offset"])


def send(url: str, token: str, offset: int, pieces: Iterator[bytes], length: int, **extra: str) -> int:
    """One PATCH whose body goes out as ``pieces`` yields (a real Content-Length, no
    chunked encoding), so the test can act in the middle of it."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=300)
    try:
        connection.request("PATCH", parts.path, body=pieces, headers=headers(token, **{
            "Upload-Offset": str(offset), "Content-Length": str(length),
            "Content-Type": "application/offset+octet-stream", **extra}))
        return connection.getresponse().status
    finally:
        connection.close()


def pieces_of(path: Path, start: int, end: int) -> Iterator[bytes]:
    with open(path, "rb") as source:
        source.seek(start)
        while start < end and (block := source.read(min(BLOCK, end - start))):
            start += len(block)
            yield block


class Held:
    """A PATCH body that stops once ``after`` bytes are out until the test lets it go on
    (by then the server is dead, and the rest goes nowhere)."""

    def __init__(self, path: Path, after: int) -> None:
        self.path, self.after = path, after
        self.sent = 0
        self.reached, self.release = threading.Event(), threading.Event()

    def pieces(self) -> Iterator[bytes]:
        for block in pieces_of(self.path, 0, SIZE):
            if self.sent >= self.after and not self.reached.is_set():
                self.reached.set()
                self.release.wait(120)
            yield block
            self.sent += len(block)


def in_thread(target: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(target())
        except Exception as error:  # the connection dies with the server: that is the point
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def stored_sha256(server: Server, bucket: s3.S3Bucket | None, upload_id: str) -> str:
    if bucket is None:
        return sha256_of(server.data_dir / "vault" / "originals" / upload_id)
    client = bucket.client()
    try:
        body = client.get_object(Bucket=bucket.bucket, Key=f"originals/{upload_id}")["Body"]
        digest = hashlib.sha256()
        for block in body.iter_chunks(BLOCK):
            digest.update(block)
        body.close()
        return digest.hexdigest()
    finally:
        client.close()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("durable") / "phone.bin"
    return path, random_file(path, SIZE, seed=12)


@pytest.mark.slow
@pytest.mark.parametrize("store", ["file", pytest.param("s3", marks=pytest.mark.s3)])
def test_a_server_killed_in_a_long_patch_keeps_its_last_checkpoint(
    make_server: MakeServer, source: tuple[Path, str], store: str
) -> None:
    path, digest = source
    bucket = s3.new_bucket() if store == "s3" else None
    server = make_server({**SERVER, **(s3_env(bucket) if bucket else {})})
    token, case = server.token(), server.case("OP-DURABLE")
    url = create(server, token, case, SIZE)
    upload_id = url.rsplit("/", 1)[1]

    body = Held(path, KILL_AFTER)
    thread, outcome = in_thread(lambda: send(url, token, 0, body.pieces(), SIZE))
    assert body.reached.wait(120), "the client never sent KILL_AFTER bytes"
    # The PATCH is still open: its progress shows while it streams, from the database.
    wait_until(lambda: offset_of(url, token) >= 2 * CHECKPOINT, "the offset recorded in the middle of the PATCH")
    server.kill()
    body.release.set()
    thread.join(60)
    assert isinstance(outcome[0], OSError), outcome

    server.start()
    offset = offset_of(url, token)
    assert 2 * CHECKPOINT <= offset <= body.sent
    if bucket is None:
        # The store had more on disk than it recorded; those bytes must not count.
        assert (server.data_dir / "vault" / ".uploads" / f"{upload_id}.bin").stat().st_size > offset

    assert send(url, token, offset, pieces_of(path, offset, SIZE), SIZE - offset) == 204
    assert offset_of(url, token) == SIZE
    assert stored_sha256(server, bucket, upload_id) == digest


@pytest.mark.slow
def test_a_long_patch_with_a_checksum_counts_only_when_it_verifies_whole(
    make_server: MakeServer, source: tuple[Path, str]
) -> None:
    """Progress of a PATCH carrying Upload-Checksum is never recorded part-way: its bytes
    are unverified until the last one. A wrong digest over the whole PATCH keeps nothing."""
    path, _ = source
    server = make_server(SERVER)
    token, case = server.token(), server.case("OP-CHECKED")
    url = create(server, token, case, SIZE)
    wrong = "sha256 " + base64.b64encode(hashlib.sha256(b"not the file").digest()).decode()

    body = Held(path, KILL_AFTER)
    thread, outcome = in_thread(lambda: send(url, token, 0, body.pieces(), SIZE, **{"Upload-Checksum": wrong}))
    assert body.reached.wait(120), "the client never sent KILL_AFTER bytes"
    time.sleep(1.0)  # room for a checkpoint, were one (wrongly) taken
    assert offset_of(url, token) == 0
    body.release.set()
    thread.join(120)
    assert outcome == [460]
    assert offset_of(url, token) == 0
