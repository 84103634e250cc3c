"""What a page shows of an exhibit, from its item row and the working copies made of it.

Shared by the reviewer's link page and the officer's item page: what is shown depends only on
which working copies exist (a proxy, a screen-size image, rendered pages, text, audio, an
archive's manifest), never on the file's name. A working copy that cannot be read back as we
wrote it (a bad hash, an index that does not parse) is left out and logged, so the page still
shows everything else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from evidence.http.reviewer import copies
from evidence.http.reviewer.pages import Exhibit, Listed
from evidence.models import Derivative, DerivativeKind, Item
from evidence.vault import Vault
from evidence.workingcopies import Part

log = logging.getLogger(__name__)


def exhibit_of(vault: Vault, item: Item, made: Mapping[str, Derivative]) -> Exhibit:
    proxy, audio, text = made.get(DerivativeKind.PROXY), made.get(DerivativeKind.AUDIO), made.get(DerivativeKind.TEXT)
    shown_text, more = copies.text_head(vault, text) if text is not None else (None, False)
    rendered = total = 0
    if (index := made.get(DerivativeKind.PAGES)) is not None:
        try:
            pages = copies.pages_of(vault, index)
            rendered, total = len(pages.pages), max(pages.page_count, len(pages.pages))
        except copies.Unreadable as error:
            log.warning("pages of item %s not shown: %s", item.id, error)
    entries: int | None = None
    files = previews = 0
    office = unlisted = False
    if (manifest := made.get(DerivativeKind.MANIFEST)) is not None:
        try:
            listed = copies.manifest_of(vault, manifest)
            entries, files, office = len(listed.entries), listed.files, listed.office
        except copies.Unreadable as error:
            unlisted = True
            log.warning("contents of item %s not shown: %s", item.id, error)
    if (found := made.get(DerivativeKind.PREVIEWS)) is not None:
        try:
            previews = len(copies.previews_of(vault, found).previews)
        except copies.Unreadable as error:
            log.warning("previews of item %s not shown: %s", item.id, error)
    return Exhibit(
        item.id, item.filename, item.exhibit, item.size, dict(item.hashes or {}), item.state, proxy is not None,
        proxy.content_type if proxy else "", DerivativeKind.CONTACT_SHEET in made, DerivativeKind.POSTER in made,
        kind=item.kind, has_view=DerivativeKind.VIEW in made,
        exif=tuple(copies.exif_of(item.media)) if DerivativeKind.VIEW in made else (),
        audio_type=audio.content_type if audio else "", text=shown_text, text_more=more,
        pages=rendered, page_count=total, entries=entries, files=files, previews=previews, office=office,
        unlisted=unlisted,
    )


@dataclass(frozen=True)
class Listing:
    """One page of an archive's contents: ``listed`` are entries ``first`` (from 1) onwards."""

    listed: list[Listed]
    number: int
    pages: int
    first: int


def listing(vault: Vault, manifest: Derivative, previews: Derivative | None, raw: str | None) -> Listing | None:
    """Page ``raw`` (?page=, from 1) of the archive's entries with their previews; None for a
    page number that is not one of them, or a manifest not read back as written."""
    try:
        entries = copies.manifest_of(vault, manifest).entries
    except copies.Unreadable as error:
        log.warning("contents of item %s not shown: %s", manifest.item_id, error)
        return None
    last = copies.page_count(len(entries))
    number = copies.page_number(raw, last)
    if number is None:
        return None
    shown: dict[int, str] = {}
    skipped: dict[str, str] = {}
    if previews is not None:
        try:
            found = copies.previews_of(vault, previews)
            shown, skipped = {p.index: p.kind for p in found.previews}, dict(found.skipped)
        except copies.Unreadable as error:
            log.warning("previews of item %s not shown: %s", manifest.item_id, error)
    first = (number - 1) * copies.PER_PAGE
    listed = [Listed(e, shown.get(e.index), None if e.index in shown else skipped.get(e.path))
              for e in entries[first:first + copies.PER_PAGE]]
    return Listing(listed, number, last, first + 1)


def part_of(vault: Vault, index: Derivative, number: int) -> Part | None:
    """A PDF's page ``number`` or the preview of archive entry ``number``, from the index."""
    try:
        if index.kind == DerivativeKind.PAGES:
            return copies.page_of(copies.pages_of(vault, index), number)
        if index.kind == DerivativeKind.PREVIEWS:
            return copies.preview_of(copies.previews_of(vault, index), number)
    except copies.Unreadable as error:
        log.warning("%s of item %s not served: %s", index.kind, index.item_id, error)
    return None
