"""/docs: the API reference (Swagger UI) from this server's own files.

The Swagger UI assets come from npm's ``swagger-ui-dist``, copied into the built static folder
at set-up (web/build.mjs), so the reference works on a network with no internet and loads
nothing from a third party. FastAPI's own /docs and /redoc (which load from a CDN) are off."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from evidence.http.pages.render import page

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def docs() -> HTMLResponse:
    # Public, as /openapi.json is: the contract names no data, and every route it describes
    # checks who is asking.
    return page("docs.html", headers={"Cache-Control": "no-cache"}, spec_url="/openapi.json")
