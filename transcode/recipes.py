"""Recognise text files that are recipes naming other files: playlists, manifests, lists.

libavformat's prober deliberately ignores several of these without a telling filename (HLS and
DASH probe on the extension), so a playlist named ``clip.mp4`` would otherwise look like a
broken video. Recognising them lets the item say plainly why no working copy was made. None of
them is ever opened by a demuxer either way (see :mod:`transcode.formats`).

Pure: looks at the first bytes only.
"""

from __future__ import annotations

import re

LOOK = 8192  # bytes of the head examined

# (pattern on the lower-cased head with leading blank space and a BOM removed, description)
_STARTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"#extm3u"), "an HLS or M3U playlist"),
    (re.compile(r"ffconcat\s+version"), "an ffconcat list"),
    # ffmpeg's concat list: optional comments, then "file PATH" (quoted or one word).
    (re.compile(r"(#[^\n]*\n\s*)*file[ \t]+('[^'\n]*'|\"[^\"\n]*\"|[^\s'\"]+)[ \t]*(\n|$)"), "a concat list"),
    (re.compile(r"v=0\s*\n(.*\n)*?\s*[osctm]="), "an SDP session description"),
    (re.compile(r"\[playlist\]"), "a PLS playlist"),
    (re.compile(r"rtsptext|rtsp://|rtmp://|rtp://|udp://|srt://"), "a stream reference"),
]
_MARKUP: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"<mpd[\s>]"), "a DASH manifest"),
    (re.compile(r"<svg[\s>]"), "an SVG image (SVG can load other files)"),
    (re.compile(r"<smil[\s>]"), "a SMIL presentation"),
    (re.compile(r"<asx[\s>]"), "an ASX playlist"),
    (re.compile(r"<playlist[\s>]"), "an XSPF playlist"),
    (re.compile(r"<compositionplaylist[\s>]"), "an IMF composition playlist"),
]
# Anything in a text file that points elsewhere: a URL or protocol prefix ffmpeg understands,
# an absolute path, or a vault key.
_REFERENCE = re.compile(
    r"(\b[a-z][a-z0-9+.-]{1,20}://)|(\b(concat|subfile|data|pipe|crypto|cache|async|tee|fd):)|\bsubfile,"
    r"|(^|[\s'\"=(])/[^\s/]+/|\boriginals/[0-9a-f]{32}\b",
    re.MULTILINE,
)


def _text(head: bytes) -> str | None:
    """The head as lower-case text, or None when it is binary."""
    sample = head[:LOOK]
    for bom in (b"\xef\xbb\xbf",):
        if sample.startswith(bom):
            sample = sample[len(bom) :]
    if not sample or b"\x00" in sample:
        return None
    text = sample.decode("utf-8", "replace")
    unprintable = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\r\n\f"))
    if unprintable > len(text) // 20:
        return None
    return text.replace("\r\n", "\n").lower()


def recipe(head: bytes) -> str | None:
    """What kind of recipe the file is ("an HLS or M3U playlist", ...), or None."""
    text = _text(head)
    if text is None:
        return None
    stripped = text.lstrip()
    for pattern, what in _STARTS:
        if pattern.match(stripped):
            return what
    if stripped.startswith("<"):
        for pattern, what in _MARKUP:
            if pattern.search(stripped):
                return what
    return None


def names_other_files(head: bytes) -> bool:
    """True for a text file that names URLs, absolute paths or vault keys: a list of some kind."""
    text = _text(head)
    return text is not None and _REFERENCE.search(text) is not None
