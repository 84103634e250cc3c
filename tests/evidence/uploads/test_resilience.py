"""Uploads that survive what happens in the field: large files in any chunk size, a client
killed or interrupted mid-way, a server killed mid-chunk, the S3 endpoint going away, and
several API servers sharing one upload.

Everything here is real: `evidence serve` processes, the `evidence upload` CLI and tuspy,
PostgreSQL, and an S3 endpoint (Ceph's gateway, or EVIDENCE_TEST_S3_ENDPOINT). Faults are
made with TCP relays (tests/support/relay.py, tests/support/proxy.py), signals, and a
PostgreSQL row lock, never with mocks.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.client
import math
import random
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import requests
from tusclient.client import TusClient

from evidence.cli.resume import ResumeRecords
from tests.conftest import s3_env
from tests.support import s3
from tests.support.files import BLOCK, random_file, sha256_of
from tests.support.proxy import Proxy
from tests.support.relay import Relay
from tests.support.server import ADMIN, EVIDENCE, Server

MiB = 1024 * 1024
MakeServer = Callable[..., Server]  # tests/conftest.py: start a server with these settings
BIG = 200 * MiB + 17  # nothing lines up with a chunk or an S3 part
ONE_PATCH = BIG  # a chunk size >= the file: the whole upload in one PATCH


# -- helpers --------------------------------------------------------------------------------


def tus_headers(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", **extra}


def encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items())


def create_upload(base: str, token: str, size: int, case: str, filename: str = "exhibit.bin") -> str:
    reply = requests.post(
        f"{base}/files/",
        headers=tus_headers(token, **{"Upload-Length": str(size),
                                      "Upload-Metadata": encode_metadata({"filename": filename, "case": case})}),
        timeout=30,
    )
    assert reply.status_code == 201, reply.text
    return reply.headers["Location"]


def patch(url: str, token: str, offset: int, body: bytes, checksum: bool = False) -> requests.Response:
    headers = tus_headers(token, **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
    if checksum:
        headers["Upload-Checksum"] = "sha256 " + base64.b64encode(hashlib.sha256(body).digest()).decode()
    return requests.patch(url, data=body, headers=headers, timeout=120)


def stream_patch(url: str, token: str, offset: int, pieces: Iterable[bytes], length: int) -> int:
    """A PATCH whose body is sent piece by piece as the iterable yields (with a real
    Content-Length, no chunked encoding), so a test can act in the middle of it."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    try:
        headers = tus_headers(token, **{"Upload-Offset": str(offset), "Content-Length": str(length),
                                        "Content-Type": "application/offset+octet-stream"})
        connection.request("PATCH", parts.path, body=pieces, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def head_offset(url: str, token: str) -> int:
    reply = requests.head(url, headers=tus_headers(token), timeout=30)
    assert reply.status_code == 200, reply.status_code
    return int(reply.headers["Upload-Offset"])


def upload_id_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def on(server: Server, upload_url: str) -> str:
    """The same upload's URL on another server (or straight on the server, not via a relay)."""
    return f"{server.url}/files/{upload_id_of(upload_url)}"


def upload_status(server: Server, token: str, upload_id: str) -> dict[str, Any]:
    reply = requests.get(f"{server.url}/api/v1/uploads/{upload_id}", headers={"Authorization": f"Bearer {token}"},
                         timeout=30)
    assert reply.status_code == 200, reply.text
    status: dict[str, Any] = reply.json()
    return status


def read_range(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as stream:
        stream.seek(start)
        return stream.read(end - start)


def pieces_of(path: Path, start: int, end: int, piece: int = BLOCK) -> Iterator[bytes]:
    with open(path, "rb") as stream:
        stream.seek(start)
        left = end - start
        while left:
            block = stream.read(min(piece, left))
            assert block
            left -= len(block)
            yield block


def sha256_prefix(path: Path, length: int) -> str:
    digest = hashlib.sha256()
    for block in pieces_of(path, 0, length):
        digest.update(block)
    return digest.hexdigest()


def s3_sha256(bucket: s3.S3Bucket, key: str) -> tuple[str, int]:
    """Stream the object back from the bucket (not through any proxy) and hash it."""
    client = bucket.client()
    try:
        body = client.get_object(Bucket=bucket.bucket, Key=key)["Body"]
        digest, size = hashlib.sha256(), 0
        for block in body.iter_chunks(BLOCK):
            digest.update(block)
            size += len(block)
        body.close()
        return digest.hexdigest(), size
    finally:
        client.close()


def s3_parts(bucket: s3.S3Bucket, key: str) -> int:
    """Parts uploaded so far to the open multipart upload of ``key``."""
    client = bucket.client()
    try:
        uploads = client.list_multipart_uploads(Bucket=bucket.bucket, Prefix=key).get("Uploads", [])
        [upload] = [u for u in uploads if u["Key"] == key]
        return len(client.list_parts(Bucket=bucket.bucket, Key=key, UploadId=upload["UploadId"]).get("Parts", []))
    finally:
        client.close()


def stored_sha256(server: Server, bucket: s3.S3Bucket | None, upload_id: str) -> str:
    if bucket is not None:
        return s3_sha256(bucket, f"originals/{upload_id}")[0]
    return sha256_of(server.data_dir / "vault" / "originals" / upload_id)


def working_file(server: Server, upload_id: str) -> Path:
    return server.data_dir / "vault" / ".uploads" / f"{upload_id}.bin"


def patches_logged(server: Server, upload_id: str, since: int = 0) -> list[int]:
    """Statuses of the PATCH requests for ``upload_id`` in the server's access log."""
    text = server.log.read_bytes()[since:].decode(errors="replace")
    return [int(s) for s in re.findall(rf'"PATCH /files/{upload_id} HTTP/1.1" (\d{{3}})', text)]


def log_size(server: Server) -> int:
    return server.log.stat().st_size


def client_upload_id(server: Server) -> str:
    """The upload the officer's CLI is working on, from its resume records."""
    folder = Path(server.env["XDG_STATE_HOME"]) / "evidence" / "uploads"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        urls = ResumeRecords(folder, warn=lambda message: None).urls()
        if urls:
            return upload_id_of(urls[-1])
        time.sleep(0.05)
    raise AssertionError(f"the client recorded no upload in {folder}")


def tuspy_upload(base: str, token: str, path: Path, case: str, chunk_size: int, url: str | None = None) -> str:
    client = TusClient(f"{base}/files/", headers={"Authorization": f"Bearer {token}"})
    # A stream, not a path: tuspy opens a path again for every request and never closes it.
    with open(path, "rb") as stream:
        uploader = client.uploader(file_stream=stream, url=url, chunk_size=chunk_size, upload_checksum=True,
                                   metadata={"filename": path.name, "case": case})
        uploader.upload()
    # tusclient declares `url` as None (its __init__ assigns None; set_url is not seen).
    made: object = uploader.url
    assert isinstance(made, str)
    return made


class CliRun:
    """`evidence upload` as a background process, to be signalled or waited for."""

    def __init__(self, server: Server, *args: str) -> None:
        self.stderr_path = server.root / f"cli-{time.monotonic_ns()}.err"
        with open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen([EVIDENCE, "upload", *args], env=server.env, stdout=subprocess.PIPE,
                                            stderr=err)

    def wait(self, timeout: float = 120) -> tuple[int, str, str]:
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise
        # rich wraps messages at the terminal width; compare them as plain words
        return self.process.returncode, out.decode(), " ".join(self.stderr_path.read_text().split())


def upload_args(path: Path, case: str, server_url: str, token: str, chunk: str, *more: str) -> list[str]:
    return [str(path), "--case", case, "--server", server_url, "--token", token, "--chunk-size", chunk, *more]


def items_of(server: Server, case: str) -> list[str]:
    return server.cli("items", "list", "--case", case, token=server.token(ADMIN, "admin")).stdout.splitlines()


def s3_port(bucket: s3.S3Bucket) -> int:
    port = urlsplit(bucket.endpoint).port
    assert port is not None
    return port


def in_thread(target: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run ``target`` in a thread; its result or exception lands in the returned list."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(target())
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def wait_until(condition: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("source") / "CCTV export 0400-0700.dav"
    return path, random_file(path, BIG, seed=200)


@pytest.fixture(scope="module")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, str]]:
    """One server on the local file store (SQLite) for the large uploads."""
    server = Server(tmp_path_factory.mktemp("file-store")).start()
    try:
        yield server, server.token(), server.case("OP-LARGE-FILE")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, str, s3.S3Bucket]]:
    """One server on the S3 store (SQLite) for the large uploads."""
    bucket = s3.new_bucket()
    server = Server(tmp_path_factory.mktemp("s3-store"), s3_env(bucket)).start()
    try:
        yield server, server.token(), server.case("OP-LARGE-S3"), bucket
    finally:
        server.stop()


