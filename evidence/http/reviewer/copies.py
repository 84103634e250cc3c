"""Reading back the working copies a page is built from: a PDF's page index, a ZIP's previews
index and manifest, the head of a text file. Shared by the reviewer's pages and the officer's.

Each is read whole from the vault (they are small, and bounded here), checked against the
SHA-256 its derivative row records (a substituted object is not shown), and parsed once per
process: an object is named by its hash, so a parsed copy never goes stale and is kept by
that hash, a few of each kind, so a page view is no vault read once warm.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from evidence.models import Derivative
from evidence.vault import Vault
from evidence.workingcopies import MAX_INDEX_BYTES, BadIndex, Page, Pages, Preview, Previews, read_pages, read_previews

T = TypeVar("T")

TEXT_INLINE: Final = 64 * 1024  # of the text working copy, shown on a page; the rest is a link away
PER_PAGE: Final = 100  # archive entries on one page of its contents
# A manifest bigger than this is not listed on a page (a million-entry extraction would cost
# hundreds of MB parsed): the page says so, and the API still serves it whole.
MAX_MANIFEST_BYTES: Final = 32 * 1024 * 1024
MAX_EXIF: Final = 200  # tags listed; a value or name is cut to MAX_EXIF_CHARS
MAX_EXIF_CHARS: Final = 300
_KEPT: Final = 16  # parsed objects of each kind kept per process


class Unreadable(Exception):
    """The working copy is not one we would show (too large, bad hash, does not parse)."""


@dataclass(frozen=True)
class Entry:
    """One entry of a ZIP's manifest, as a page lists it (the rest of the manifest stays in the API)."""

    index: int  # its position in the manifest: what a preview's ``index`` names
    path: str
    is_dir: bool
    size: int
    sha256: str | None
    modified: str | None
    problem: str | None


@dataclass(frozen=True)
class Manifest:
    entries: tuple[Entry, ...]
    files: int
    problems: int
    # A ZIP that is an office document's package (Word, Excel, PowerPoint, OpenDocument):
    # what it holds are the document's parts, not files someone put there.
    office: bool = False


class _Kept:
    """Parsed objects by SHA-256, the newest ``_KEPT`` of them."""

    def __init__(self) -> None:
        self._kept: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sha256: str, make: Callable[[], T]) -> T:
        with self._lock:
            if sha256 in self._kept:
                self._kept.move_to_end(sha256)
                return self._kept[sha256]  # type: ignore[no-any-return]
        made = make()  # outside the lock: two threads may parse the same object once each, harmlessly
        with self._lock:
            self._kept[sha256] = made
            while len(self._kept) > _KEPT:
                self._kept.popitem(last=False)
        return made


_PAGES, _PREVIEWS, _MANIFESTS, _TEXTS = _Kept(), _Kept(), _Kept(), _Kept()


def _whole(vault: Vault, copy: Derivative, limit: int) -> bytes:
    if copy.size > limit:
        raise Unreadable(f"{copy.kind} is {copy.size} bytes, more than a page reads ({limit})")
    data = _read(vault, copy.key, copy.size)
    if len(data) != copy.size or hashlib.sha256(data).hexdigest() != copy.sha256:
        raise Unreadable(f"{copy.kind} does not match its recorded SHA-256")
    return data


def _read(vault: Vault, key: str, length: int) -> bytes:
    """The first ``length`` bytes of an object (fewer if it is shorter): a stream's read may
    return less than asked (S3's does), so read until there is no more."""
    data = bytearray()
    with vault.open(key, 0, length) as stream:
        while len(data) < length and (block := stream.read(length - len(data))):
            data += block
    return bytes(data)


def pages_of(vault: Vault, copy: Derivative) -> Pages:
    def parse() -> Pages:
        try:
            return read_pages(_whole(vault, copy, MAX_INDEX_BYTES))
        except BadIndex as error:
            raise Unreadable(str(error)) from None
    return _PAGES.get(copy.sha256, parse)


def previews_of(vault: Vault, copy: Derivative) -> Previews:
    def parse() -> Previews:
        try:
            return read_previews(_whole(vault, copy, MAX_INDEX_BYTES))
        except BadIndex as error:
            raise Unreadable(str(error)) from None
    return _PREVIEWS.get(copy.sha256, parse)


def manifest_of(vault: Vault, copy: Derivative) -> Manifest:
    return _MANIFESTS.get(copy.sha256, lambda: _parse_manifest(_whole(vault, copy, MAX_MANIFEST_BYTES)))


def _parse_manifest(data: bytes) -> Manifest:
    try:
        raw = json.loads(data)
        entries = tuple(_entry(n, e) for n, e in enumerate(raw["entries"]))
    except (ValueError, KeyError, TypeError) as error:
        raise Unreadable(f"not a manifest: {error}") from None
    office = any(e.path == "[Content_Types].xml" for e in entries) or (bool(entries) and entries[0].path == "mimetype")
    return Manifest(entries, sum(1 for e in entries if not e.is_dir), sum(1 for e in entries if e.problem), office)


def _entry(index: int, raw: Mapping[str, Any]) -> Entry:
    path, size = raw["path"], raw["size"]
    if not isinstance(path, str) or not isinstance(size, int):
        raise TypeError("an entry's path or size is of the wrong type")
    return Entry(index, path, bool(raw.get("is_dir")), size, _text_or_none(raw.get("sha256")),
                 _text_or_none(raw.get("modified")), _text_or_none(raw.get("problem")))


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def page_of(pages: Pages, number: int) -> Page | None:
    return next((p for p in pages.pages if p.number == number), None)


def preview_of(previews: Previews, index: int) -> Preview | None:
    return next((p for p in previews.previews if p.index == index), None)


def text_head(vault: Vault, copy: Derivative) -> tuple[str, bool]:
    """The first TEXT_INLINE bytes of a text working copy as text (a character cut in two at
    the end is dropped), and whether there is more. Kept by hash like the indexes: a link page
    listing text exhibits reads the vault once per process, not once per view."""
    def head() -> tuple[str, bool]:
        data = _read(vault, copy.key, min(copy.size, TEXT_INLINE))
        # Not final when cut: a character the cut split is left out, not shown as a replacement mark.
        more = copy.size > TEXT_INLINE
        return codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=not more), more
    return _TEXTS.get(copy.sha256, head)


def exif_of(media: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The EXIF tags the worker kept (``media["exif"]``), as (tag, value) text, bounded: they
    come from the file, so from whoever made it."""
    found = (media or {}).get("exif")
    if not isinstance(found, dict):
        return []
    return [(str(tag)[:MAX_EXIF_CHARS], str(value)[:MAX_EXIF_CHARS]) for tag, value in list(found.items())[:MAX_EXIF]]


def page_count(total: int, per_page: int = PER_PAGE) -> int:
    """Pages of ``per_page`` for ``total`` entries: at least one, even for an empty archive."""
    return max(1, -(-total // per_page))


def number_of(raw: str) -> int | None:
    """A number from a URL: ASCII digits only, at most nine of them; None for anything else."""
    return int(raw) if 0 < len(raw) <= 9 and raw.isascii() and raw.isdigit() else None


def page_number(raw: str | None, last: int) -> int | None:
    """A page number from a query string: 1 to ``last``; None otherwise (the caller answers
    with its not-found page). Absent means the first."""
    number = 1 if raw is None else number_of(raw)
    return number if number is not None and 1 <= number <= last else None
