"""Objects from the vault over HTTP: Range (200/206/416), HEAD, If-Range, Repr-Digest.
Streamed in blocks, so memory stays flat for any size; or handed to the proxy in front
(``X-Accel-Redirect``) once every check is done, so it sends the file's bytes itself."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from evidence.http.ranges import Unsatisfiable, parse_range, repr_digest
from evidence.vault import Vault
from evidence.vault.base import check_key
from evidence.vault.local import LocalVault

BLOCK = 1024 * 1024
_BYTES = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
# How a route that streams an object documents its answers (OpenAPI ``responses``): the bytes,
# whole or a range of them, in the object's own media type.
MEDIA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The whole object (Repr-Digest: its SHA-256)", "content": _BYTES},
    206: {"description": "The byte range asked for (Range, If-Range)", "content": _BYTES},
    416: {"description": "No byte of the range asked for exists"},
}
# The Range headers nginx reads exactly as parse_range does (one range, digits only): only
# then is what the record says was sent what nginx sends. Anything else (several ranges,
# spaces, other units) is answered here, as it always was.
_PLAIN_RANGE = re.compile(r"bytes=(?:[0-9]{1,18}-[0-9]{0,18}|-[0-9]{1,18})")
# Conditions nginx would act on (304, 412) and this code ignores: such requests are answered
# here, so nginx never sends less than the record says.
_CONDITIONS = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")


def handoff_prefix(prefix: str, vault: Vault) -> str:
    """The internal prefix to hand objects of ``vault`` to nginx under, or "" to stream them
    here: only a local vault's files are on a disk nginx can read (S3 streams through us)."""
    return prefix if prefix and isinstance(vault, LocalVault) else ""


Sent = tuple[int, int] | None  # the bytes (first, last) being sent, if any


def stream_object(
    request: Request, vault: Vault, common: Mapping[str, str], key: str, size: int, content_type: str,
    sha256: str | None, disposition: str | None, handoff: str = "",
) -> tuple[Response, Sent]:
    """A 200, 206 or 416 for the object; and the bytes (first, last) being sent, if any.
    ``handoff``: an internal prefix of the proxy in front (see :func:`handoff_prefix`)."""
    plan = _Plan.of(request, common, size, content_type, sha256, disposition)
    answered = plan.answer_without_reading(request, key, handoff)
    if answered is not None:
        return answered
    start, end = plan.start, plan.end
    # Opened before the status line goes out: storage that is down is a 503 with Retry-After
    # (the vault's error), not a 200 whose body breaks off.
    stream = vault.open(key, start, end)
    if end - start <= BLOCK:
        # A player's Range request, most often: read at once in this request's thread (a
        # route that streams runs in one) and sent as one body, where a stream would cost a
        # thread hop per block and one more to find the end. No more memory than a stream's
        # block in flight.
        with stream:
            body = _read_exactly(stream, end - start)
        return Response(body, plan.status, headers=plan.headers), plan.sent
    # Closed when the body is done, and also when it was never asked for (a client gone).
    return StreamingResponse(_blocks(stream), plan.status, headers=plan.headers,
                             background=BackgroundTask(stream.close)), plan.sent


def answer_without_reading(
    request: Request, common: Mapping[str, str], key: str, size: int, content_type: str, sha256: str | None,
    disposition: str | None, handoff: str,
) -> tuple[Response, Sent] | None:
    """:func:`stream_object`'s answer when it reads nothing from the vault (a 416, a HEAD, or
    handed to nginx), so an async route can give it without a thread; else None."""
    plan = _Plan.of(request, common, size, content_type, sha256, disposition)
    return plan.answer_without_reading(request, key, handoff)


@dataclass
class _Plan:
    """What the request's headers ask of an object of ``size`` bytes: the status, the
    headers, and bytes ``start`` to ``end`` (exclusive); ``wanted``: the Range header that
    counts (None: send it whole), ``unsatisfiable``: answer 416."""

    status: int
    headers: dict[str, str]
    start: int
    end: int
    wanted: str | None
    unsatisfiable: bool = False

    @classmethod
    def of(cls, request: Request, common: Mapping[str, str], size: int, content_type: str, sha256: str | None,
           disposition: str | None) -> _Plan:
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
            headers["Content-Range"] = f"bytes */{size}"
            return cls(416, headers, 0, 0, wanted, unsatisfiable=True)
        if chosen is None:
            return cls(200, {**headers, "Content-Length": str(size)}, 0, size, wanted)
        headers["Content-Length"] = str(chosen.length)
        headers["Content-Range"] = chosen.content_range(size)
        return cls(206, headers, chosen.start, chosen.end + 1, wanted)

    @property
    def sent(self) -> Sent:
        return (self.start, self.end - 1) if self.end > self.start else None

    def answer_without_reading(self, request: Request, key: str, handoff: str) -> tuple[Response, Sent] | None:
        if self.unsatisfiable:
            return Response(status_code=416, headers=self.headers), None
        head = request.method == "HEAD"
        if handoff and not head and self.sent is not None and _nginx_agrees(request, self.wanted):
            # nginx sets Content-Length and Content-Range itself, from the file.
            headers = {k: v for k, v in self.headers.items() if k not in ("Content-Length", "Content-Range")}
            return _handed_off(handoff, key, headers), self.sent
        if head:
            return Response(status_code=self.status, headers=self.headers), None
        return None


def _nginx_agrees(request: Request, wanted: str | None) -> bool:
    """Whether nginx, serving the file for this request, sends exactly the bytes we chose."""
    if wanted is not None and not _PLAIN_RANGE.fullmatch(wanted):
        return False
    return not any(name in request.headers for name in _CONDITIONS)


def _handed_off(prefix: str, key: str, headers: dict[str, str]) -> Response:
    """An empty answer telling nginx which file to send; nginx applies Range and If-Range
    itself (against the ETag set here) and adds the headers it does not keep from an
    upstream answer (infra/nginx.conf, the internal location). The key is the database's,
    never the request's, and checked again as the vault checks it."""
    path = prefix + quote(check_key(key), safe="/")
    return Response(status_code=200, headers={**headers, "X-Accel-Redirect": path})


def _read_exactly(stream: BinaryIO, length: int) -> bytes:
    """``length`` bytes (fewer only at the end of the object): one read may return less."""
    parts: list[bytes] = []
    got = 0
    while got < length and (part := stream.read(length - got)):
        parts.append(part)
        got += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while block := stream.read(BLOCK):
            yield block
