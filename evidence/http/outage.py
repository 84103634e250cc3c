"""A dependency that is down (the database, the object storage, the task queue) is answered
with 503 and ``Retry-After``, never a 500 with a traceback: the client did nothing wrong,
and the same request will work once the dependency is back.

:func:`outage_of` decides from an exception whether it says a dependency is down (a lost or
refused connection, a timeout, a server-side failure after the SDK's own retries), and which
one. Anything else (a constraint violated, a bad SQL statement, a 4xx from S3) is a bug or a
refusal and is left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import kombu.exceptions
import redis.exceptions
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from sqlalchemy import exc as sql
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

Dependency = Literal["database", "storage", "broker"]

# Long enough for a restarted PostgreSQL or Redis to take connections again, short enough
# that an upload resumes promptly.
RETRY_AFTER_SECONDS = 5

_NAMES: dict[Dependency, str] = {
    "database": "the database",
    "storage": "the evidence storage",
    "broker": "the task queue",
}

# Exception classes each of which always means "cannot talk to it".
_DATABASE = (sql.OperationalError, sql.InterfaceError, sql.DisconnectionError, sql.TimeoutError)
_STORAGE = (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ConnectTimeoutError, BotoConnectionError)
_BROKER = (kombu.exceptions.OperationalError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# Every class one of whose instances may be an outage: the app's exception handlers catch
# these and hand back to the default (500) what :func:`outage_of` does not claim.
CANDIDATES: tuple[type[Exception], ...] = (sql.DBAPIError, sql.DisconnectionError, sql.TimeoutError, ClientError,
                                           *_STORAGE, *_BROKER)


@dataclass(frozen=True)
class Outage:
    dependency: Dependency

    @property
    def message(self) -> str:
        return f"{_NAMES[self.dependency]} is unavailable; nothing was lost: try again shortly"

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


def outage_of(error: BaseException) -> Outage | None:
    """The dependency ``error`` says is down, looking through what it was raised from."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _direct(current)
        if found is not None:
            return Outage(found)
        current = current.__cause__ or current.__context__
    return None


def _direct(error: BaseException) -> Dependency | None:
    if isinstance(error, _DATABASE):
        return "database"
    # Any other driver error on a connection the pool has just thrown away (the server
    # closed it under us): the next request gets a fresh one.
    if isinstance(error, sql.DBAPIError) and error.connection_invalidated:
        return "database"
    if isinstance(error, _STORAGE):
        return "storage"
    if isinstance(error, ClientError):
        # Still failing after botocore's own retries: the gateway is in trouble, not the request.
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return "storage" if isinstance(status, int) and status >= 500 else None
    if isinstance(error, _BROKER):
        return "broker"
    return None


def tus_unavailable(outage: Outage, method: str) -> Response:
    """The answer under ``/files/``: as the tus handler answers its own errors (plain text,
    ``Tus-Resumable``), so tus clients retry and then ask for the offset (HEAD)."""
    body = "" if method == "HEAD" else outage.message + "\n"
    return PlainTextResponse(body, 503, headers={"Tus-Resumable": "1.0.0", "Cache-Control": "no-store",
                                                 **outage.headers})


class TusOutageGuard:
    """Wraps the tus app, for what fails outside its routes (whose errors the app's own
    handlers answer, with :func:`tus_unavailable` too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as error:
            outage = outage_of(error)
            if outage is None or started:
                raise
            log.warning("tus %s %s: %s is down (%s)", scope.get("method"), scope.get("path"), outage.dependency,
                        type(error).__name__)
            await tus_unavailable(outage, str(scope.get("method")))(scope, receive, send)
