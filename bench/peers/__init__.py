"""The tus servers a benchmark uploads to, behind one small contract: where to send, with
which headers and metadata, which process to watch, and what was stored.

``bench.peers.evidence`` is this project's ``evidence serve``; ``bench.peers.tus_node`` is the
Node tus server (``@tus/server`` with its file store), installed into a cache folder by the
bench itself.
"""

from __future__ import annotations

from typing import Any, Protocol

import requests

from bench.rawtus import TIMEOUT, TUS_HEADERS, create, offset, patch, sha1_header


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


def probe_checksum(target: TusTarget) -> dict[str, Any]:
    """Whether the server implements the checksum extension: what it advertises, and what it
    does with a chunk whose ``Upload-Checksum`` is wrong (460 and nothing stored, or taken)."""
    with requests.Session() as session:
        options = session.options(target.files_url, headers={**TUS_HEADERS, **target.headers}, timeout=TIMEOUT)
        extensions = [e.strip() for e in options.headers.get("Tus-Extension", "").split(",") if e.strip()]
        chunk = b"evidence bench checksum probe\n"
        url = create(session, target.files_url, target.headers, len(chunk), target.metadata("checksum-probe.txt", ""))
        answer, _ = patch(session, url, target.headers, 0, chunk, sha1_header(b"not these bytes"))
        after = offset(session, url, target.headers)
    return {
        "advertised": "checksum" in extensions,
        "tus_extensions": extensions,
        "wrong_checksum_status": answer.status_code,
        "offset_after_wrong_checksum": after,
        # Verified: the wrong chunk was refused with 460 and none of it counted.
        "verified": answer.status_code == 460 and after == 0,
    }
