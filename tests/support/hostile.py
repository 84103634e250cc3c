"""Hostile evidence, generated: recipes that name another case's original, bombs, polyglots.

Everything is made in the test from scratch (real media with the pinned ffmpeg where media is
needed) and is tiny: a bomb is a few hundred bytes that *declares* a huge picture.

A victim is named the ways an officer could learn of it (upload ids and keys appear in items,
reports and the record): by its bare upload id (relative to the list's own folder in the
vault, the path the concat demuxer accepts as safe), by vault key, by absolute path, and by
URL (``file://``, the server's own HTTP API, and the ``concat:``/``subfile:`` protocols).
"""

from __future__ import annotations

import io
import struct
import subprocess
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from transcode.ffmpeg import resolve_ffmpeg


@dataclass(frozen=True)
class Victim:
    """Another case's original, as a hostile officer could name it."""

    upload_id: str  # the 32 hex digits of its vault key originals/<upload_id>
    path: Path  # where the local vault keeps it
    api_url: str  # a URL on the server itself that serves its working copy

    def references(self) -> dict[str, str]:
        """How a recipe can point at it: {how: reference}."""
        absolute = str(self.path)
        return {
            "id": self.upload_id,
            "key": f"originals/{self.upload_id}",
            "parent": f"../originals/{self.upload_id}",
            "path": absolute,
            "file-url": f"file://{absolute}",
            "http-url": self.api_url,
            "concat-protocol": f"concat:{absolute}|{absolute}",
            "subfile-protocol": f"subfile,,start,0,end,0,,:{absolute}",
        }


def ffconcat(reference: str) -> bytes:
    return f"ffconcat version 1.0\nfile '{reference}'\nduration 2\n".encode()


def concat_list(reference: str) -> bytes:
    return f"# exported by the DVR\nfile '{reference}'\n".encode()


def hls(reference: str) -> bytes:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:2.0,\n{reference}\n#EXT-X-ENDLIST\n"
    ).encode()


def dash(reference: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT2S"'
        ' profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">\n'
        ' <Period><AdaptationSet mimeType="video/mp4"><Representation id="1" bandwidth="100000">\n'
        f"  <BaseURL>{reference}</BaseURL>\n"
        " </Representation></AdaptationSet></Period>\n</MPD>\n"
    ).encode()


def sdp(port: int) -> bytes:
    """An SDP session: it makes the demuxer listen for (or fetch) a stream, not read the file."""
    return (
        "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=camera\nc=IN IP4 127.0.0.1\nt=0 0\n"
        f"m=video {port} RTP/AVP 96\na=rtpmap:96 H264/90000\n"
    ).encode()


def image2_list(victim: Victim) -> bytes:
    """A list naming every original at once through an image-sequence pattern (image2's glob)."""
    pattern = f"{victim.path.parent}/*"
    return f"ffconcat version 1.0\nfile '{pattern}'\noption pattern_type glob\n".encode()


def recipes(victim: Victim) -> dict[str, bytes]:
    """Recipes naming the victim, as {file name: content}: each kind of list by id, by
    absolute path and by URL, the protocol tricks, and lists named like media (a playlist
    named like a video is still a playlist)."""
    refs = victim.references()
    files: dict[str, bytes] = {}
    makers = {"ffconcat": ffconcat, "concat.txt": concat_list, "m3u8": hls, "mpd": dash}
    for how in ("id", "path", "http-url"):
        for suffix, make in makers.items():
            files[f"{how}.{suffix}"] = make(refs[how])
    files["key.ffconcat"] = ffconcat(refs["key"])
    files["parent.concat.txt"] = concat_list(refs["parent"])
    files["file-url.m3u8"] = hls(refs["file-url"])
    files["concat-protocol.m3u8"] = hls(refs["concat-protocol"])
    files["subfile-protocol.ffconcat"] = ffconcat(refs["subfile-protocol"])
    files["path-playlist.mp4"] = b"#EXTM3U\n# named like a video\n" + hls(refs["path"])[len(b"#EXTM3U\n") :]
    files["id-list.h264"] = ffconcat(refs["id"]) + b"# named like a raw stream\n"
    files["key-list.mov"] = concat_list(refs["key"])
    files["stream.sdp"] = sdp(5004)
    files["stream-named.ts"] = sdp(5006)
    files["pattern.ffconcat"] = image2_list(victim)
    # A bare list of locations named like footage: no format header at all.
    files["bare-list.avi"] = f"{refs['path']}\n{refs['http-url']}\n".encode()
    return files


