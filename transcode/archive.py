"""The manifest of a ZIP archive (a phone extraction): every entry with its sizes and SHA-256.

Entries are hashed one block at a time straight from the archive; nothing is extracted to disk and
nested archives are listed and hashed as files, never opened. zipfile parses the central directory;
entry data is read and decompressed here, because zipfile's own reader hands bzip2 and LZMA data to
the decompressor without an output bound (one read of 4 KiB can expand to gigabytes) and trusts the
declared size. Here every decompression call is bounded, and the bytes actually produced are counted
against the sizes the headers declared, which the limits were checked against before any data was
read: a bomb that lies in its headers is stopped one block past its lie.
"""

from __future__ import annotations

import bz2
import hashlib
import itertools
import json
import lzma
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

MiB = 1024 * 1024
TiB = 1024 * 1024 * MiB
BLOCK = 1 * MiB  # raw bytes read, and decompressed bytes produced, per step

FORMAT = "zip-manifest/1"
TIMES = (
    "'modified' is the entry's MS-DOS date and time as stored in the archive: the local time of the "
    "machine that wrote it, with no time zone and 2-second resolution"
)

METHODS = {
    0: "stored", 8: "deflate", 9: "deflate64", 12: "bzip2", 14: "lzma",
    93: "zstd", 95: "xz", 98: "ppmd", 99: "aes",
}

# Magic numbers of containers a phone extraction may nest; they are flagged, never opened.
_ARCHIVE_MAGIC = (
    (0, b"PK\x03\x04"),
    (0, b"PK\x05\x06"),  # an empty ZIP
    (0, b"7z\xbc\xaf\x27\x1c"),
    (0, b"Rar!\x1a\x07"),
    (0, b"\x1f\x8b"),  # gzip
    (0, b"BZh"),
    (0, b"\xfd7zXZ\x00"),
    (257, b"ustar"),
)
_HEAD = 262  # bytes of an entry kept to recognise a nested archive
_ARCHIVE_SUFFIXES = (".zip", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz")  # when it cannot be read

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_LOCAL = struct.Struct("<4s5H3L2H")  # local file header


class ArchiveError(Exception):
    """The file is not a ZIP archive, or its structure is too damaged to list."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ArchiveRefused(ArchiveError):
    """The archive breaks a limit (a zip bomb, an absurd entry count): it is not processed."""


@dataclass(frozen=True)
class Limits:
    """What an archive may declare, and produce, before it is refused.

    ``max_ratio`` applies to each entry and to the archive as a whole, only above ``ratio_floor``
    uncompressed bytes (small, very compressible files are normal).
    """

    max_entries: int = 1_000_000
    max_entry_uncompressed: int = 1 * TiB
    max_total_uncompressed: int = 2 * TiB
    max_ratio: int = 1000
    ratio_floor: int = 10 * MiB

    def __post_init__(self) -> None:
        for field in ("max_entries", "max_entry_uncompressed", "max_total_uncompressed", "max_ratio"):
            if getattr(self, field) < 1:
                raise ValueError(f"Limits.{field} must be >= 1")
        if self.ratio_floor < 0:
            raise ValueError("Limits.ratio_floor must be >= 0")


class Source(Protocol):
    """The archive's bytes, seekable: an open file, or a RangeFile over an object in S3."""

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def read(self, size: int = -1, /) -> bytes: ...


class _Decoder(Protocol):
    """What bz2.BZ2Decompressor and lzma.LZMADecompressor have in common."""

    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _EntryProblem(Exception):
    """This entry cannot be hashed; the rest of the archive can."""


def build_manifest(
    file: Source,
    *,
    limits: Limits = Limits(),
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """List and hash every entry of the ZIP archive in the seekable ``file``.

    ``progress(done)`` receives the number of archive bytes dealt with so far (entries' compressed
    data, interpolated within an entry), and the archive's size at the end. Raises ``ArchiveRefused``
    when a limit is broken, ``ArchiveError`` when ``file`` is not a ZIP archive or its directory is
    corrupt. Problems confined to one entry (encrypted, unsupported method, bad CRC, truncated data)
    are recorded on the entry and in ``warnings``. I/O errors of ``file`` itself propagate unchanged.
    """
    archive, infos, size = _opened(file, limits)
    with archive:
        entries, warnings, hashed = _hash_entries(file, infos, size, limits, progress)
        comment = _text(archive.comment, utf8=False)
    if progress is not None:
        progress(size)
    seen: set[str] = set()
    for entry in entries:
        if entry["path"] in seen:
            warnings.append(f"{entry['path']}: the same path appears more than once in the archive")
        seen.add(entry["path"])
    files = [e for e in entries if not e["is_dir"]]
    return {
        "format": FORMAT,
        "archive_size": size,
        "comment": comment,
        "times": TIMES,
        "entries": entries,
        "totals": {
            "entries": len(entries),
            "files": len(files),
            "directories": len(entries) - len(files),
            "archives": sum(1 for e in entries if e["archive"]),
            "problems": sum(1 for e in entries if e["problem"] is not None),
            "size": sum(e["size"] for e in entries),
            "compressed_size": sum(e["compressed_size"] for e in entries),
            "hashed_bytes": hashed,
        },
        "warnings": warnings,
    }


def _opened(file: Source, limits: Limits) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo], int]:
    """The archive's directory, once what it declares has been checked against ``limits``."""
    size = file.seek(0, 2)
    declared_entries = _declared_entry_count(file, size)
    if declared_entries > limits.max_entries:
        raise ArchiveRefused(
            f"archive declares {declared_entries:,} entries, more than the limit of {limits.max_entries:,}"
        )
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, EOFError, struct.error, UnicodeDecodeError, ValueError) as exc:
        raise ArchiveError(f"corrupt ZIP archive: {exc}") from None
    infos = archive.infolist()
    try:
        _check_declared(infos, size, archive.start_dir, limits)
    except ArchiveError:
        archive.close()
        raise
    return archive, infos, size


