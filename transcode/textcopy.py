"""Text files: recognising one from its first bytes, and its working copy as UTF-8.

A reviewer is shown the head of a text file (statements, notes, logs, exported chats), escaped
by the page that shows it. The copy is the original's first bytes decoded to UTF-8: a byte-order
mark says UTF-8, UTF-16 LE or UTF-16 BE; without one it is read as UTF-8, and bytes that are
not (a legacy code page) become U+FFFD. A file whose first bytes hold NULs or many control
characters (Office's OLE documents, databases, anything binary) is not text and gets no copy.

Pure: no I/O.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Final

LOOK: Final = 8192  # bytes of the head examined to decide whether a file is text
MOSTLY: Final = 20  # at most one character in this many may be a control character or undecodable
BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\x1b")


@dataclass(frozen=True)
class Encoding:
    codec: str  # a Python codec name: utf-8, utf-16-le, utf-16-be
    bom: int  # bytes of byte-order mark before the text (0: none)


@dataclass(frozen=True)
class Copy:
    text: bytes  # UTF-8, no byte-order mark
    encoding: Encoding
    bytes_used: int  # bytes of the original the copy is made from, the mark included
    size: int  # of the whole original
    replaced: int  # U+FFFD characters in the copy (bytes that were not valid in the encoding)

    @property
    def cut(self) -> bool:
        return self.bytes_used < self.size


def encoding_of(head: bytes) -> Encoding | None:
    """How the file that starts with ``head`` is encoded, or None when it is not text."""
    found = Encoding("utf-8", 0)
    for mark, codec in BOMS:
        if head.startswith(mark):
            found = Encoding(codec, len(mark))
            break
    sample = head[found.bom : found.bom + LOOK]
    if not sample or (found.codec == "utf-8" and b"\x00" in sample):
        return None
    text = codecs.getincrementaldecoder(found.codec)("replace").decode(sample, final=False)
    odd = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in _ALLOWED_CONTROLS) or ch == "\x7f")
    if not text.strip() or odd * MOSTLY > len(text):
        return None
    return found


def make_copy(head: bytes, size: int, encoding: Encoding) -> Copy:
    """The copy of a file of ``size`` bytes from its first bytes ``head`` (all of it, or the
    first ``len(head)``). A character cut in two at the end of the head is left out, not
    replaced."""
    whole = len(head) >= size
    decoder = codecs.getincrementaldecoder(encoding.codec)("replace")
    text = decoder.decode(head[encoding.bom :], final=whole)
    pending = len(decoder.getstate()[0]) if not whole else 0
    return Copy(
        text=text.encode("utf-8", "replace"),  # a lone surrogate cannot be UTF-8; the decoders replace them anyway
        encoding=encoding,
        bytes_used=len(head) - pending,
        size=size,
        replaced=text.count("\ufffd"),
    )


def method(copy: Copy, version: str) -> dict[str, object]:
    """How the copy was made, for the custody record."""
    return {
        "tool": "transcode.textcopy",
        "version": version,
        "encoding": copy.encoding.codec,
        "byte_order_mark": bool(copy.encoding.bom),
        "bytes_used": copy.bytes_used,
        "original_size": copy.size,
        "cut": f"at byte {copy.bytes_used:,} of {copy.size:,}" if copy.cut else None,
        "replacement_characters": copy.replaced,
    }
