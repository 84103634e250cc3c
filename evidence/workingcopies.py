"""Working copies made of many objects: a PDF's pages, the previews of what a ZIP holds.

One derivative row (kind ``pages`` or ``previews``) is the index, a small JSON object stored in
the vault like any working copy and recorded on the custody record with its method; each page
or preview is stored beside it under a key made from its own SHA-256, so the index names
objects by what they are (their hash), never by where they are kept, and a retried step that
makes the same bytes finds them already stored. The workers write indexes
(:func:`pages_index`, :func:`previews_index`); the reviewer's routes read them back
(:func:`read_pages`, :func:`read_previews`), strictly: an index that does not parse is not used.

Pure: no database, no vault.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Final

PAGES_FORMAT: Final = "evidence-pages/1"
PREVIEWS_FORMAT: Final = "evidence-previews/1"
# Content types a page or preview may have, and the file extension its key ends with.
EXTENSIONS: Final = {"image/jpeg": "jpg", "image/png": "png", "video/mp4": "mp4", "audio/mp4": "m4a"}
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_INDEX_BYTES: Final = 8 * 1024 * 1024  # an index bigger than this was not written by us


class BadIndex(ValueError):
    """An index that is not one we write."""


@dataclass(frozen=True)
class Part:
    """One stored object of a many-object working copy."""

    sha256: str
    size: int
    content_type: str

    def key(self, item_id: str, kind: str) -> str:
        """Where it is kept: ``derivatives/<item>/<kind>/<sha256>.<ext>``."""
        return f"derivatives/{item_id}/{kind}/{self.sha256}.{EXTENSIONS[self.content_type]}"


@dataclass(frozen=True)
class Page(Part):
    number: int  # from 1
    width: int
    height: int


@dataclass(frozen=True)
class Preview(Part):
    index: int  # the entry's position in the archive's manifest ("entries")
    path: str  # the entry's path inside the archive, as the manifest gives it
    kind: str  # "image" or "video"


@dataclass(frozen=True)
class Pages:
    page_count: int  # pages in the PDF; more than len(pages) when only the first ones were rendered
    pages: tuple[Page, ...]


@dataclass(frozen=True)
class Previews:
    previews: tuple[Preview, ...]
    skipped: tuple[tuple[str, str], ...]  # (entry path, why no preview) for media entries left out


def pages_index(page_count: int, pages: list[Page]) -> bytes:
    return _dump({"format": PAGES_FORMAT, "page_count": page_count, "pages": [asdict(p) for p in pages]})


def previews_index(previews: list[Preview], skipped: list[tuple[str, str]]) -> bytes:
    return _dump({"format": PREVIEWS_FORMAT, "previews": [asdict(p) for p in previews],
                  "skipped": [{"path": path, "reason": why} for path, why in skipped]})


def read_pages(data: bytes) -> Pages:
    raw = _load(data, PAGES_FORMAT)
    pages = tuple(Page(**_part(p), number=_int(p, "number"), width=_int(p, "width"), height=_int(p, "height"))
                  for p in _list(raw, "pages"))
    return Pages(_int(raw, "page_count"), pages)


def read_previews(data: bytes) -> Previews:
    raw = _load(data, PREVIEWS_FORMAT)
    previews = tuple(Preview(**_part(p), index=_int(p, "index"), path=_str(p, "path"), kind=_str(p, "kind"))
                     for p in _list(raw, "previews"))
    skipped = tuple((_str(s, "path"), _str(s, "reason")) for s in _list(raw, "skipped"))
    return Previews(previews, skipped)


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _load(data: bytes, expected: str) -> dict[str, Any]:
    if len(data) > MAX_INDEX_BYTES:
        raise BadIndex("index too large")
    try:
        raw = json.loads(data)
    except ValueError as error:
        raise BadIndex(f"index is not JSON: {error}") from None
    if not isinstance(raw, dict) or raw.get("format") != expected:
        raise BadIndex(f"not an index of format {expected}")
    return raw


def _part(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadIndex("an index entry is not an object")
    sha256, content_type = _str(raw, "sha256"), _str(raw, "content_type")
    if not _SHA256.fullmatch(sha256) or content_type not in EXTENSIONS:
        raise BadIndex("an index entry has a bad hash or content type")
    return {"sha256": sha256, "size": _int(raw, "size"), "content_type": content_type}


def _list(raw: dict[str, Any], name: str) -> list[Any]:
    value = raw.get(name)
    if not isinstance(value, list):
        raise BadIndex(f"{name} is not a list")
    return value


def _int(raw: dict[str, Any], name: str) -> int:
    value = raw.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadIndex(f"{name} is not a count")
    return value


def _str(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str):
        raise BadIndex(f"{name} is not text")
    return value
