"""The indexes of many-object working copies: written by the workers, read back strictly."""

from __future__ import annotations

import json

import pytest

from evidence.workingcopies import (
    PAGES_FORMAT,
    BadIndex,
    Page,
    Preview,
    pages_index,
    previews_index,
    read_pages,
    read_previews,
)

SHA = "ab" * 32


def test_pages_round_trip_and_key() -> None:
    page = Page(SHA, 1234, "image/png", number=1, width=1240, height=1754)
    pages = read_pages(pages_index(3, [page]))
    assert pages.page_count == 3 and pages.pages == (page,)
    assert page.key("item1", "pages") == f"derivatives/item1/pages/{SHA}.png"


def test_previews_round_trip() -> None:
    preview = Preview(SHA, 99, "video/mp4", index=4, path="DCIM/clip.mov", kind="video")
    previews = read_previews(previews_index([preview], [("a.avi", "too long")]))
    assert previews.previews == (preview,) and previews.skipped == (("a.avi", "too long"),)


@pytest.mark.parametrize("change", [
    {"format": "other/1"},
    {"pages": [{"sha256": "../../etc/passwd", "size": 1, "content_type": "image/png", "number": 1, "width": 1, "height": 1}]},
    {"pages": [{"sha256": SHA, "size": 1, "content_type": "text/html", "number": 1, "width": 1, "height": 1}]},
    {"pages": [{"sha256": SHA, "size": -1, "content_type": "image/png", "number": 1, "width": 1, "height": 1}]},
    {"page_count": True},
])
def test_an_index_we_did_not_write_is_refused(change: dict[str, object]) -> None:
    raw = {"format": PAGES_FORMAT, "page_count": 1, "pages": [], **change}
    with pytest.raises(BadIndex):
        read_pages(json.dumps(raw).encode())


def test_not_json_is_refused() -> None:
    with pytest.raises(BadIndex):
        read_pages(b"\xff{")