class EntryUnreadable(ArchiveError):
    """This entry cannot be read (encrypted, an unsupported method, corrupt); the others can."""


class Reader:
    """The entries of an archive read one at a time, as the manifest hashed them: every
    decompression call bounded, the bytes produced counted against the declared size, the
    CRC-32 checked, and the archive's declarations checked against ``limits`` first. For the
    working copies made of what an archive holds; nothing is extracted but to the ``out`` given.
    """

    def __init__(self, file: Source, limits: Limits = Limits()) -> None:
        self._file = file
        self._archive, self._infos, self._size = _opened(file, limits)

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._archive.close()

    def head(self, index: int, path: str, length: int) -> bytes:
        """The first ``length`` bytes (at most) of entry ``index`` of the manifest, named ``path``."""
        info = self._entry(index, path)
        out = b""
        try:
            for chunk in _checked(self._file, info, self._size):
                out += chunk[: length - len(out)]
                if len(out) >= length:
                    break
        except _EntryProblem as exc:
            raise EntryUnreadable(str(exc)) from None
        return out

    def extract(self, index: int, path: str, out: BinaryIO) -> tuple[str, int]:
        """Write entry ``index`` (named ``path``) to ``out``: (its SHA-256, its size)."""
        info = self._entry(index, path)
        digest = hashlib.sha256()
        produced = 0
        try:
            for chunk in _checked(self._file, info, self._size):
                out.write(chunk)
                digest.update(chunk)
                produced += len(chunk)
        except _EntryProblem as exc:
            raise EntryUnreadable(str(exc)) from None
        return digest.hexdigest(), produced

    def _entry(self, index: int, path: str) -> zipfile.ZipInfo:
        if not 0 <= index < len(self._infos) or self._infos[index].orig_filename != path:
            raise ArchiveError(f"the archive has no entry {index} named {path!r}: not the archive its manifest lists")
        return self._infos[index]


