"""Caps on the request headers of every request, before anything else reads them.

Two layers, because uvicorn's default HTTP parser sets no limit of its own: with
httptools, a single 64 MiB header is read, joined and handed to the application (6 s of CPU
and 130 MB of memory for one request), and so are a million header fields. h11 stops only
at 16 KiB of an incomplete head, and only when it arrives in several reads.

- :class:`HeaderLimitMiddleware` (ASGI) applies the exact rules to every request the app
  sees: number of fields, size of each value, size of all of them. ``Upload-Concat`` is
  allowed what ``max_concat_partials`` URLs need and counted apart. Too much is 431 with a
  plain-text reason, before routing, authentication or any database work.
- :class:`BoundedHttpToolsProtocol` (uvicorn) refuses a request whose head grows past
  what those rules could ever allow, while it is still being received, so an oversized
  head is never buffered or parsed whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from evidence.settings import Settings
from transfer.errors import BadRequest, HeadersTooLarge, TusError

# Room for one partial upload's URL in Upload-Concat: an absolute URL on this server
# (scheme, a long host name, the collection, a 32-character id) and its separator.
CONCAT_URL_BYTES = 256
# The request line (method, target, version) beside the headers, for the protocol guard.
REQUEST_LINE_BYTES = 16 * 1024
# Each header line's ": " and CRLF, for the protocol guard.
LINE_OVERHEAD = 4


@dataclass(frozen=True)
class HeaderLimits:
    max_count: int
    max_value_bytes: int
    max_total_bytes: int  # all names and values, Upload-Concat apart
    max_concat_bytes: int  # Upload-Concat, all of it

    @classmethod
    def from_settings(cls, settings: Settings) -> HeaderLimits:
        return cls(
            max_count=settings.max_header_count,
            max_value_bytes=settings.max_header_value_bytes,
            max_total_bytes=settings.max_header_bytes,
            max_concat_bytes=len("final;") + settings.max_concat_partials * CONCAT_URL_BYTES,
        )

    @property
    def max_head_bytes(self) -> int:
        """The largest request head (request line and header block) these rules allow."""
        return (
            REQUEST_LINE_BYTES
            + self.max_total_bytes
            + self.max_concat_bytes
            + (self.max_count + 1) * LINE_OVERHEAD
            + len("upload-concat")
        )


def oversize(headers: Iterable[tuple[bytes, bytes]], limits: HeaderLimits) -> str | None:
    """Why these headers are too large, or None. Pure; stops at the first rule broken."""
    count = total = concat = 0
    for name, value in headers:
        count += 1
        if count > limits.max_count:
            return f"more than {limits.max_count} header fields"
        if name.lower() == b"upload-concat":
            concat += len(value)
            if concat > limits.max_concat_bytes:
                return f"Upload-Concat is longer than {limits.max_concat_bytes} bytes"
            continue
        if len(value) > limits.max_value_bytes:
            shown = name[:64].decode("latin-1")
            return f"the {shown} header is longer than {limits.max_value_bytes} bytes"
        total += len(name) + len(value)
        if total > limits.max_total_bytes:
            return f"the header fields add up to more than {limits.max_total_bytes} bytes"
    return None


def has_nul(scope: Any) -> bool:
    """A NUL character anywhere in the URL (path or query, percent-encoded or not). Never
    valid in anything we serve; PostgreSQL cannot even store one, so it is refused here."""
    return "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"").lower() \
        or b"\x00" in scope.get("query_string", b"")


class HeaderLimitMiddleware:
    """ASGI middleware: refuses with 431 any request whose headers break ``limits``, and
    with 400 any whose URL holds a NUL character."""

    def __init__(self, app: Any, limits: HeaderLimits, tus_prefix: str = "/files") -> None:
        self.app = app
        self.limits = limits
        self.tus_prefix = tus_prefix

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            reason = oversize(scope["headers"], self.limits)
            if reason is not None:
                await self._refuse(scope, send, HeadersTooLarge(f"request header fields too large: {reason}; nothing was done"))
                return
            if has_nul(scope):
                await self._refuse(scope, send, BadRequest("the URL holds a NUL character; nothing was done"))
                return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Any, send: Any, error: TusError) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1009 if error.status == 431 else 1008})
            return
        body = (error.message + "\n").encode()
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            # The body is left unread: the connection cannot be used again.
            (b"connection", b"close"),
        ]
        if scope["path"] == self.tus_prefix or scope["path"].startswith(self.tus_prefix + "/"):
            headers.append((b"tus-resumable", b"1.0.0"))
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# -- uvicorn ------------------------------------------------------------------------------


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What ``uvicorn.run`` needs to bound request heads while they are received."""
    limit = HeaderLimits.from_settings(settings).max_head_bytes
    try:
        from evidence.http.protocol import BoundedHttpToolsProtocol
    except ImportError:  # no httptools: h11, whose own limit then applies to each read
        return {"http": "h11", "h11_max_incomplete_event_size": limit}
    BoundedHttpToolsProtocol.max_head_bytes = limit
    return {"http": BoundedHttpToolsProtocol}