# -- 1. large uploads, any chunk size ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "chunk_size, via",
    [(5 * MiB, "tuspy"), (8 * MiB, "cli"), (7_777_777, "tuspy"), (ONE_PATCH, "tuspy")],
    ids=["5MiB", "8MiB-cli", "7777777", "one-patch"],
)
def test_200_mib_on_the_file_store_in_any_chunk_size(file_server: tuple[Server, str, str], big: tuple[Path, str],
                                                     chunk_size: int, via: str) -> None:
    server, token, case = file_server
    path, digest = big
    if via == "cli":
        out = server.cli(*(["upload"] + upload_args(path, case, server.url, token, str(chunk_size)))).stdout
        item_id, printed, _ = out.split(maxsplit=2)
        assert printed == digest
        upload_id = client_upload_id(server)
    else:
        upload_id = upload_id_of(tuspy_upload(server.url, token, path, case, chunk_size))
    status = upload_status(server, token, upload_id)
    assert status["finished"] and status["offset"] == BIG and status["item"]
    if via == "cli":
        assert status["item"] == item_id
    assert patches_logged(server, upload_id) == [204] * math.ceil(BIG / chunk_size)
    assert sha256_of(server.data_dir / "vault" / "originals" / upload_id) == digest
    assert not working_file(server, upload_id).exists()


