"""Rendering the pages: one Jinja2 environment (autoescape everywhere, no undefined values),
and the headers every page carries.

The policy admits nothing but this origin: our own script and style files, and the hash
worker's WebAssembly ('wasm-unsafe-eval' lets a page compile WebAssembly, not run strings
as script). No inline script or style, no third-party origin, no framing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

from evidence.http.reviewer.pages import human_size

CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; style-src 'self'; "
       "img-src 'self' data: blob:; media-src 'self'; connect-src 'self'; object-src 'none'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("evidence.http.pages"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["size"] = human_size
    env.filters["when"] = when
    return env


_ENV = _environment()


def page(template: str, status: int = 200, headers: dict[str, str] | None = None, **values: Any) -> HTMLResponse:
    html = _ENV.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})
