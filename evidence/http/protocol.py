"""uvicorn's httptools protocol with a bound on the request head (see
:mod:`evidence.http_limits`: httptools itself accepts a head of any size)."""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from evidence.http.limits import HeaderLimits
from evidence.settings import Settings


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Refuses (431, connection closed) a request head that grows past ``max_head_bytes``
    before it is complete. The count is taken after each read is parsed, so no head is
    held beyond the limit plus one read; the exact rules are the middleware's."""

    # A class attribute, so that a worker process started by uvicorn (which imports this
    # class afresh) still has a bound: that of the default settings.
    max_head_bytes: int = HeaderLimits.from_settings(Settings.model_construct()).max_head_bytes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._in_head and self.parser is not None:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse()

    def on_message_begin(self) -> None:
        self._in_head, self._head_bytes = True, 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _refuse(self) -> None:
        self._refused = True
        body = f"request header fields too large: the request head is longer than {self.max_head_bytes} bytes\n"
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body.encode()
        )
        self.transport.close()