@pytest.mark.slow
@pytest.mark.s3
@pytest.mark.parametrize("chunk_size", [7_777_777, ONE_PATCH], ids=["7777777", "one-patch"])
def test_200_mib_on_the_s3_store_in_any_chunk_size(s3_server: tuple[Server, str, str, s3.S3Bucket], big: tuple[Path, str],
                                                   chunk_size: int) -> None:
    server, token, case, bucket = s3_server
    path, digest = big
    upload_id = upload_id_of(tuspy_upload(server.url, token, path, case, chunk_size))
    status = upload_status(server, token, upload_id)
    assert status["finished"] and status["offset"] == BIG and status["item"]
    assert patches_logged(server, upload_id) == [204] * math.ceil(BIG / chunk_size)
    assert s3_sha256(bucket, f"originals/{upload_id}") == (digest, BIG)
    client = bucket.client()
    try:  # nothing left behind: no open multipart upload, no pending object
        assert not client.list_multipart_uploads(Bucket=bucket.bucket).get("Uploads")
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket.bucket).get("Contents", [])]
        assert f"originals/{upload_id}.part" not in keys
    finally:
        client.close()


# -- 2. the officer's client interrupted, resumed by a new process ------------------------------


@pytest.mark.parametrize(
    "sig, database", [(signal.SIGKILL, "sqlite"), (signal.SIGINT, "postgres")], ids=["SIGKILL-sqlite", "SIGINT-postgres"]
)
def test_interrupted_client_resumes_from_the_servers_offset(make_server: MakeServer, tmp_path: Path,
                                                            request: pytest.FixtureRequest, sig: signal.Signals,
                                                            database: str) -> None:
    env = {"EVIDENCE_DATABASE_URL": request.getfixturevalue("postgres_url")} if database == "postgres" else {}
    server = make_server(env)
    token, case = server.token(), server.case("OP-INTERRUPTED")
    size, chunk = 48 * MiB + 5, MiB
    path = tmp_path / "phone extract.zip"
    digest = random_file(path, size, seed=2)

    with Relay([("127.0.0.1", server.port)]) as relay:
        # Freeze the client in the middle of its 21st chunk, then interrupt it there.
        relay.hold_at(20 * MiB + MiB // 2)
        run = CliRun(server, *upload_args(path, case, relay.url, token, "1MiB"))
        assert relay.held.wait(60), "the client never got 20 MiB out"
        upload_url = f"{server.url}/files/{client_upload_id(server)}"
        offset = head_offset(upload_url, token)
        assert 0 < offset < size
        run.process.send_signal(sig)
        code, out, err = run.wait(30)
        if sig == signal.SIGKILL:
            assert code == -signal.SIGKILL
        else:
            assert code == 130, err
            assert "run the same command again to resume" in err
        assert out == ""
        relay.cut()  # the half-sent chunk's connection goes away with the client
        relay.release()

        # A new process, the same command: it carries on from the server's offset.
        before = head_offset(upload_url, token)
        assert before == offset  # the half-sent chunk was refused whole (checksum), not half kept
        mark = log_size(server)
        rerun = server.cli(*(["upload"] + upload_args(path, case, relay.url, token, "1MiB")))
    item_id, printed, _ = rerun.stdout.split(maxsplit=2)
    assert printed == digest
    # The same upload, carried on from where it was: only the chunks still missing were sent.
    # (The half-sent chunk may be logged late, refused with 460 for its checksum.)
    resumed = patches_logged(server, upload_id_of(upload_url), since=mark)
    assert [s for s in resumed if s != 460] == [204] * math.ceil((size - before) / chunk)
    assert upload_status(server, token, upload_id_of(upload_url))["item"] == item_id
    assert len(items_of(server, case)) == 1
    assert stored_sha256(server, None, upload_id_of(upload_url)) == digest


# -- 3. the server killed mid-chunk ---------------------------------------------------------------


@pytest.mark.slow
def test_server_killed_mid_chunk_then_the_client_rerun_resumes(make_server: MakeServer, tmp_path: Path) -> None:
    server = make_server()
    token, case = server.token(), server.case("OP-POWER-CUT")
    # Chunks well under the server's checkpoint (64 MiB): what it has of the second is not recorded.
    size, chunk = 16 * MiB + 1, 8 * MiB
    path = tmp_path / "cctv.mkv"
    digest = random_file(path, size, seed=3)

    with Relay([("127.0.0.1", server.port)]) as relay:
        relay.hold_at(chunk + 4 * MiB)  # half of the second 8 MiB chunk is on the server
        run = CliRun(server, *upload_args(path, case, relay.url, token, "8MiB", "--retries", "0"))
        assert relay.held.wait(60)
        upload_id = client_upload_id(server)
        upload_url = f"{server.url}/files/{upload_id}"
        assert head_offset(upload_url, token) == chunk
        server.kill()
        relay.cut()
        relay.release()
        code, _, err = run.wait(60)
        assert code == 6, err  # Unavailable, with a hint
        assert "run the same command again to resume" in err

        server.start()  # same port, same data dir
        offset = head_offset(upload_url, token)
        stored = working_file(server, upload_id)
        assert chunk <= offset <= stored.stat().st_size
        assert sha256_prefix(stored, offset) == sha256_prefix(path, offset)

        mark = log_size(server)
        rerun = server.cli(*(["upload"] + upload_args(path, case, relay.url, token, "8MiB")))
    assert rerun.stdout.split()[1] == digest
    assert patches_logged(server, upload_id, since=mark) == [204] * math.ceil((size - offset) / chunk)
    assert len(items_of(server, case)) == 1
    assert stored_sha256(server, None, upload_id) == digest


@pytest.mark.parametrize("store", ["file", pytest.param("s3", marks=pytest.mark.s3)])
def test_server_killed_while_a_chunk_streams_into_the_store(make_server: MakeServer, tmp_path: Path, store: str) -> None:
    """No checksum, so the bytes go straight into the store as they arrive: the kill lands
    while the store is being written (file grown past the offset / S3 parts uploaded)."""
    bucket = s3.new_bucket() if store == "s3" else None
    server = make_server(s3_env(bucket) if bucket else {})
    token, case = server.token(), server.case("OP-MID-WRITE")
    size, first = 48 * MiB + 7, 8 * MiB
    path = tmp_path / "extract.bin"
    digest = random_file(path, size, seed=4)
    url = create_upload(server.url, token, size, case)
    upload_id = upload_id_of(url)
    assert patch(url, token, 0, read_range(path, 0, first)).status_code == 204

    carry_on = threading.Event()

    def body() -> Iterator[bytes]:
        for n, block in enumerate(pieces_of(path, first, size)):
            if n == 24:
                carry_on.wait(60)
            yield block

    thread, outcome = in_thread(lambda: stream_patch(url, token, first, body(), size - first))
    if bucket is None:
        wait_until(lambda: working_file(server, upload_id).stat().st_size >= first + 16 * MiB,
                   what="bytes past the offset in the working file")
    else:
        wait_until(lambda: s3_parts(bucket, f"originals/{upload_id}") >= 1, what="a part uploaded to S3")
    server.kill()
    carry_on.set()
    thread.join(60)
    assert isinstance(outcome[0], OSError)  # the connection died with the server

    server.start()
    offset = head_offset(url, token)
    assert offset == first  # the killed chunk was never acknowledged, and never counted
    if bucket is None:
        assert working_file(server, upload_id).stat().st_size > offset  # ...though bytes reached the disk
    tuspy_upload(server.url, token, path, case, 16 * MiB, url=url)
    assert upload_status(server, token, upload_id)["finished"]
    assert stored_sha256(server, bucket, upload_id) == digest


@pytest.mark.postgres
@pytest.mark.parametrize("store", ["file", pytest.param("s3", marks=pytest.mark.s3)])
def test_server_killed_between_storing_a_chunk_and_recording_it(make_server: MakeServer, postgres_url: str, tmp_path: Path,
                                                                 store: str) -> None:
    """The narrowest window: the chunk is in the store, the new offset not yet in the
    database. A row lock held by the test stops the server right there, then it is killed."""
    bucket = s3.new_bucket() if store == "s3" else None
    server = make_server({"EVIDENCE_DATABASE_URL": postgres_url, **(s3_env(bucket) if bucket else {})})
    token, case = server.token(), server.case("OP-RECORD")
    size = 30 * MiB + 3
    path = tmp_path / "extract.bin"
    digest = random_file(path, size, seed=5)
    url = create_upload(server.url, token, size, case)
    upload_id = upload_id_of(url)
    # 7 MiB stored (in S3: parked as the pending object, the part size being 16 MiB).
    assert patch(url, token, 0, read_range(path, 0, 7 * MiB)).status_code == 204

    with psycopg.connect(postgres_url) as blocker, psycopg.connect(postgres_url, autocommit=True) as watcher:
        blocker.execute("SELECT 1 FROM uploads WHERE id = %s FOR UPDATE", (upload_id,))
        # 7..25 MiB: in S3 one 16 MiB part and a new 9 MiB pending object.
        thread, outcome = in_thread(lambda: patch(url, token, 7 * MiB, read_range(path, 7 * MiB, 25 * MiB)))

        def saving() -> bool:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query ILIKE '%uploads%FOR UPDATE%'"
            ).fetchone()
            return bool(row and row[0])

        wait_until(saving, what="the server waiting to record the chunk")
        server.kill()
        blocker.rollback()
    thread.join(60)
    assert isinstance(outcome[0], requests.ConnectionError)

    server.start()
    offset = head_offset(url, token)
    assert offset == 7 * MiB
    tuspy_upload(server.url, token, path, case, 8 * MiB, url=url)
    assert upload_status(server, token, upload_id)["finished"]
    assert stored_sha256(server, bucket, upload_id) == digest


