"""Objects from the vault over HTTP: Range (200/206/416), HEAD, If-Range, Repr-Digest.
Streamed in blocks, so memory stays flat for any size."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from evidence.http.ranges import Unsatisfiable, parse_range, repr_digest
from evidence.vault import Vault

BLOCK = 1024 * 1024
_BYTES = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
# How a route that streams an object documents its answers (OpenAPI ``responses``): the bytes,
# whole or a range of them, in the object's own media type.
MEDIA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The whole object (Repr-Digest: its SHA-256)", "content": _BYTES},
    206: {"description": "The byte range asked for (Range, If-Range)", "content": _BYTES},
    416: {"description": "No byte of the range asked for exists"},
}


def stream_object(
    request: Request, vault: Vault, common: Mapping[str, str], key: str, size: int, content_type: str,
    sha256: str | None, disposition: str | None,
) -> tuple[Response, tuple[int, int] | None]:
    """A 200, 206 or 416 for the object; and the bytes (first, last) being sent, if any."""
    headers = {**common, "Accept-Ranges": "bytes", "Content-Type": content_type}
    if sha256:
        # Repr-Digest is about the whole representation, so it is right on a 206 too.
        headers["Repr-Digest"] = repr_digest(sha256)
        headers["ETag"] = f'"{sha256}"'
    if disposition:
        headers["Content-Disposition"] = disposition
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range != headers.get("ETag"):
        wanted = None  # the client's copy is not this one: send it whole
    try:
        chosen = parse_range(wanted, size)
    except Unsatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"}), None
    start, end = (chosen.start, chosen.end + 1) if chosen else (0, size)
    headers["Content-Length"] = str(end - start)
    status = 206 if chosen else 200
    if chosen:
        headers["Content-Range"] = chosen.content_range(size)
    sent = (start, end - 1) if end > start else None
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers), None
    # Opened before the status line goes out: storage that is down is a 503 with Retry-After
    # (the vault's error), not a 200 whose body breaks off.
    stream = vault.open(key, start, end)
    # Closed when the body is done, and also when it was never asked for (a client gone).
    return StreamingResponse(_blocks(stream), status, headers=headers, background=BackgroundTask(stream.close)), sent


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while block := stream.read(BLOCK):
            yield block
