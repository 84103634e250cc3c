"""How errors are answered: one shape each for scripts (JSON), people on the pages and
reviewers on their links; never a traceback. :mod:`evidence.errors` lists the errors a user
can meet; :mod:`evidence.http.outage` says when an SDK's exception means a dependency is down."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from evidence.errors import EvidenceError
from evidence.http.outage import CANDIDATES, RETRY_AFTER_SECONDS, Outage, outage_of, tus_unavailable
from evidence.http.pages.render import page
from evidence.http.pages.session import SignInRequired, sign_in_url
from evidence.http.reviewer import routes as reviewer

log = logging.getLogger(__name__)
_TITLES = {403: "Not allowed", 404: "Not found", 401: "Sign in again", 503: "Temporarily unavailable"}


def install(app: FastAPI) -> None:
    app.add_exception_handler(EvidenceError, _evidence_error)  # type: ignore[arg-type]  # Starlette types it for Exception
    for kind in CANDIDATES:
        app.add_exception_handler(kind, _dependency_down)


async def _evidence_error(request: Request, error: EvidenceError) -> Response:
    if isinstance(error, SignInRequired):
        return RedirectResponse(sign_in_url(error.next_path, "expired" if "expired" in error.message else ""),
                                status_code=303)
    # RFC 6750: a 401 says which scheme would be accepted; RFC 9110: a 503, when to come back.
    headers: dict[str, str] | None = None
    if error.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="evidence"'}
    elif error.status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if wants_reviewer_page(request):
            return reviewer.unavailable(headers)
    if wants_page(request):
        return page("error.html", status=error.status, title=_TITLES.get(error.status, "Something went wrong"),
                    message=error.message, headers=headers)
    return JSONResponse({"error": error.message}, status_code=error.status, headers=headers)


async def _dependency_down(request: Request, error: Exception) -> Response:
    outage = outage_of(error)
    if outage is None:
        raise error  # not an outage: a bug, answered as one (500) and logged with its traceback
    log.warning("%s %s: %s is down (%s)", request.method, request.url.path, outage.dependency, type(error).__name__)
    return unavailable(request, outage)


def unavailable(request: Request, outage: Outage) -> Response:
    if request.url.path == "/files" or request.url.path.startswith("/files/"):
        return tus_unavailable(outage, request.method)
    if wants_reviewer_page(request):
        return reviewer.unavailable(outage.headers)
    if wants_page(request):
        return page("error.html", status=503, title=_TITLES[503], message=outage.message, headers=outage.headers)
    return JSONResponse({"error": outage.message}, status_code=503, headers=outage.headers)


def wants_page(request: Request) -> bool:
    """A person's browser on a page (not a script's fetch): errors come as a page."""
    path = request.url.path
    return path.startswith("/app/") and not path.startswith(("/app/fragments/", "/app/uploads/", "/app/audit/jobs/")) \
        and "text/html" in request.headers.get("accept", "")


def wants_reviewer_page(request: Request) -> bool:
    return request.url.path.startswith("/s/") and "text/html" in request.headers.get("accept", "")
