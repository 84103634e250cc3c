"""The server's access log, without secrets: a link token in a path is the key to evidence
(anyone holding the log could open the link), so ``/s/<token>/...`` is logged as
``/s/link:<link id>/...`` or ``/s/[invalid]/...``. It replaces uvicorn's access log, which
prints paths as they came.

One line per request: client, method, path, status, duration. Query strings are left out
(they are not needed to read the log and could carry anything), and the path is cut and
stripped of control characters, so a hostile request cannot forge or flood log lines.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("evidence.access")
_PATH_CHARS = 300
_PREFIX = "/s/"


def redact(path: str, link_of: Callable[[str], str | None]) -> str:
    """``path`` as it may be logged: a link token replaced by the link's id."""
    if path.startswith(_PREFIX):
        token, slash, rest = path[len(_PREFIX):].partition("/")
        link_id = link_of(token) if token else None
        path = f"{_PREFIX}{f'link:{link_id}' if link_id else '[invalid]'}{slash}{rest}"
    shown = "".join(c if c.isprintable() else "?" for c in path[:_PATH_CHARS])
    return shown + ("..." if len(path) > _PATH_CHARS else "")


class LinkIds:
    """Token to link id, for genuine tokens only (a forged token naming a link must not put
    that link in the log), remembering recent tokens so a player's many requests are
    verified once."""

    def __init__(self, verify: Callable[[str], str | None], size: int = 4096) -> None:
        self._verify, self._size = verify, size
        self._known: OrderedDict[str, str] = OrderedDict()

    def __call__(self, token: str) -> str | None:
        if token in self._known:
            self._known.move_to_end(token)
            return self._known[token]
        link_id = self._verify(token)
        if link_id is not None:
            self._known[token] = link_id
            if len(self._known) > self._size:
                self._known.popitem(last=False)
        return link_id


class AccessLog:
    """ASGI middleware writing one line per HTTP request to the ``evidence.access`` logger."""

    def __init__(self, app: ASGIApp, link_of: Callable[[str], str | None]) -> None:
        self.app, self.link_of = app, link_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: list[int] = []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                log.info('%s - "%s %s HTTP/%s" %s %.1fms', f"{client[0]}:{client[1]}" if client else "-",
                         scope["method"], redact(scope["path"], self.link_of), scope.get("http_version", "1.1"),
                         status[0] if status else "-", (time.perf_counter() - started) * 1000)


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up, plus this access log on its stream (uvicorn's access
    log is turned off by the caller: ``access_log=False``)."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = {**LOGGING_CONFIG, "loggers": dict(LOGGING_CONFIG["loggers"])}
    config["loggers"]["evidence.access"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
