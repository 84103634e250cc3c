"""Recognising recipes in text (pure): playlists, lists and manifests that name other files,
whatever they are called; and text that is only text."""

from __future__ import annotations

import pytest

from transcode import recipes


@pytest.mark.parametrize(
    "text, what",
    [
        ("#EXTM3U\n#EXTINF:2,\nseg.ts\n", "an HLS or M3U playlist"),
        ("\ufeff#EXTM3U\r\nhttp://x/seg.ts\r\n", "an HLS or M3U playlist"),
        ("  ffconcat version 1.0\nfile a.mp4\n", "an ffconcat list"),
        ("# list\nfile '/data/vault/originals/0123'\n", "a concat list"),
        ('file "a b.mp4"\nfile c.mp4\n', "a concat list"),
        ("v=0\no=- 0 0 IN IP4 1.2.3.4\ns=x\nm=video 5004 RTP/AVP 96\n", "an SDP session description"),
        ('<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">', "a DASH manifest"),
        ('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "an SVG image (SVG can load other files)"),
        ("<!DOCTYPE html><html><body><svg width='1'><script>x()</script></svg>", "an SVG image (SVG can load other files)"),
        ("[playlist]\nFile1=http://x/a.mp3\n", "a PLS playlist"),
        ("rtsp://10.0.0.5:554/stream1\n", "a stream reference"),
        ("<smil><body><video src='a.mp4'/></body></smil>", "a SMIL presentation"),
    ],
)
def test_recipes_are_recognised(text: str, what: str) -> None:
    assert recipes.recipe(text.encode()) == what


@pytest.mark.parametrize(
    "data",
    [
        b"File 12 of 20: interview with the witness, recorded at the station.\n",
        b"Officer's notes, not a video.\n" * 50,
        b"<html><body><p>exported report</p></body></html>",
        b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2",
        bytes(range(256)) * 4,
        b"",
    ],
)
def test_other_files_are_not_recipes(data: bytes) -> None:
    assert recipes.recipe(data) is None


def test_text_that_names_other_files() -> None:
    assert recipes.names_other_files(b"/srv/evidence/vault/originals/0123\n")
    assert recipes.names_other_files(b"see https://intranet/cases/1 for details\n")
    assert recipes.names_other_files(b"originals/0123456789abcdef0123456789abcdef\n")
    assert recipes.names_other_files(b"subfile,,start,0,end,0,,:x\n")
    assert not recipes.names_other_files(b"Statement of the witness, 3 pages, signed.\n")
    assert not recipes.names_other_files(b"The data, as seized, and the pipe, as found.\n")
    assert not recipes.names_other_files(bytes(range(256)))  # binary: not a list of anything