# -- 4. the S3 endpoint goes away ------------------------------------------------------------------


@pytest.mark.s3
def test_s3_outage_answers_503_and_never_overstates_the_offset(make_server: MakeServer, bucket: s3.S3Bucket,
                                                               tmp_path: Path) -> None:
    proxy = Proxy("127.0.0.1", s3_port(bucket))
    proxy.start()
    try:
        server = make_server(s3_env(bucket, proxy.url))
        token, case = server.token(), server.case("OP-S3-DOWN")
        size = 40 * MiB + 11
        path = tmp_path / "cctv.mp4"
        digest = random_file(path, size, seed=6)
        url = create_upload(server.url, token, size, case)
        upload_id = upload_id_of(url)
        key = f"originals/{upload_id}"
        # 20 MiB: one 16 MiB part and 4 MiB parked.
        assert patch(url, token, 0, read_range(path, 0, 20 * MiB)).status_code == 204

        proxy.stop()
        small = read_range(path, 20 * MiB, 20 * MiB + 256 * 1024)
        for checksum in (False, True):
            refused = patch(url, token, 20 * MiB, small, checksum=checksum)
            assert refused.status_code == 503
            assert refused.headers["Upload-Offset"] == str(20 * MiB)  # what is kept, said at once
        assert head_offset(url, token) == 20 * MiB  # HEAD still answers, from the database

        # S3 goes away again in the middle of a chunk, after one more part went in.
        proxy.start()
        cut = threading.Event()

        def body() -> Iterator[bytes]:
            for n, block in enumerate(pieces_of(path, 20 * MiB, size)):
                if n == 14:  # 4 MiB refilled + 12 MiB received: part 2 is full
                    wait_until(lambda: s3_parts(bucket, key) >= 2, what="part 2 in S3")
                    proxy.stop()
                    cut.set()
                yield block

        status = stream_patch(url, token, 20 * MiB, body(), size - 20 * MiB)
        assert cut.is_set()
        assert status == 503
        offset = head_offset(url, token)
        assert 20 * MiB <= offset <= size

        proxy.start()
        assert patch(url, token, offset, read_range(path, offset, size)).status_code == 204
        assert upload_status(server, token, upload_id)["finished"]
        assert s3_sha256(bucket, key) == (digest, size)  # so the offset was never ahead of S3
        assert 503 in patches_logged(server, upload_id)
    finally:
        proxy.stop()


