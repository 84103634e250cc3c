"""An API node crashes in the middle of one large PATCH (no Upload-Checksum) through nginx:
what it had received is kept up to its last durable point (every 64 MiB at most), and the
client resumes from there on the other node.

What the node had received is read from S3 itself: the parts of the upload's multipart
upload that the gateway holds when the node dies. (The client's count of bytes sent is no
measure: loopback socket buffers on two hops can hold tens of MiB.)"""

from __future__ import annotations

import base64
import http.client
import json
import os
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import psycopg
import requests
from tusclient.client import TusClient
from tusclient.uploader.uploader import Uploader

from tests.support.topology import Topology
from tests.topology.clients import MiB, assert_recovered, item_of, random_file, sha256_of, wait_until

SIZE = 200 * MiB
RATE = 20 * MiB  # bytes a second the client sends: the PATCH lasts about ten seconds
DURABLE_EVERY = 64 * MiB
KILL_AT = 144 * MiB  # stored in S3 parts by then: past the second durable point (128 MiB)


class SlowPatch(threading.Thread):
    """One PATCH of the whole file, its body written at RATE; counts what it has sent."""

    def __init__(self, url: str, token: str, source: Path) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.source = url, token, source
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.netloc, timeout=120)
        try:
            connection.putrequest("PATCH", parts.path)
            for name, value in {"Authorization": f"Bearer {self.token}", "Tus-Resumable": "1.0.0",
                                "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream",
                                "Content-Length": str(SIZE)}.items():
                connection.putheader(name, value)
            connection.endheaders()
            began = time.monotonic()
            with open(self.source, "rb") as stream:
                while block := stream.read(MiB):
                    connection.send(block)
                    self.sent += len(block)
                    time.sleep(max(0.0, self.sent / RATE - (time.monotonic() - began)))
            connection.getresponse().read()
        except (OSError, http.client.HTTPException) as error:
            self.error = error  # the node died under it: expected
        finally:
            connection.close()


def _create(topology: Topology, source: Path) -> str:
    fields = {"filename": source.name, "case": topology.case, "sha256": sha256_of(source)}
    metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())
    created = requests.post(f"{topology.url}/files/", timeout=30, headers={
        "Authorization": f"Bearer {topology.officer}", "Tus-Resumable": "1.0.0",
        "Upload-Length": str(SIZE), "Upload-Metadata": metadata,
    })
    assert created.status_code == 201, created.text
    return created.headers["Location"]


def _parts_stored(topology: Topology, upload_url: str) -> int:
    """Bytes of the upload's multipart upload that S3 holds as completed parts."""
    upload_id = upload_url.rstrip("/").rsplit("/", 1)[-1]
    with psycopg.connect(topology.database_url) as connection:
        row = connection.execute("SELECT storage_key, store_state FROM uploads WHERE id = %s", (upload_id,)).fetchone()
    assert row is not None
    key, state = row[0], row[1] if isinstance(row[1], dict) else json.loads(row[1])
    client = topology.s3_client()
    try:
        listed = client.list_parts(Bucket=topology.bucket, Key=key, UploadId=state["upload_id"], MaxParts=1000)
    finally:
        client.close()
    return sum(int(part["Size"]) for part in listed.get("Parts", []))


def _bytes_read(pid: int) -> int:
    return int(psutil.Process(pid).io_counters().read_chars)


def test_a_crash_mid_patch_keeps_what_was_received(topology: Topology, sources: Path) -> None:
    source = random_file(sources, "CCTV export.bin", SIZE)
    url = _create(topology, source)
    before = {service.name: _bytes_read(service.pid) for service in topology.api}
    patch = SlowPatch(url, topology.officer, source)
    patch.start()
    wait_until(f"{KILL_AT // MiB} MiB stored", lambda: _parts_stored(topology, url) >= KILL_AT or not patch.is_alive(),
               timeout=120, every=0.1)
    assert patch.is_alive(), f"the PATCH ended early: {patch.error}"
    # The node taking the PATCH is the one that has read far more (its sockets, its spool).
    read = {service.name: _bytes_read(service.pid) - before[service.name] for service in topology.api}
    victim = max(topology.api, key=lambda service: read[service.name])
    victim.kill()
    stored = _parts_stored(topology, url)  # at least what the node had received
    patch.join(60)

    head = requests.head(url, timeout=30, headers={"Authorization": f"Bearer {topology.officer}",
                                                   "Tus-Resumable": "1.0.0"})
    assert head.status_code == 200, head.text
    kept = int(head.headers["Upload-Offset"])
    assert stored - DURABLE_EVERY <= kept <= stored, f"kept {kept / MiB:.0f} MiB of the {stored / MiB:.0f} MiB received"
    assert kept < SIZE

    client = TusClient(f"{topology.url}/files/", headers={"Authorization": f"Bearer {topology.officer}"})
    with open(source, "rb") as stream:
        resumed = Uploader(file_stream=stream, client=client, chunk_size=32 * MiB, url=url, retries=10, retry_delay=1)
        assert resumed.offset == kept
        resumed.upload()
    topology.start_api(victim)
    assert_recovered(topology, {source: item_of(topology, url)})
    assert os.path.getsize(source) == SIZE
