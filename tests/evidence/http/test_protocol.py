"""uvicorn's httptools protocol with a bound on the request head
(evidence.http.protocol.BoundedHttpToolsProtocol), on a real socket with a small bound: a
head that grows past it is answered 431 and the connection closed before the head is
complete; heads within it are served, one after another on a kept-alive connection."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from evidence.http.protocol import BoundedHttpToolsProtocol
from tests.support.s3 import free_port

LIMIT = 2048


class SmallBound(BoundedHttpToolsProtocol):
    max_head_bytes = LIMIT


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b"ok"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    chosen = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=chosen, http=SmallBound, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield chosen
    server.should_exit = True
    thread.join(20)


def _exchange(port: int, data: bytes) -> bytes:
    """Everything the server answers to ``data`` until it closes the connection."""
    reply = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        while chunk := connection.recv(65536):
            reply += chunk
    return reply


def test_a_head_within_the_bound_is_served(port: int) -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"x" * (LIMIT - 100) + b"\r\nConnection: close\r\n\r\n"
    assert _exchange(port, head).startswith(b"HTTP/1.1 200 ")


def test_a_head_past_the_bound_is_refused_before_it_ends(port: int) -> None:
    # No blank line: the head never completes, and the server does not wait for it to.
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"x" * LIMIT
    reply = _exchange(port, head)
    assert reply.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), reply[:200]
    assert reply.endswith(f"the request head is longer than {LIMIT} bytes\n".encode())
    assert b"connection: close" in reply


def test_the_count_starts_again_with_each_request(port: int) -> None:
    # Two requests on one connection, each below the bound, together above it.
    one = b"GET / HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"x" * (LIMIT // 2) + b"\r\n\r\n"
    last = one.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    reply = _exchange(port, one + last)
    assert reply.count(b"HTTP/1.1 200 ") == 2, reply[:300]


def test_the_default_bound_is_that_of_the_default_settings() -> None:
    from evidence.http.limits import HeaderLimits
    from evidence.settings import Settings

    assert BoundedHttpToolsProtocol.max_head_bytes == HeaderLimits.from_settings(Settings.model_construct()).max_head_bytes
