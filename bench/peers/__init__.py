"""The tus servers a benchmark uploads to, behind one small contract: where to send, with
which headers and metadata, which process to watch, and what was stored.

``bench.peers.evidence`` is this project's ``evidence serve``; ``bench.peers.tus_node`` is the
Node tus server (``@tus/server`` with its file store), installed into a cache folder by the
bench itself.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Protocol

import requests

TUS_HEADERS = {"Tus-Resumable": "1.0.0"}


class TusTarget(Protocol):
    name: str
    files_url: str  # the creation URL, ending in /files/
    headers: dict[str, str]  # authorization, if the server wants it
    pid: int  # the server's process (its children are counted with it)

    def metadata(self, filename: str, sha256: str) -> dict[str, str]:
        """``Upload-Metadata`` for one upload (this project needs a case; the peer nothing)."""
        ...

    def stored(self, upload_url: str) -> tuple[str, int]:
        """SHA-256 and length of the bytes the server stored for the upload, read back from
        its storage (not over tus), after checking that the server counts it as finished."""
        ...

    def log_tail(self) -> str:
        """The end of the server's log, to show when an upload fails."""
        ...


def upload_id(upload_url: str) -> str:
    return upload_url.rstrip("/").rsplit("/", 1)[-1]


def encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in metadata.items())


def probe_checksum(target: TusTarget) -> dict[str, Any]:
    """Whether the server implements the checksum extension: what it advertises, and what it
    does with a chunk whose ``Upload-Checksum`` is wrong (460 and nothing stored, or taken)."""
    headers = {**TUS_HEADERS, **target.headers}
    with requests.Session() as session:
        options = session.options(target.files_url, headers=headers, timeout=30)
        extensions = [e.strip() for e in options.headers.get("Tus-Extension", "").split(",") if e.strip()]
        chunk = b"evidence bench checksum probe\n"
        created = session.post(
            target.files_url,
            headers={**headers, "Upload-Length": str(len(chunk)),
                     "Upload-Metadata": encode_metadata(target.metadata("checksum-probe.txt", ""))},
            timeout=30,
        )
        created.raise_for_status()
        url = requests.compat.urljoin(target.files_url, created.headers["Location"])
        wrong = base64.b64encode(hashlib.sha1(b"not these bytes", usedforsecurity=False).digest()).decode()
        patched = session.patch(
            url,
            data=chunk,
            headers={**headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream",
                     "Upload-Checksum": f"sha1 {wrong}"},
            timeout=30,
        )
        offset = session.head(url, headers=headers, timeout=30).headers.get("Upload-Offset")
    return {
        "advertised": "checksum" in extensions,
        "tus_extensions": extensions,
        "wrong_checksum_status": patched.status_code,
        "offset_after_wrong_checksum": int(offset) if offset is not None else None,
        # Verified: the wrong chunk was refused with 460 and none of it counted.
        "verified": patched.status_code == 460 and offset == "0",
    }