# -- pictures that declare more than they hold ------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int, height: int, *, color: int = 2, depth: int = 8) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` with a few rows of data: a few
    hundred bytes that a decoder must allocate the whole picture for."""
    channels = {0: 1, 2: 3, 6: 4}[color]
    row = b"\x00" * (1 + width * channels * depth // 8)
    header = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(row * 2, 9))
        + _png_chunk(b"IEND", b"")
    )


def _ffmpeg(*args: str) -> bytes:
    done = subprocess.run(
        [resolve_ffmpeg().exe, "-hide_banner", "-nostdin", "-loglevel", "error", *args, "-"],
        capture_output=True, timeout=60, check=True,
    )
    return done.stdout


def declare_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """Every JPEG frame header (SOF0) in ``data`` rewritten to declare ``width`` x ``height``."""
    out = bytearray(data)
    marker = b"\xff\xc0\x00\x11\x08"  # SOF0, 17 bytes long, 8-bit samples, 3 components follow
    at = out.find(marker)
    found = 0
    while at != -1:
        struct.pack_into(">HH", out, at + 5, height, width)
        found += 1
        at = out.find(marker, at + len(marker))
    assert found, "no SOF0 marker"
    return bytes(out)


def jpeg_bomb(width: int, height: int) -> bytes:
    """A 64x64 JPEG whose frame header says ``width`` x ``height``."""
    small = _ffmpeg("-f", "lavfi", "-i", "color=c=gray:size=64x64", "-frames:v", "1", "-f", "mjpeg")
    return declare_jpeg_size(small, width, height)


def lying_mjpeg_avi(width: int, height: int) -> bytes:
    """An AVI whose headers say 1024x1024 while its two Motion-JPEG frames say ``width`` x
    ``height``: the container passes any size check, and only the decoder meets the lie.

    The frames are noise at high quality, so each packet is large enough for ffmpeg's own
    plausibility check (it refuses a frame declaring far more blocks than its bytes could hold).
    """
    avi = _ffmpeg(
        "-f", "lavfi", "-i", "nullsrc=size=1024x1024:rate=5:duration=0.4,geq=lum='random(1)*255':cb=128:cr=128",
        "-c:v", "mjpeg", "-q:v", "2", "-f", "avi",
    )
    return declare_jpeg_size(avi, width, height)


# -- damaged media and polyglots -------------------------------------------------------------


def small_clip(container: str = "avi", seconds: int = 1, size: str = "160x120") -> bytes:
    """A real clip (MPEG-4 video, MP3 audio) made with the pinned ffmpeg."""
    return _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-c:v", "mpeg4", "-q:v", "5", "-c:a", "libmp3lame", "-b:a", "32k", "-f", container,
    )


def small_mp4(seconds: int = 1) -> bytes:
    """H.264/AAC with the index first (a pipe cannot seek back to write it last)."""
    return _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=25:duration={seconds}",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-threads", "1",
        "-movflags", "frag_keyframe+empty_moov", "-f", "mp4",
    )


def corrupt(data: bytes, *, seed: int = 7) -> bytes:
    """Every 97th byte after the first 4 KiB flipped: the headers survive, the data does not."""
    out = bytearray(data)
    for at in range(4096 + seed, len(out), 97):
        out[at] ^= 0xFF
    return bytes(out)


def svg(reference: str) -> bytes:
    return (
        '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
        ' width="640" height="480">\n'
        f'  <image xlink:href="{reference}" width="640" height="480"/>\n</svg>\n'
    ).encode()


def svg_html_polyglot(reference: str) -> bytes:
    """An HTML page that is also an SVG image, with a script: opened in a browser, it runs."""
    return (
        "<!DOCTYPE html><html><body>\n"
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        f'<image href="{reference}"/><script>fetch("/api/v1/cases").then(r => r.text())</script></svg>\n'
        "</body></html>\n"
    ).encode()


def zip_of(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo(name, (2024, 3, 1, 12, 0, 0)), data)
    return buffer.getvalue()


def zip_then_mp4(mp4: bytes) -> bytes:
    """A ZIP archive with an MP4 after it: starts like a ZIP, ends like an MP4."""
    return zip_of("notes.txt", b"seized from the handset\n") + mp4


def mp4_then_zip(mp4: bytes) -> bytes:
    """An MP4 with a ZIP archive after it: starts like an MP4, and its end of central directory
    is at the end of the file, where ZIP readers look."""
    return mp4 + zip_of("notes.txt", b"seized from the handset\n")
