"""Which demuxers may open evidence, and what to say about a file no demuxer may open.

Some formats are recipes rather than media: a playlist, a concat list, a session description or an
image-sequence pattern makes the demuxer open *other* files, which could be another case's
originals. So no input is ever opened by letting ffmpeg guess: the demuxer is chosen by probing
the bytes (:mod:`transcode.sniff`), must be on :data:`ALLOWED`, and is then named explicitly
(``-f NAME`` / ``av.open(format=NAME)``). None of the allowed demuxers reads another file (the
``mov`` demuxer's external data references stay off, ffmpeg's default).

Pure: no I/O, no libav.
"""

from __future__ import annotations

from dataclasses import dataclass

# Demuxer (as ``-f`` accepts it) -> what it reads.
VIDEO_DEMUXERS: dict[str, str] = {
    "mov": "MP4/MOV/3GP",
    "matroska": "Matroska/WebM",
    "avi": "AVI",
    "mpeg": "MPEG program stream",
    "mpegts": "MPEG transport stream",
    "flv": "FLV",
    "asf": "ASF/WMV/WMA",
    "rm": "RealMedia",
    "ogg": "Ogg",
    "h264": "raw H.264",
    "hevc": "raw H.265/HEVC",
    "mpegvideo": "raw MPEG-1/2 video",
    "m4v": "raw MPEG-4 video",
    "dhav": "Dahua DAV",
    "mjpeg": "raw Motion JPEG",
}
# Single-image demuxers only: ``image2`` expands filename patterns, so it is never used.
IMAGE_DEMUXERS: dict[str, str] = {
    "png_pipe": "PNG image",
    "jpeg_pipe": "JPEG image",
    "gif": "GIF image",
    "bmp_pipe": "BMP image",
    "tiff_pipe": "TIFF image",
    "webp_pipe": "WebP image",
}
AUDIO_DEMUXERS: dict[str, str] = {
    "mp3": "MP3 audio",
    "wav": "WAV audio",
    "aac": "AAC (ADTS) audio",
    "flac": "FLAC audio",
    "amr": "AMR audio",
    "aiff": "AIFF audio",
}
ALLOWED: dict[str, str] = {**VIDEO_DEMUXERS, **IMAGE_DEMUXERS, **AUDIO_DEMUXERS}

# Demuxers that open other files or locations named inside the file (or in its name), in the
# words a warning uses. Never used, whatever the file is called.
REFERRING: dict[str, str] = {
    "hls": "an HLS playlist",
    "dash": "a DASH manifest",
    "webm_dash_manifest": "a WebM DASH manifest",
    "concat": "an ffconcat list",
    "sdp": "an SDP session description",
    "rtp": "an RTP stream description",
    "rtsp": "an RTSP stream reference",
    "image2": "an image-sequence pattern",
    "svg_pipe": "an SVG image (SVG can load other files)",
    "imf": "an IMF composition playlist",
    "avisynth": "an AviSynth script",
    "vapoursynth": "a VapourSynth script",
}

# Protocols an input may use: the local vault's files, or the S3 endpoint over HTTP(S).
FILE_PROTOCOLS = "file"
HTTP_PROTOCOLS = "http,tcp"
HTTPS_PROTOCOLS = "https,tls,tcp"
SAFE_PROTOCOLS = frozenset({"file", "http", "https", "tls", "tcp"})

KEPT = "it is kept exactly as received"


def short_name(name: str) -> str:
    """The name ``-f`` takes for a demuxer libavformat reports as a list ("mov,mp4,m4a,3gp,3g2,mj2")."""
    return name.split(",", 1)[0].strip()


def is_image(demuxer: str) -> bool:
    return demuxer in IMAGE_DEMUXERS


@dataclass(frozen=True)
class Choice:
    """How to open a file: ``demuxer`` (allowed), or why not (``refusal``, a warning for the item).

    Neither set: no demuxer recognised the bytes (not media, or damaged beyond recognition).
    """

    demuxer: str | None = None
    refusal: str | None = None

    @property
    def unrecognised(self) -> bool:
        return self.demuxer is None and self.refusal is None


def no_working_copy(what: str, *, refers: bool) -> str:
    """The warning on an item kept without working copies because of its format."""
    why = "a format that refers to other files" if refers else "a format not accepted for evidence processing"
    return f"no working copy: the file is {what}, {why}; {KEPT}"


def choose(sniffed: str | None, long_name: str | None = None, *, raw: str | None = None) -> Choice:
    """The demuxer for a file whose bytes libavformat's prober named ``sniffed`` (None: nothing
    matched). ``raw`` is the raw-stream demuxer the file's extension asks for (see
    ``probe.RAW_FORMATS``): elementary streams have too little structure for the prober to be
    sure of them, so the officer's naming decides, unless the bytes are a recipe.
    """
    short = short_name(sniffed) if sniffed else None
    if short in REFERRING:
        return Choice(refusal=no_working_copy(REFERRING[short], refers=True))
    if raw is not None:
        if raw not in ALLOWED:
            raise ValueError(f"raw format {raw!r} is not an allowed demuxer")
        return Choice(demuxer=raw)
    if short is None:
        return Choice()
    if short in ALLOWED:
        return Choice(demuxer=short)
    what = f"{_article(long_name or short)} ({short})"
    return Choice(refusal=no_working_copy(what, refers=False))


def _article(text: str) -> str:
    return f"{'an' if text[:1].lower() in 'aeiou' else 'a'} {text}"


def protocols_for(location: str) -> tuple[str, str]:
    """(what ffmpeg opens, ``-protocol_whitelist``) for a vault location: a local path, or a
    presigned http(s) URL. A path is given as ``file:PATH`` so that nothing in it can be read
    as a protocol prefix (``concat:``, ``subfile:`` and the like)."""
    scheme, sep, _ = location.partition("://")
    if not sep:
        if not location.startswith("/"):
            raise ValueError("a local input must be an absolute path")
        return f"file:{location}", FILE_PROTOCOLS
    if scheme == "https":
        return location, HTTPS_PROTOCOLS
    if scheme == "http":
        return location, HTTP_PROTOCOLS
    raise ValueError(f"inputs are read from the vault only (a path, or an http(s) URL), not {scheme}:")


def check_input(demuxer: str, protocols: str) -> None:
    """Refuse to build any open that names a demuxer or protocol outside the allow-lists."""
    if demuxer not in ALLOWED:
        raise ValueError(f"demuxer {demuxer!r} is not allowed for evidence")
    names = set(protocols.split(","))
    if not names or not names <= SAFE_PROTOCOLS:
        raise ValueError(f"protocols {protocols!r} are not allowed (only {', '.join(sorted(SAFE_PROTOCOLS))})")
