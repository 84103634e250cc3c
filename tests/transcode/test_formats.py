"""Choosing a demuxer (pure): the allow-list, refusals in plain words, the vault's protocols;
and recognising recipes in text (pure)."""

from __future__ import annotations

import pytest

from transcode import formats, recipes
from transcode.formats import Choice, choose, protocols_for, short_name


@pytest.mark.parametrize(
    "sniffed, demuxer",
    [
        ("mov,mp4,m4a,3gp,3g2,mj2", "mov"),
        ("matroska,webm", "matroska"),
        ("avi", "avi"),
        ("mpegts", "mpegts"),
        ("png_pipe", "png_pipe"),
        ("jpeg_pipe", "jpeg_pipe"),
        ("mp3", "mp3"),
        ("dhav", "dhav"),
    ],
)
def test_an_allowed_demuxer_is_named_by_the_name_f_takes(sniffed: str, demuxer: str) -> None:
    assert choose(sniffed, "whatever") == Choice(demuxer=demuxer)
    assert short_name(sniffed) == demuxer


@pytest.mark.parametrize(
    "sniffed, words",
    [
        ("hls", "an HLS playlist"),
        ("dash", "a DASH manifest"),
        ("concat", "an ffconcat list"),
        ("sdp", "an SDP session description"),
        ("image2", "an image-sequence pattern"),
        ("svg_pipe", "an SVG image"),
    ],
)
def test_a_recipe_is_refused_whatever_else_asks_for_it(sniffed: str, words: str) -> None:
    choice = choose(sniffed, "long", raw="h264")  # not even a raw-stream extension lets it through
    assert choice.demuxer is None and choice.refusal is not None
    assert choice.refusal.startswith(f"no working copy: the file is {words}")
    assert choice.refusal.endswith(", a format that refers to other files; it is kept exactly as received")


def test_a_format_off_the_list_is_refused_plainly() -> None:
    choice = choose("tty", "Tele-typewriter")
    assert choice.demuxer is None
    assert choice.refusal == (
        "no working copy: the file is a Tele-typewriter (tty), a format not accepted for evidence processing;"
        " it is kept exactly as received"
    )
    assert choose("ass", "SSA (SubStation Alpha) subtitle").refusal is not None


def test_raw_streams_by_extension_and_nothing_recognised() -> None:
    assert choose(None, raw="h264") == Choice(demuxer="h264")
    assert choose("mp3", "MP2/3", raw="hevc") == Choice(demuxer="hevc")  # the extension decides for raw streams
    assert choose(None).unrecognised
    assert not choose("avi").unrecognised and not choose("hls").unrecognised
    with pytest.raises(ValueError):
        choose(None, raw="concat")


def test_the_lists_hold_what_the_evidence_needs() -> None:
    needed = {"mov", "matroska", "avi", "mpeg", "mpegts", "flv", "asf", "rm", "ogg", "h264", "hevc", "mpegvideo",
              "dhav", "mjpeg", "png_pipe", "jpeg_pipe", "mp3", "wav", "aac", "flac", "amr"}
    assert needed <= set(formats.ALLOWED)
    assert {"hls", "dash", "concat", "sdp", "rtp", "rtsp", "image2", "svg_pipe"} <= set(formats.REFERRING)
    assert all(formats.is_image(name) for name in formats.IMAGE_DEMUXERS)
    assert not formats.is_image("mov")


@pytest.mark.parametrize(
    "location, expected",
    [
        ("/srv/vault/originals/ab", ("file:/srv/vault/originals/ab", "file")),
        ("https://s3.force.police.uk/b/originals/ab?X-Amz-Signature=s", ("https://s3.force.police.uk/b/originals/ab?X-Amz-Signature=s", "https,tls,tcp")),
        ("http://127.0.0.1:7480/b/originals/ab?X-Amz-Signature=s", ("http://127.0.0.1:7480/b/originals/ab?X-Amz-Signature=s", "http,tcp")),
    ],
)
def test_protocols_for_each_vault(location: str, expected: tuple[str, str]) -> None:
    assert protocols_for(location) == expected
    formats.check_input("mov", expected[1])


@pytest.mark.parametrize("protocols", ["file,concat", "https,tls,tcp,crypto", "subfile", "data", "pipe", "file,http,tcp,udp", ""])
def test_only_the_vaults_protocols(protocols: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        formats.check_input("mov", protocols)


# -- recipes in text ----------------------------------------------------------------------------


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