@pytest.mark.s3
def test_officer_client_rides_through_a_short_s3_outage(make_server: MakeServer, bucket: s3.S3Bucket, tmp_path: Path) -> None:
    proxy = Proxy("127.0.0.1", s3_port(bucket))
    proxy.start()
    try:
        server = make_server(s3_env(bucket, proxy.url))
        token, case = server.token(), server.case("OP-S3-BLIP")
        size = 40 * MiB + 1
        path = tmp_path / "bodycam.mp4"
        digest = random_file(path, size, seed=7)
        with Relay([("127.0.0.1", server.port)]) as relay:
            relay.hold_at(12 * MiB)  # the client mid-way through its third chunk
            run = CliRun(server, *upload_args(path, case, relay.url, token, "5MiB"))
            assert relay.held.wait(60)
            proxy.stop()
            relay.release()
            upload_id = client_upload_id(server)
            wait_until(lambda: 503 in patches_logged(server, upload_id), what="a 503 during the outage")
            time.sleep(2)
            proxy.start()
            code, out, err = run.wait(120)
        assert code == 0, err
        assert "trying again" in err  # the wait line: "...; N attempts so far; trying again in Ns"
        assert out.split()[1] == digest
        assert len(items_of(server, case)) == 1
        assert s3_sha256(bucket, f"originals/{upload_id}") == (digest, size)
    finally:
        proxy.stop()


