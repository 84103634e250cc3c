"""A 2 GiB original downloaded through a link while the server's memory stays flat: the
vault is read in blocks for the response, never whole."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.support.server import Server

SIZE = 2 * 1024**3


@pytest.mark.slow
def test_a_2gib_download_keeps_the_servers_memory_flat(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server()
    officer = server.token()
    server.case("OP-LARGE")
    original = tmp_path / "extraction.bin"
    with open(original, "wb") as out:  # sparse: nothing written but a marker at each end
        out.write(b"start")
        out.seek(SIZE - 3)
        out.write(b"end")
    line = server.cli("upload", str(original), "--case", "OP-LARGE", "--server", server.url, "--token", officer,
                      "--chunk-size", "256MiB").stdout
    item_id, sha256 = line.split()[:2]
    url = server.cli("share", "--case", "OP-LARGE", "--to", "reviewer@cps.gov.uk", "--expires", "1d",
                     "--download", token=officer).stdout.strip()

    started = time.monotonic()
    process = psutil.Process(server.pid)
    baseline = process.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    digest, received = hashlib.sha256(), 0
    try:
        with requests.get(f"{url}/items/{item_id}/original", stream=True, timeout=60) as got:
            assert got.status_code == 200 and got.headers["Content-Length"] == str(SIZE)
            for block in got.iter_content(4 * 1024 * 1024):
                digest.update(block)
                received += len(block)
    finally:
        done.set()
        sampler.join()
    print(f"RSS baseline {baseline / 1024**2:.0f} MiB, peak {peak[0] / 1024**2:.0f} MiB")
    assert received == SIZE and digest.hexdigest() == sha256
    print(f"download took {time.monotonic() - started:.1f} s")
    growth = peak[0] - baseline
    assert growth < 64 * 1024**2, f"server RSS grew by {growth / 1024**2:.0f} MiB while sending 2 GiB"
