"""Choosing a demuxer (pure): the allow-list, refusals in plain words, the vault's protocols."""

from __future__ import annotations

import pytest

from transcode import formats
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
