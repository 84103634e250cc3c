"""Reading working copies back for a page (evidence.http.reviewer.copies), from a real local
vault: what does not match its recorded hash or does not parse is not shown, page numbers from
URLs are strict, an office package is told from an extraction by what it holds, EXIF is bounded."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from evidence.http.reviewer import copies
from evidence.http.reviewer.exhibits import listing, part_of
from evidence.models import Derivative, DerivativeKind
from evidence.vault.local import LocalVault
from evidence.workingcopies import Page, Preview, pages_index, previews_index

ITEM = "a" * 32


@pytest.fixture
def vault(tmp_path: Path) -> LocalVault:
    return LocalVault(tmp_path / "vault")


def stored(vault: LocalVault, kind: str, data: bytes, sha256: str | None = None) -> Derivative:
    digest = hashlib.sha256(data).hexdigest()
    key = f"derivatives/{ITEM}/{kind}-{digest[:16]}.bin"
    vault.put(key, io.BytesIO(data))
    return Derivative(item_id=ITEM, kind=kind, key=key, sha256=sha256 or digest, size=len(data),
                      content_type="application/json")


def manifest(paths: list[str]) -> bytes:
    entries = [{"path": p, "is_dir": p.endswith("/"), "size": 0 if p.endswith("/") else 5, "sha256": "e" * 64,
                "modified": "2024-03-01T02:14:00", "problem": "bad CRC" if p.endswith(".bad") else None,
                "archive": False} for p in paths]
    return json.dumps({"format": "zip-manifest/1", "entries": entries}).encode()


def test_an_index_is_read_once_and_its_parts_found_by_number(vault: LocalVault) -> None:
    page = Page("b" * 64, 10, "image/png", 1, 100, 140)
    index = stored(vault, DerivativeKind.PAGES, pages_index(7, [page, Page("c" * 64, 10, "image/png", 2, 100, 140)]))
    found = copies.pages_of(vault, index)
    assert found.page_count == 7 and len(found.pages) == 2
    assert part_of(vault, index, 1) == page and part_of(vault, index, 3) is None and part_of(vault, index, 0) is None
    (vault.root / index.key).unlink()  # kept by hash: the second read needs no vault at all
    assert copies.pages_of(vault, index) == found


def test_a_copy_that_does_not_match_its_hash_or_format_is_not_shown(vault: LocalVault) -> None:
    forged = stored(vault, DerivativeKind.PAGES, pages_index(1, []), sha256="f" * 64)
    with pytest.raises(copies.Unreadable, match="SHA-256"):
        copies.pages_of(vault, forged)
    assert part_of(vault, forged, 1) is None
    wrong = stored(vault, DerivativeKind.PREVIEWS, pages_index(1, []))  # a pages index where previews belong
    with pytest.raises(copies.Unreadable):
        copies.previews_of(vault, wrong)
    garbage = stored(vault, DerivativeKind.MANIFEST, b'{"entries": [{"path": 1}]}')
    with pytest.raises(copies.Unreadable, match="not a manifest"):
        copies.manifest_of(vault, garbage)


def test_a_manifest_too_large_for_a_page_is_not_read(vault: LocalVault) -> None:
    huge = stored(vault, DerivativeKind.MANIFEST, manifest(["a"]))
    huge.size = copies.MAX_MANIFEST_BYTES + 1
    with pytest.raises(copies.Unreadable, match="more than a page reads"):
        copies.manifest_of(vault, huge)


def test_contents_are_paged_with_their_previews_and_reasons(vault: LocalVault) -> None:
    paths = ["DCIM/", *[f"DCIM/{n:04d}.jpg" for n in range(1, 150)], "broken.bad"]
    found = stored(vault, DerivativeKind.MANIFEST, manifest(paths))
    previews = stored(vault, DerivativeKind.PREVIEWS, previews_index(
        [Preview("d" * 64, 9, "image/jpeg", 1, paths[1], "image"), Preview("d" * 64, 9, "video/mp4", 120, paths[120],
                                                                             "video")],
        [(paths[2], "larger than the preview limit")]))
    first = listing(vault, found, previews, None)
    assert first is not None and (first.number, first.pages, first.first) == (1, 2, 1) and len(first.listed) == 100
    assert first.listed[1].preview == "image" and first.listed[2].skipped == "larger than the preview limit"
    assert first.listed[0].entry.is_dir and first.listed[3].preview is None and first.listed[3].skipped is None
    second = listing(vault, found, previews, "2")
    assert second is not None and second.first == 101 and len(second.listed) == 51
    assert second.listed[20].entry.index == 120 and second.listed[20].preview == "video"
    assert second.listed[-1].entry.problem == "bad CRC"
    for raw in ("0", "3", "", "x", "1.0", "-1", "٣", "²", "1" * 10):
        assert listing(vault, found, previews, raw) is None, raw
    assert listing(vault, found, None, "1") is not None  # no previews made: the list still shows


def test_an_office_package_is_told_by_its_parts(vault: LocalVault) -> None:
    docx = stored(vault, DerivativeKind.MANIFEST, manifest(["[Content_Types].xml", "_rels/.rels", "word/document.xml"]))
    odt = stored(vault, DerivativeKind.MANIFEST, manifest(["mimetype", "content.xml"]))
    phone = stored(vault, DerivativeKind.MANIFEST, manifest(["DCIM/", "DCIM/IMG_1.jpg", "notes/mimetype"]))
    assert copies.manifest_of(vault, docx).office and copies.manifest_of(vault, odt).office
    assert not copies.manifest_of(vault, phone).office


def test_the_text_shown_stops_at_a_whole_character(vault: LocalVault) -> None:
    body = ("é" * copies.TEXT_INLINE).encode()  # two bytes each: the limit falls between characters' bytes
    text, more = copies.text_head(vault, stored(vault, DerivativeKind.TEXT, body + b"x"))
    assert more and text == "é" * (copies.TEXT_INLINE // 2) and "\ufffd" not in text
    short, more = copies.text_head(vault, stored(vault, DerivativeKind.TEXT, b"a <b>ok</b>\n"))
    assert short == "a <b>ok</b>\n" and not more


def test_exif_is_bounded_text() -> None:
    many = {f"Tag{n}": "v" * 1000 for n in range(500)}
    shown = copies.exif_of({"exif": many})
    assert len(shown) == copies.MAX_EXIF and all(len(v) == copies.MAX_EXIF_CHARS for _, v in shown)
    assert copies.exif_of({"exif": ["not", "a", "dict"]}) == [] and copies.exif_of(None) == []
    assert copies.exif_of({"exif": {"Make": 5}}) == [("Make", "5")]
