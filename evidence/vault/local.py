"""The vault as a folder on local disk (the embedded default).

Write-once here means a read-only file: it stops accidents and other users, not the
machine's administrator, which :meth:`LocalVault.write_once_description` says plainly.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat as stat_mode
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, cast

from evidence.vault.base import (
    ORIGINALS,
    KeyRefused,
    ObjectExists,
    ObjectInfo,
    RangeReader,
    VaultUnavailable,
    check_derivative_key,
    check_key,
    working_copies_prefix,
)
from transfer.errors import disk_full
from transfer.store import Store

# The tus store's working files, inside the root so the final rename stays on one disk.
UPLOADS_DIR = ".uploads"
SEALED_MODE = 0o400


class LocalVault:
    def __init__(self, root: Path) -> None:
        if not root.is_absolute():
            raise ValueError(f"the vault root must be an absolute path: {root}")
        self.root = root

    def _path(self, key: str) -> Path:
        check_key(key)
        path = self.root / key
        # Keys are already clean; this also catches a symlink planted inside the root.
        real_root = os.path.realpath(self.root)
        if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
            raise KeyRefused(f"storage key leads outside the vault: {key!r}")
        return path

    def ensure_ready(self) -> None:
        for folder in (self.root, self.root / "originals", self.root / "derivatives", self.root / UPLOADS_DIR):
            folder.mkdir(parents=True, exist_ok=True)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            found = self._path(key).stat()
        except FileNotFoundError:
            return None
        sealed = not found.st_mode & (stat_mode.S_IWUSR | stat_mode.S_IWGRP | stat_mode.S_IWOTH)
        return ObjectInfo(key=key, size=found.st_size, sealed=sealed)

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError:
            raise KeyError(key) from None
        handle.seek(start)
        return cast(BinaryIO, RangeReader(handle, None if end is None else max(end - start, 0)))

    def seal(self, key: str) -> None:
        path = self._path(key)
        # Read-only, and readable by the service account alone: originals are evidence,
        # not for other local users to read.
        os.chmod(path, SEALED_MODE)
        if stat_mode.S_IMODE(path.stat().st_mode) != SEALED_MODE:
            raise OSError(f"could not make {key} read-only")

    def put(self, key: str, fileobj: BinaryIO) -> ObjectInfo:
        target = self._path(check_derivative_key(key))
        try:
            self._put(key, target, fileobj)
        except OSError as error:
            if disk_full(error):
                raise _full(key) from error
            raise
        size = target.stat().st_size
        return ObjectInfo(key=key, size=size, sealed=False)

    def _put(self, key: str, target: Path, fileobj: BinaryIO) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target, then hard-linked into place: the link fails if the key
        # is taken (no overwrite, even in a race) and readers never see a partial file.
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".put-", delete=False) as tmp:
            try:
                shutil.copyfileobj(fileobj, tmp, 1024 * 1024)
                tmp.flush()
                os.fsync(tmp.fileno())
                try:
                    os.link(tmp.name, target)
                except FileExistsError:
                    raise ObjectExists(f"{key} already exists in the vault") from None
            finally:
                os.unlink(tmp.name)  # a partial copy on a full disk goes too

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        target = self._path(check_derivative_key(key))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # durable before it is announced
        finally:
            os.close(fd)
        try:
            os.link(path, target)  # no copy; fails rather than replace
        except FileExistsError:
            raise ObjectExists(f"{key} already exists in the vault") from None
        except OSError as error:
            if disk_full(error):
                raise _full(key) from error
            if error.errno != errno.EXDEV:
                raise
            with open(path, "rb") as stream:  # another file system: copy after all
                return self.put(key, stream)
        return ObjectInfo(key=key, size=target.stat().st_size, sealed=False)

    def tus_store(self) -> Store:
        from transfer.filestore import FileStore

        return FileStore(self.root, self.root / UPLOADS_DIR)

    def tool_input(self, key: str) -> str:
        return str(self._path(key))

    def tag(self, key: str, tags: dict[str, str]) -> None:
        # Extended attributes travel with the file on most Linux file systems; where they
        # are not supported the database still holds the hashes.
        path = self._path(key)
        for name, value in tags.items():
            try:
                os.setxattr(path, f"user.evidence.{name}", value.encode())
            except OSError:
                return

    def legal_hold(self, key: str, on: bool) -> bool:
        # A read-only file has no hold of its own to set; the database's hold blocks disposal.
        if not self._path(key).is_file():
            raise KeyError(key)
        return False

    def remove_working_copies(self, item_id: str) -> int:
        folder = self._path(working_copies_prefix(item_id).rstrip("/"))
        if not folder.is_dir():
            return 0
        removed = sum(1 for found in folder.rglob("*") if not found.is_dir())
        shutil.rmtree(folder)
        return removed

    def remove_original(self, key: str) -> None:
        path = self._path(key)
        if not key.startswith(ORIGINALS) or path.is_dir():
            raise KeyRefused(f"not an original: {key!r}")
        try:
            # Read-only (0400) stops writes, not the service account unlinking its own file.
            path.unlink()
        except FileNotFoundError:
            raise KeyError(key) from None

    def describe(self) -> dict[str, Any]:
        return {"backend": "local"}

    def write_once_description(self) -> str:
        return (
            "local file made read-only for the service account alone (mode 0400); not protected from the"
            " machine's administrator"
        )



def _full(key: str) -> VaultUnavailable:
    return VaultUnavailable(f"the vault's disk is full; {key} was not stored")
