"""Header limits (evidence.http.limits): the pure rules, and the ASGI middleware that
applies them before anything else reads a request. (Oversized heads on a real server, and
uvicorn's bounded protocol, are in tests/transfer/test_hostile.py and test_protocol.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from evidence.http.limits import (
    CONCAT_URL_BYTES,
    LINE_OVERHEAD,
    REQUEST_LINE_BYTES,
    HeaderLimitMiddleware,
    HeaderLimits,
    has_nul,
    oversize,
    uvicorn_options,
)
from evidence.settings import Settings

LIMITS = HeaderLimits(max_count=4, max_value_bytes=10, max_total_bytes=30, max_concat_bytes=20)


def test_headers_within_every_limit_pass() -> None:
    assert oversize([(b"a", b"1" * 10), (b"b", b"2"), (b"c", b"3"), (b"d", b"4")], LIMITS) is None
    assert oversize([], LIMITS) is None


def test_too_many_fields() -> None:
    assert oversize([(b"a", b"")] * 5, LIMITS) == "more than 4 header fields"


def test_one_value_too_long_names_its_header() -> None:
    assert oversize([(b"X-Thing", b"1" * 11)], LIMITS) == "the X-Thing header is longer than 10 bytes"


def test_names_and_values_add_up() -> None:
    # Three fields of 1 + 10 bytes: 33 > 30.
    assert oversize([(b"a", b"1" * 10)] * 3, LIMITS) == "the header fields add up to more than 30 bytes"


def test_upload_concat_is_counted_apart() -> None:
    concat = (b"Upload-Concat", b"x" * 20)  # longer than a value may be, within its own limit
    assert oversize([concat, (b"a", b"1" * 10), (b"b", b"2" * 10)], LIMITS) is None
    assert oversize([(b"upload-concat", b"x" * 21)], LIMITS) == "Upload-Concat is longer than 20 bytes"
    # Several fields of it share one limit.
    assert oversize([(b"upload-concat", b"x" * 15)] * 2, LIMITS) == "Upload-Concat is longer than 20 bytes"


def test_a_header_name_is_shown_cut() -> None:
    reason = oversize([(b"N" * 500, b"1" * 11)], LIMITS)
    assert reason == f"the {'N' * 64} header is longer than 10 bytes"


def test_limits_from_settings_and_the_largest_head() -> None:
    settings = Settings.model_construct()
    limits = HeaderLimits.from_settings(settings)
    assert limits.max_concat_bytes == len("final;") + settings.max_concat_partials * CONCAT_URL_BYTES
    assert limits.max_head_bytes == (REQUEST_LINE_BYTES + limits.max_total_bytes + limits.max_concat_bytes
                                     + (limits.max_count + 1) * LINE_OVERHEAD + len("upload-concat"))


@pytest.mark.parametrize(("path", "query", "found"), [
    ("/api/v1/cases", b"", False),
    ("/api/v1/cases/a\x00b", b"", True),
    ("/x", b"case=a%00b", True),
    ("/x", b"case=a%00", True),
    ("/x", b"case=a\x00b", True),
    ("/x", b"case=a%0", False),
])
def test_a_nul_anywhere_in_the_url(path: str, query: bytes, found: bool) -> None:
    assert has_nul({"path": path, "query_string": query}) is found


# -- the middleware, called as the server calls it ---------------------------------------------


def _run(scope: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """Messages the middleware sent, and whether the app behind it was reached."""
    sent: list[dict[str, Any]] = []
    reached: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(HeaderLimitMiddleware(app, LIMITS)(scope, receive, send))
    return sent, bool(reached)


def _http(path: str = "/api/v1/cases", headers: list[tuple[bytes, bytes]] | None = None,
          query: bytes = b"") -> dict[str, Any]:
    return {"type": "http", "path": path, "query_string": query, "headers": headers or []}


def test_the_middleware_lets_a_fitting_request_through() -> None:
    assert _run(_http(headers=[(b"a", b"1")])) == ([], True)


def test_the_middleware_refuses_with_431_in_plain_text_and_closes() -> None:
    sent, reached = _run(_http(headers=[(b"a", b"")] * 5))
    assert not reached
    start, body = sent
    assert start["status"] == 431
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"text/plain; charset=utf-8"
    assert headers[b"connection"] == b"close" and headers[b"cache-control"] == b"no-store"
    assert b"tus-resumable" not in headers
    assert body["body"] == b"request header fields too large: more than 4 header fields; nothing was done\n"
    assert headers[b"content-length"] == str(len(body["body"])).encode()


def test_the_middleware_answers_tus_requests_as_tus() -> None:
    for path in ("/files", "/files/", "/files/abc"):
        sent, _ = _run(_http(path, headers=[(b"a", b"")] * 5))
        assert dict(sent[0]["headers"])[b"tus-resumable"] == b"1.0.0"
    sent, _ = _run(_http("/filesystem", headers=[(b"a", b"")] * 5))
    assert b"tus-resumable" not in dict(sent[0]["headers"])


def test_the_middleware_refuses_a_nul_with_400() -> None:
    sent, reached = _run(_http("/api/v1/cases/a\x00b"))
    assert not reached and sent[0]["status"] == 400
    assert sent[1]["body"] == b"the URL holds a NUL character; nothing was done\n"


def test_websockets_are_closed_not_answered() -> None:
    sent, reached = _run({"type": "websocket", "path": "/ws", "query_string": b"", "headers": [(b"a", b"")] * 5})
    assert not reached and sent == [{"type": "websocket.close", "code": 1009}]
    sent, _ = _run({"type": "websocket", "path": "/ws\x00", "query_string": b"", "headers": []})
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_lifespan_passes_untouched() -> None:
    assert _run({"type": "lifespan"}) == ([], True)


def test_uvicorn_is_given_the_bounded_protocol() -> None:
    from evidence.http.protocol import BoundedHttpToolsProtocol

    settings = Settings.model_construct()
    assert uvicorn_options(settings) == {"http": BoundedHttpToolsProtocol}
    assert BoundedHttpToolsProtocol.max_head_bytes == HeaderLimits.from_settings(settings).max_head_bytes