# -- 5. two API servers, one database, one upload ---------------------------------------------------


@pytest.fixture
def two_servers(make_server: MakeServer, postgres_url: str, bucket: s3.S3Bucket, tmp_path: Path) -> tuple[Server, Server]:
    """Two `evidence serve` processes on one PostgreSQL database and one S3 bucket; they share a
    data dir, so also the token secret."""
    env = {"EVIDENCE_DATABASE_URL": postgres_url, **s3_env(bucket)}
    shared = tmp_path / "shared"
    shared.mkdir()
    first = make_server(env, root=shared)
    second = make_server(env, root=shared)
    return first, second


@pytest.mark.postgres
@pytest.mark.s3
def test_chunks_alternate_between_two_servers_and_races_have_one_winner(two_servers: tuple[Server, Server],
                                                                        bucket: s3.S3Bucket, tmp_path: Path) -> None:
    a, b = two_servers
    token, case = a.token(), a.case("OP-TWO-NODES")
    size = 48 * MiB + 9
    path = tmp_path / "extract.zip"
    random_file(path, size, seed=8)
    expected = bytearray()  # what the stored object must hold, race winners included
    url = create_upload(a.url, token, size, case)
    upload_id = upload_id_of(url)
    servers = [a, b]
    rng = random.Random(8)

    offset, turn = 0, 0
    sizes = [15 * MiB, 3 * MiB + 1, 7 * MiB]
    while offset < 30 * MiB:
        end = min(offset + sizes[turn % len(sizes)], size)
        data = read_range(path, offset, end)
        reply = patch(on(servers[turn % 2], url), token, offset, data, checksum=turn % 2 == 1)
        assert reply.status_code == 204, reply.text
        expected += data
        offset = int(reply.headers["Upload-Offset"])
        assert offset == end
        turn += 1

    # Races: one PATCH to each server at the same offset, with different bytes.
    for round_ in range(3):
        genuine = read_range(path, offset, offset + MiB)
        other = rng.randbytes(MiB)
        order = [(a, genuine), (b, other)] if round_ % 2 == 0 else [(b, genuine), (a, other)]
        start = threading.Barrier(2)

        spans: list[tuple[float, float]] = []

        def send(server: Server, data: bytes, at: int = offset, start: threading.Barrier = start,
                 spans: list[tuple[float, float]] = spans) -> requests.Response:
            start.wait(10)
            began = time.monotonic()
            reply = patch(on(server, url), token, at, data)
            spans.append((began, time.monotonic()))
            return reply

        threads = [in_thread(functools.partial(send, s, d)) for s, d in order]
        for thread, _ in threads:
            thread.join(60)
        outcomes = [outcome[0] for _, outcome in threads]
        replies = [r for r in outcomes if isinstance(r, requests.Response)]
        assert len(replies) == len(outcomes), outcomes
        assert max(b for b, _ in spans) < min(e for _, e in spans)  # the two really were in flight together
        codes = sorted(r.status_code for r in replies)
        assert codes[0] == 204 and codes[1] in (409, 423), codes
        winner = next(d for (_, d), r in zip(order, replies, strict=True) if r.status_code == 204)
        expected += winner
        offset += MiB
        assert head_offset(on(a, url), token) == head_offset(on(b, url), token) == offset

    while offset < size:
        end = min(offset + 5 * MiB, size)
        data = read_range(path, offset, end)
        reply = patch(on(servers[turn % 2], url), token, offset, data)
        assert reply.status_code == 204, reply.text
        expected += data
        offset = end
        turn += 1

    assert upload_status(b, token, upload_id)["finished"]
    assert s3_sha256(bucket, f"originals/{upload_id}") == (hashlib.sha256(expected).hexdigest(), size)
    assert patches_logged(a, upload_id) and patches_logged(b, upload_id)
    assert len(items_of(a, case)) == 1


