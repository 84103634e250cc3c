"""The officer's commands through the HTTP API: ``--server`` and ``--token`` instead of the
server's data dir.

:class:`Api` is the narrowest client those commands need: one typed method per endpoint,
each answering the API's own JSON, so the commands print exactly what they print locally
and every URL in it is the server's. A refusal becomes the :mod:`evidence.errors` error
with the same meaning, carrying the API's message; a server that cannot be reached becomes
:class:`~evidence.errors.Unavailable`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import click
import requests

from evidence.cli.actor import given, token_option
from evidence.cli.suggest import suggesting
from evidence.errors import (
    Conflict,
    EvidenceError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
    Unavailable,
)
from evidence.links.sharing import MAX_LIFETIME, Share

# (connect, read) seconds: a dead address fails fast, a busy server gets time to answer.
TIMEOUT = (10.0, 60.0)
# What each refusal means; anything else unexpected is a plain EvidenceError.
_REFUSALS: dict[int, type[EvidenceError]] = {
    400: InvalidInput, 403: Forbidden, 404: NotFound, 409: Conflict, 410: NotFound, 413: InvalidInput,
    422: InvalidInput, 429: Unavailable, 502: Unavailable, 503: Unavailable, 504: Unavailable,
}
F = TypeVar("F", bound=Callable[..., Any])


class Api:
    """The evidence API at ``server``, as the holder of ``token``."""

    def __init__(self, server: str, token: str, *, timeout: tuple[float, float] = TIMEOUT,
                 session: requests.Session | None = None) -> None:
        self.server = server.rstrip("/")
        self.timeout = timeout
        self.http = session or requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token.strip()}"

    # -- items ------------------------------------------------------------------------------

    def items(self, case: str) -> list[dict[str, Any]]:
        """GET /api/v1/items?case=REF: the case's items, oldest first."""
        found: list[dict[str, Any]] = self._about_case(case, "GET", "/api/v1/items", params={"case": case})
        return found

    def case_refs(self) -> list[str]:
        """GET /api/v1/cases: the references of the cases this token may see."""
        found = self._call("GET", "/api/v1/cases")
        return [str(case["ref"]) for case in found if isinstance(case, dict) and "ref" in case]

    def item(self, item_id: str) -> dict[str, Any]:
        """GET /api/v1/items/{id}: what ``items show --json`` prints."""
        found: dict[str, Any] = self._call("GET", f"/api/v1/items/{_segment(item_id)}")
        return found

    # -- links ------------------------------------------------------------------------------

    def share(self, share: Share) -> dict[str, Any]:
        """POST /api/v1/links: the new link, with ``issued_passcode`` (shown once) if asked for."""
        # The API would refuse too, in its validator's words; say it as the local command does.
        if not timedelta(minutes=1) <= share.lifetime <= MAX_LIFETIME:
            raise InvalidInput("a link lasts between one minute and 366 days")
        body = {
            "case": share.case_ref, "to": share.recipient, "expires_in": int(share.lifetime.total_seconds()),
            "items": list(share.item_ids), "download": share.download, "passcode": share.passcode,
            "max_uses": share.max_uses, "include_future": share.include_future,
        }
        made: dict[str, Any] = self._about_case(share.case_ref, "POST", "/api/v1/links", json=body)
        return made

    def links(self, case: str) -> list[dict[str, Any]]:
        """GET /api/v1/links?case=REF: what ``links list --json`` prints."""
        found: list[dict[str, Any]] = self._about_case(case, "GET", "/api/v1/links", params={"case": case})
        return found

    def revoke(self, link_id: str) -> dict[str, Any]:
        """POST /api/v1/links/{id}/revoke: the link, now revoked."""
        revoked: dict[str, Any] = self._call("POST", f"/api/v1/links/{_segment(link_id)}/revoke")
        return revoked

    # -- retention, holds, disposal (evidence.cli.retention) ---------------------------------

    def outcome(self, case: str, event: str, on: str | None, release_on: str | None) -> dict[str, Any]:
        """POST /api/v1/retention/outcome: the case's retention, with its review date."""
        body = {"case": case, "event": event, "on": on, "release_on": release_on}
        found: dict[str, Any] = self._about_case(case, "POST", "/api/v1/retention/outcome", json=body)
        return found

    def hold(self, case: str, reason: str) -> dict[str, Any]:
        found: dict[str, Any] = self._about_case(case, "POST", "/api/v1/retention/hold",
                                                 json={"case": case, "reason": reason})
        return found

    def release(self, case: str) -> dict[str, Any]:
        found: dict[str, Any] = self._about_case(case, "POST", "/api/v1/retention/release", json={"case": case})
        return found

    def retention_due(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", "/api/v1/retention/due")
        return found

    def propose_disposal(self, item_id: str, reason: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call("POST", "/api/v1/retention/disposals",
                                           json={"item": item_id, "reason": reason})
        return found

    def approve_disposal(self, item_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call("POST", f"/api/v1/retention/disposals/{_segment(item_id)}/approve")
        return found

    # -- the wire ---------------------------------------------------------------------------

    def _about_case(self, case: str, method: str, path: str, **kwargs: Any) -> Any:
        """A call naming a case: refused as not found, it suggests the caller's nearest case."""
        try:
            return self._call(method, path, **kwargs)
        except NotFound as error:
            raise suggesting(error, case, self.case_refs) from None

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, f"{self.server}{path}", timeout=self.timeout, **kwargs)
        except requests.Timeout:
            raise Unavailable(f"the server at {self.server} did not answer in time; try again") from None
        except requests.ConnectionError:
            raise Unavailable(f"the server at {self.server} is not reachable; is it running?") from None
        except requests.exceptions.InvalidHeader:
            # Its message would print the token.
            raise InvalidInput("the token holds characters a header cannot carry") from None
        except requests.RequestException:
            raise InvalidInput(f"{self.server!r} is not a server address (like https://evidence.example)") from None
        if response.status_code >= 400:
            raise refusal(response.status_code, _json_or_none(response), response.text)
        found = _json_or_none(response)
        if found is None:
            raise EvidenceError(f"{self.server} answered {response.status_code} without JSON; "
                                "is it the evidence service's address?")
        return found


def refusal(status: int, body: Any, text: str = "") -> EvidenceError:
    """The error a refused request means, in the API's own words where it gave any."""
    said = message_of(body) or " ".join(text.split())[:200] or f"status {status}"
    if status == 401:
        return Unauthorized(f"the server refused the token: {said}")
    return _REFUSALS.get(status, EvidenceError)(said if status in _REFUSALS else f"the server answered {status}: {said}")


def message_of(body: Any) -> str:
    """``{"error": ...}`` as the API says it; FastAPI's own 422 ``{"detail": [...]}`` as
    ``field: problem`` lines; otherwise nothing."""
    if not isinstance(body, dict):
        return ""
    if isinstance(body.get("error"), str):
        return str(body["error"])
    detail = body.get("detail")
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        problems = []
        for problem in detail:
            if isinstance(problem, dict):
                where = [str(part) for part in problem.get("loc", ()) if part not in ("body", "query", "path")]
                problems.append(f"{'.'.join(where) or 'request'}: {problem.get('msg', 'invalid')}")
        return "; ".join(problems)
    return ""


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _segment(text: str) -> str:
    return quote(text, safe="")


# -- choosing it on the command line -----------------------------------------------------------


def remote_options(command: F) -> F:
    """``--server`` and ``--token``, as ``evidence upload`` takes them; without a server the
    command works on the local data dir, as the same person (:mod:`evidence.cli.actor`)."""
    command = token_option(command)
    return click.option("--server", envvar="EVIDENCE_SERVER", default=None,
                        help="Go through this server's API instead of a local data dir [env EVIDENCE_SERVER]")(command)


def api_of(server: str | None, token: str | None) -> Api | None:
    """The API to go through, or None to work on the local data dir."""
    if not server:
        return None
    return Api(server, given(token))
