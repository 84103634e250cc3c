"""tus 1.0 by hand over a ``requests`` session, for the benchmarks that must see every request
(the time of each PATCH, the answer to a wrong checksum) rather than tuspy's whole upload."""

from __future__ import annotations

import base64
import hashlib
import time

import requests

from bench.measure import BenchFailed

TUS_HEADERS = {"Tus-Resumable": "1.0.0"}
# One figure for connecting, sending and reading: urllib3 sends the body under the connect
# timeout, and a crowded server (64 uploads on two cores) may not read a chunk for many seconds.
TIMEOUT = 600


def encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in metadata.items())


def sha1_header(data: bytes) -> str:
    """``Upload-Checksum`` as tuspy sends it (SHA-1, the algorithm every checksum server has)."""
    return "sha1 " + base64.b64encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode()


def create(session: requests.Session, files_url: str, headers: dict[str, str], length: int,
           metadata: dict[str, str]) -> str:
    """POST: a new upload of ``length`` bytes; returns its absolute URL."""
    answer = session.post(
        files_url,
        headers={**TUS_HEADERS, **headers, "Upload-Length": str(length), "Upload-Metadata": encode_metadata(metadata)},
        timeout=TIMEOUT,
    )
    if answer.status_code != 201:
        raise BenchFailed(f"POST {files_url}: {answer.status_code} {answer.text[:300]}")
    return str(requests.compat.urljoin(files_url, answer.headers["Location"]))


def patch(session: requests.Session, url: str, headers: dict[str, str], offset: int, data: bytes,
          checksum: str | None) -> tuple[requests.Response, float]:
    """One PATCH, timed from the first byte sent to the answer's headers read (seconds)."""
    sent = {**TUS_HEADERS, **headers, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
    if checksum is not None:
        sent["Upload-Checksum"] = checksum
    started = time.perf_counter()
    answer = session.patch(url, data=data, headers=sent, timeout=TIMEOUT)
    return answer, time.perf_counter() - started


def offset(session: requests.Session, url: str, headers: dict[str, str]) -> int | None:
    found = session.head(url, headers={**TUS_HEADERS, **headers}, timeout=TIMEOUT).headers.get("Upload-Offset")
    return int(found) if found is not None else None