@pytest.mark.postgres
@pytest.mark.s3
def test_tuspy_through_a_round_robin_balancer_over_two_servers(two_servers: tuple[Server, Server], bucket: s3.S3Bucket,
                                                               tmp_path: Path) -> None:
    a, b = two_servers
    token, case = a.token(), a.case("OP-BALANCED")
    size = 40 * MiB + 13
    path = tmp_path / "cctv.avi"
    digest = random_file(path, size, seed=9)
    with Relay([("127.0.0.1", a.port), ("127.0.0.1", b.port)]) as balancer:
        upload_id = upload_id_of(tuspy_upload(balancer.url, token, path, case, 5 * MiB))
        assert min(balancer.connections) >= 4  # a new connection per request, spread over both
    on_a, on_b = patches_logged(a, upload_id), patches_logged(b, upload_id)
    assert on_a and on_b
    assert on_a + on_b == [204] * math.ceil(size / (5 * MiB))
    assert upload_status(a, token, upload_id)["finished"]
    assert s3_sha256(bucket, f"originals/{upload_id}") == (digest, size)


@pytest.mark.postgres
def test_many_chunks_at_once_on_one_postgresql_node(make_server: MakeServer, postgres_url: str) -> None:
    """Each chunk holds a connection for its advisory lock while it needs another to record
    its progress: with locks drawn from the application's pool, 40 chunks at once starved it
    (22 of 40 answered 500 after the 30 s pool timeout)."""
    server = make_server({"EVIDENCE_DATABASE_URL": postgres_url})
    token, case = server.token(), server.case("OP-BUSY-NODE")
    count, size = 40, 2 * MiB
    urls = [create_upload(server.url, token, size, case) for _ in range(count)]
    body = random.Random(10).randbytes(MiB)
    start = threading.Barrier(count)

    def send(url: str) -> int:
        start.wait(30)
        return patch(url, token, 0, body, checksum=True).status_code

    began = time.monotonic()
    threads = [in_thread(functools.partial(send, url)) for url in urls]
    for thread, _ in threads:
        thread.join(120)
    assert [outcome[0] for _, outcome in threads] == [204] * count
    assert time.monotonic() - began < 20

