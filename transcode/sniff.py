"""Name a file's format from its first bytes with libavformat's own prober, and nothing else.

``av_probe_input_format3`` scores every demuxer's ``read_probe`` against a buffer in memory: no
file is opened, no protocol is touched, and the filename is left NULL so that the name an
officer's machine gave the file cannot steer the choice (several demuxers score on the
extension alone). It is called through ``ctypes`` on the libavformat that PyAV loads, so the
prober is the very build that later opens the file. PyAV does not wrap this function.

``AVProbeData`` and the first two fields of ``AVInputFormat`` (``name``, ``long_name``) have been
stable across libavformat majors; the buffer needs ``AVPROBE_PADDING_SIZE`` zero bytes after it.
"""

from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass
from pathlib import Path

PADDING = 64  # AVPROBE_PADDING_SIZE
SCORE_RETRY = 25  # AVPROBE_SCORE_RETRY: below this, libavformat itself would read more before deciding
PROBE_BYTES = 1 << 20  # libavformat's own ceiling for probing (PROBE_BUF_MAX)


class _ProbeData(ctypes.Structure):
    _fields_ = [
        ("filename", ctypes.c_char_p),
        ("buf", ctypes.POINTER(ctypes.c_ubyte)),
        ("buf_size", ctypes.c_int),
        ("mime_type", ctypes.c_char_p),
    ]


class _InputFormatHead(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("long_name", ctypes.c_char_p)]


@dataclass(frozen=True)
class Sniffed:
    name: str  # as libavformat reports it, possibly a list ("mov,mp4,m4a,3gp,3g2,mj2")
    long_name: str
    score: int  # 1-100 (AVPROBE_SCORE_MAX)


def _libavformat_path() -> str:
    import av  # loads PyAV's libavformat into this process first

    bundled = sorted((Path(av.__file__).resolve().parent.parent / "av.libs").glob("libavformat*.so*"))
    if bundled:
        return str(bundled[0])
    # A PyAV built against the system's libraries: use whichever libavformat it loaded.
    with open(f"/proc/{os.getpid()}/maps", encoding="utf-8", errors="replace") as maps:
        for line in maps:
            path = line.split()[-1]
            if "/libavformat" in path and ".so" in path:
                return path
    raise OSError("cannot find the libavformat that PyAV uses")


@functools.cache
def _library() -> ctypes.CDLL:
    library = ctypes.CDLL(_libavformat_path())
    library.av_probe_input_format3.restype = ctypes.POINTER(_InputFormatHead)
    library.av_probe_input_format3.argtypes = [ctypes.POINTER(_ProbeData), ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    library.av_find_input_format.restype = ctypes.POINTER(_InputFormatHead)
    library.av_find_input_format.argtypes = [ctypes.c_char_p]
    return library


@functools.cache
def full_name(demuxer: str) -> str:
    """The name libavformat gives the demuxer ``-f demuxer`` selects, as ffprobe prints it
    ("mov" -> "mov,mp4,m4a,3gp,3g2,mj2"); PyAV reports back the short name it was given."""
    found = _library().av_find_input_format(demuxer.encode("ascii"))
    if not found or not found.contents.name:
        return demuxer
    return str(found.contents.name.decode("ascii", "replace"))


def sniff(head: bytes) -> Sniffed | None:
    """The demuxer libavformat would pick for a file starting with ``head`` (at most
    :data:`PROBE_BYTES` are looked at), or None when no demuxer recognises it."""
    head = head[:PROBE_BYTES]
    buffer = (ctypes.c_ubyte * (len(head) + PADDING)).from_buffer_copy(head + bytes(PADDING))
    data = _ProbeData(None, buffer, len(head), None)
    score = ctypes.c_int(0)
    found = _library().av_probe_input_format3(ctypes.byref(data), 1, ctypes.byref(score))
    if not found or score.value <= 0:
        return None
    name = found.contents.name or b""
    long_name = found.contents.long_name or name
    return Sniffed(name.decode("ascii", "replace"), long_name.decode("utf-8", "replace"), score.value)


def id3_length(head: bytes) -> int:
    """Bytes taken by an ID3v2 tag at the start of ``head`` (0 if none).

    libavformat skips such a tag before probing, but only when the whole tag fits in the buffer;
    a tag with large cover art would leave an MP3 unrecognised, so the caller probes what
    follows it instead.
    """
    if len(head) < 10 or head[:3] != b"ID3" or head[3] == 0xFF or head[4] == 0xFF:
        return 0
    size = head[6:10]
    if any(byte & 0x80 for byte in size):
        return 0  # not a syncsafe integer: not an ID3v2 header
    length = (size[0] << 21) | (size[1] << 14) | (size[2] << 7) | size[3]
    footer = 10 if head[5] & 0x10 else 0
    return 10 + length + footer