def manifest_json(manifest: dict[str, Any]) -> bytes:
    """The manifest as stable UTF-8 JSON: sorted keys, entries in archive order, newline at the end."""
    return (json.dumps(manifest, sort_keys=True, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _declared_entry_count(file: Source, size: int) -> int:
    # Read before zipfile parses the central directory, so an absurd count costs nothing.
    tail_size = min(size, _EOCD64.size + _EOCD64_LOCATOR.size + _EOCD.size + 0xFFFF)
    file.seek(size - tail_size)
    tail = file.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        raise ArchiveError("not a ZIP archive (no end-of-central-directory record: not a ZIP, or cut short)")
    count = _EOCD.unpack_from(tail, at)[4]
    locator = at - _EOCD64_LOCATOR.size
    record = locator - _EOCD64.size
    has_zip64 = record >= 0 and tail[locator : locator + 4] == b"PK\x06\x07"
    if count == 0xFFFF and has_zip64 and tail[record : record + 4] == b"PK\x06\x06":
        count = _EOCD64.unpack_from(tail, record)[7]
    return int(count)


def _check_declared(infos: list[zipfile.ZipInfo], size: int, start_dir: int, limits: Limits) -> None:
    if len(infos) > limits.max_entries:
        raise ArchiveRefused(
            f"archive holds {len(infos):,} entries, more than the limit of {limits.max_entries:,}"
        )
    total = 0
    for info in infos:
        name = info.orig_filename
        if info.file_size > limits.max_entry_uncompressed:
            raise ArchiveRefused(
                f"entry {name!r} declares {info.file_size:,} bytes uncompressed, more than the limit "
                f"of {limits.max_entry_uncompressed:,}"
            )
        if _too_compressed(info.file_size, info.compress_size, limits):
            raise ArchiveRefused(
                f"entry {name!r} expands beyond {limits.max_ratio}:1 ({info.compress_size:,} bytes to "
                f"{info.file_size:,}) (zip bomb?)"
            )
        total += info.file_size
    if total > limits.max_total_uncompressed:
        raise ArchiveRefused(
            f"archive declares {total:,} bytes uncompressed, more than the limit of "
            f"{limits.max_total_uncompressed:,}"
        )
    if _too_compressed(total, size, limits):
        raise ArchiveRefused(
            f"archive expands beyond {limits.max_ratio}:1 ({size:,} bytes to {total:,}) (zip bomb?)"
        )
    # Entries sharing or overlapping their data let a small file declare honest-looking entries
    # that add up to a bomb (the "overlapping files" construction); real writers never do it.
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for info, following in itertools.pairwise(ordered):
        if info.header_offset + _LOCAL.size + info.compress_size > following.header_offset:
            raise ArchiveRefused(
                f"entries {info.orig_filename!r} and {following.orig_filename!r} overlap in the archive "
                "(a zip bomb construction)"
            )
    if ordered and ordered[-1].header_offset + _LOCAL.size + ordered[-1].compress_size > start_dir:
        last = ordered[-1].orig_filename
        raise ArchiveError(f"corrupt ZIP archive: entry {last!r} runs into the central directory")


def _too_compressed(uncompressed: int, compressed: int, limits: Limits) -> bool:
    return uncompressed > limits.ratio_floor and uncompressed > limits.max_ratio * compressed


def _hash_entries(
    file: Source,
    infos: list[zipfile.ZipInfo],
    size: int,
    limits: Limits,
    progress: Callable[[int], None] | None,
) -> tuple[list[dict[str, Any]], list[str], int]:
    entries: list[dict[str, Any]] = []
    warnings: list[str] = []
    hashed = 0
    done = 0
    for info in infos:
        utf8 = bool(info.flag_bits & 0x800)
        entry: dict[str, Any] = {
            "path": info.orig_filename,
            "is_dir": info.is_dir(),
            "size": info.file_size,
            "compressed_size": info.compress_size,
            "crc32": f"{info.CRC:08x}",
            "method": METHODS.get(info.compress_type, f"method {info.compress_type}"),
            "modified": "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}".format(*info.date_time),
            "encrypted": bool(info.flag_bits & 0x1),
            "comment": _text(info.comment, utf8=utf8),
            "archive": info.orig_filename.lower().endswith(_ARCHIVE_SUFFIXES),
            "sha256": None,
            "problem": None,
        }
        if not (entry["is_dir"] and info.file_size == 0 and info.compress_size == 0):

            def step(produced: int, base: int = done, info: zipfile.ZipInfo = info) -> None:
                if progress is not None and info.file_size:
                    progress(base + min(info.compress_size, produced * info.compress_size // info.file_size))

            try:
                digest, produced, head = _hash_entry(file, info, size, step)
            except _EntryProblem as exc:
                entry["problem"] = str(exc)
                warnings.append(f"{info.orig_filename}: {exc}")
            else:
                hashed += produced
                entry["sha256"] = digest
                entry["archive"] = any(head[at : at + len(magic)] == magic for at, magic in _ARCHIVE_MAGIC)
                if hashed > limits.max_total_uncompressed:  # a backstop: declared sizes were checked
                    raise ArchiveRefused(f"archive expands beyond {limits.max_total_uncompressed:,} bytes")
        done += info.compress_size
        if progress is not None:
            progress(done)
        entries.append(entry)
    return entries, warnings, hashed


def _hash_entry(
    file: Source, info: zipfile.ZipInfo, size: int, step: Callable[[int], None]
) -> tuple[str, int, bytes]:
    digest = hashlib.sha256()
    produced = 0
    head = b""
    for chunk in _checked(file, info, size):
        produced += len(chunk)
        if len(head) < _HEAD:
            head += chunk[: _HEAD - len(head)]
        digest.update(chunk)
        step(produced)
    return digest.hexdigest(), produced, head


def _checked(file: Source, info: zipfile.ZipInfo, size: int) -> Iterator[bytes]:
    """The entry's bytes, at most ``BLOCK`` at a time, each counted against the size its header
    declares as it comes (ArchiveRefused past it); at the end its size and CRC-32 are checked.
    _EntryProblem for an entry that cannot be read."""
    if info.flag_bits & 0x1:
        raise _EntryProblem("encrypted entry: not decrypted, so not hashed")
    if info.flag_bits & 0x40:
        raise _EntryProblem("strong encryption: not decrypted, so not hashed")
    if info.flag_bits & 0x20:
        raise _EntryProblem("compressed patched data (flag bit 5) is not supported")
    method = info.compress_type
    if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        raise _EntryProblem(f"compression method {method} ({METHODS.get(method, 'unknown')}) is not supported")
    start = _data_start(file, info, size)
    crc = 0
    produced = 0
    try:
        for chunk in _decompressed(_raw(file, start, info.compress_size), info.compress_type):
            produced += len(chunk)
            if produced > info.file_size:
                raise ArchiveRefused(
                    f"entry {info.orig_filename!r} expands beyond the {info.file_size:,} bytes its header "
                    "declares (zip bomb?)"
                )
            crc = zlib.crc32(chunk, crc)
            yield chunk
    except (zlib.error, lzma.LZMAError, EOFError) as exc:
        raise _EntryProblem(f"corrupt compressed data: {exc or type(exc).__name__}") from None
    if produced != info.file_size:
        raise _EntryProblem(f"decompressed to {produced:,} bytes but its header declares {info.file_size:,}")
    if crc != info.CRC:
        raise _EntryProblem(
            f"CRC-32 mismatch: the data gives {crc:08x}, the archive records {info.CRC:08x} (corrupt entry)"
        )


def _data_start(file: Source, info: zipfile.ZipInfo, size: int) -> int:
    file.seek(info.header_offset)
    header = file.read(_LOCAL.size)
    if len(header) != _LOCAL.size or header[:4] != b"PK\x03\x04":
        raise _EntryProblem("no local file header where the directory points (corrupt entry)")
    fields = _LOCAL.unpack(header)
    flags, name_length, extra_length = fields[2], fields[9], fields[10]
    name = file.read(name_length)
    try:
        local_name = name.decode("utf-8" if flags & 0x800 else "cp437")
    except UnicodeDecodeError:
        local_name = None
    if local_name != info.orig_filename:
        raise _EntryProblem(f"the local header names it {name!r} (corrupt or tampered entry)")
    start = info.header_offset + _LOCAL.size + int(name_length) + int(extra_length)
    if start + info.compress_size > size:
        raise _EntryProblem("the archive ends inside this entry's data (truncated)")
    return start


def _raw(file: Source, start: int, length: int) -> Iterator[bytes]:
    left = length
    while left > 0:
        file.seek(start + length - left)  # another reader of the same file may have moved it
        chunk = file.read(min(BLOCK, left))
        if not chunk:
            raise EOFError("the archive ends inside this entry's data")
        left -= len(chunk)
        yield chunk


def _decompressed(raw: Iterator[bytes], method: int) -> Iterator[bytes]:
    """The entry's bytes, at most ``BLOCK`` per chunk, however compressible the input."""
    if method == zipfile.ZIP_STORED:
        return raw
    if method == zipfile.ZIP_DEFLATED:
        return _inflated(raw)
    return _decoded(raw, method)


def _inflated(raw: Iterator[bytes]) -> Iterator[bytes]:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    for chunk in raw:
        data = chunk
        while data and not inflater.eof:
            out = inflater.decompress(data, BLOCK)
            if out:
                yield out
            data = inflater.unconsumed_tail
        if inflater.eof:
            return
    out = inflater.flush()  # what the last bounded call held back: under one match (258 bytes)
    if out:
        yield out
    if not inflater.eof:
        raise EOFError("the deflate stream ends early")


def _decoded(raw: Iterator[bytes], method: int) -> Iterator[bytes]:
    """bzip2 or LZMA, through a decoder made from the entry's first bytes."""
    decoder: _Decoder | None = None
    for chunk in raw:
        data = chunk
        if decoder is None:
            decoder, data = _decoder(method, chunk)
        out = _feed(decoder, data)
        if out:
            yield out
        while not decoder.eof and not decoder.needs_input:
            out = _feed(decoder, b"")
            if out:
                yield out
        if decoder.eof:
            return
    # An LZMA stream may end without an end marker when the size is known; sizes and CRC still check it.
    if method == zipfile.ZIP_BZIP2:
        raise EOFError("the bzip2 stream ends early")


def _feed(decoder: _Decoder, data: bytes) -> bytes:
    try:
        return decoder.decompress(data, BLOCK)
    except OSError as exc:  # bz2 reports bad data as a bare OSError, not to be taken for I/O
        raise zlib.error(str(exc)) from None


def _decoder(method: int, first: bytes) -> tuple[_Decoder, bytes]:
    if method == zipfile.ZIP_BZIP2:
        return bz2.BZ2Decompressor(), first
    # ZIP's LZMA: version (2 bytes), properties size (2), LZMA1 properties, then the raw stream.
    if len(first) < 4:
        raise EOFError("the LZMA header is cut short")
    (props_size,) = struct.unpack_from("<H", first, 2)
    props = first[4 : 4 + props_size]
    if props_size < 5 or len(props) < props_size:
        raise EOFError("the LZMA properties are cut short")
    lclppb = props[0]
    if lclppb >= 9 * 5 * 5:
        raise lzma.LZMAError("invalid LZMA properties")
    pb, rest = divmod(lclppb, 45)
    lp, lc = divmod(rest, 9)
    dict_size = int.from_bytes(props[1:5], "little")
    lzma1 = {"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": dict_size}
    return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma1]), first[4 + props_size :]


def _text(raw: bytes, *, utf8: bool) -> str:
    if utf8:
        return raw.decode("utf-8", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp437")
