"""The reviewer's pages as plain HTML: no script, no third-party assets, every value escaped.

Refusals use two fixed pages (not found, no longer valid) that say nothing about the case,
so a refused URL cannot be used to learn whether a case, item or link exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#111}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin:0 0 .5rem}
section{border:1px solid #bbb;padding:1rem;margin:1.5rem 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}
.hash{font-family:ui-monospace,monospace;font-size:.9em;word-break:break-all}
video,img{max-width:100%;height:auto;display:block;margin:.5rem 0}
a.button,button{display:inline-block;padding:.4rem .9rem;border:2px solid #024;background:#024;color:#fff;
text-decoration:none;font:inherit;cursor:pointer}
a.secondary{background:#fff;color:#024}:focus{outline:3px solid #fb0;outline-offset:2px}
"""
# Pages carry their only style inline; the policy allows nothing from anywhere else.
CSP = ("default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


@dataclass(frozen=True)
class Exhibit:
    id: str
    filename: str
    exhibit: str | None
    size: int
    hashes: dict[str, Any]
    state: str
    has_proxy: bool
    proxy_type: str
    has_contact_sheet: bool
    has_poster: bool


def _doc(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"referrer\" content=\"no-referrer\"><meta name=\"robots\" content=\"noindex\">"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n<body><main>\n{body}\n</main></body></html>\n"
    )


def not_found() -> str:
    return _doc("Not found", "<h1>Not found</h1><p>There is nothing at this address.</p>")


def gone() -> str:
    return _doc("This link is no longer valid",
                "<h1>This link is no longer valid</h1><p>Ask the person who shared it with you for a new link.</p>")


def too_many() -> str:
    return _doc("Too many requests", "<h1>Too many requests</h1><p>Wait a moment, then try again.</p>")


def passcode_form(action: str, message: str | None = None) -> str:
    note = f'<p role="alert"><strong>{escape(message)}</strong></p>' if message else ""
    return _doc("Passcode needed", f"""<h1>Passcode needed</h1>
<p>This link is protected by a passcode, sent to you separately from the link.</p>{note}
<form method="post" action="{escape(action)}">
<label for="passcode">Passcode</label>
<input id="passcode" name="passcode" type="password" autocomplete="one-time-code" required autofocus>
<button type="submit">Continue</button>
</form>""")


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value, unit = float(size), "bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024:
            break
    return f"{value:.1f} {unit} ({size} bytes)"


def shared_page(case_ref: str, base: str, exhibits: list[Exhibit], download: bool, expires: str) -> str:
    parts = [f"<h1>Case {escape(case_ref)}</h1>",
             f"<p>Exhibits shared with you. This link expires {escape(expires)}. "
             "Every view and download is recorded in the case's custody record.</p>"]
    if not exhibits:
        parts.append("<p>No exhibits have been shared on this link.</p>")
    for ex in exhibits:
        url = f"{escape(base)}/items/{escape(ex.id)}"
        rows = [("Original filename", escape(ex.filename)), ("Exhibit reference", escape(ex.exhibit or "—")),
                ("Size", escape(_size(ex.size))), ("State", escape(ex.state))]
        for name, label in (("sha256", "SHA-256"), ("sha1", "SHA-1"), ("md5", "MD5")):
            if ex.hashes.get(name):
                rows.append((label, f'<span class="hash">{escape(str(ex.hashes[name]))}</span>'))
        dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
        media = ""
        if ex.has_proxy:
            poster = f' poster="{url}/poster"' if ex.has_poster else ""
            media += (f'<video controls preload="metadata"{poster} aria-label="Working copy of {escape(ex.filename)}">'
                      f'<source src="{url}/proxy" type="{escape(ex.proxy_type)}">'
                      f'<a href="{url}/proxy">Open the working copy</a></video>')
        if ex.has_contact_sheet:
            media += f'<img src="{url}/contact-sheet" alt="Contact sheet: stills from {escape(ex.filename)}">'
        actions = [f'<a class="button secondary" href="{url}/report">Custody report</a>']
        if download:
            actions.insert(0, f'<a class="button" href="{url}/original" download>Download original</a>')
        parts.append(f'<section aria-labelledby="h-{escape(ex.id)}"><h2 id="h-{escape(ex.id)}">'
                     f"{escape(ex.exhibit or ex.filename)}</h2><dl>{dl}</dl>{media}<p>{' '.join(actions)}</p></section>")
    return _doc(f"Case {case_ref}: shared exhibits", "\n".join(parts))
