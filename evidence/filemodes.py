"""Files only the service user may read: the data dir, the database, the keys.

What the server keeps on disk is evidence or secrets: the SQLite database (and its -wal and
-shm files), the token secret, the ledger and link signing keys, the reviewers' session
secret. Folders are 0700 and files 0600 (the owner's bits are kept, so a 0400 file stays
0400; group and other bits go). ``serve`` and ``worker`` set the umask 077 before creating
anything; what an older install left readable is tightened on start. A path the service
cannot tighten (it belongs to another user) stops the start with a clear message when it
lies in the data dir; a key the operator gives by path, perhaps on a read-only secrets
mount, is the operator's to protect and is reported in the log instead. Folders that are
not ours are never changed: only what we create is created private, and a shared folder
(sticky bit, like /tmp) is refused as a data dir rather than shut.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from evidence.errors import NotPrivate

log = logging.getLogger(__name__)

UMASK = 0o077
_OTHERS = 0o077  # group and other bits


def private_umask() -> int:
    """Files and folders created from now on by this process (and its children) are the
    service user's alone. Returns the previous umask."""
    return os.umask(UMASK)


def make_private(path: Path, strict: bool = True) -> None:
    """Remove group and other bits from ``path`` (following a symlink given by name), if
    it exists. Unfixable: NotPrivate when ``strict``, else a warning."""
    try:
        found = path.stat().st_mode
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(found)
    if not mode & _OTHERS:
        return
    if stat.S_ISDIR(found) and mode & stat.S_ISVTX:
        message = f"{path} is a shared folder (mode {mode:04o}); give the service a folder of its own"
        if strict:
            raise NotPrivate(message)
        log.warning("%s", message)
        return
    try:
        os.chmod(path, mode & ~_OTHERS)
    except OSError as error:
        message = (f"{path} can be read by other users (mode {mode:04o}) and could not be made private "
                   f"({error.strerror}); give it to the service user with mode {'0700' if stat.S_ISDIR(found) else '0600'}")
        if strict:
            raise NotPrivate(message) from None
        log.warning("%s", message)


def private_tree(root: Path, strict: bool = True) -> None:
    """``root`` and everything under it, except symlinks, made private."""
    make_private(root, strict)
    if not root.is_dir() or root.is_symlink():
        return
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = Path(folder, name)
            if not path.is_symlink():
                make_private(path, strict)


def private_dir(path: Path, strict: bool = True) -> Path:
    """Create ``path`` and any missing parents as private folders, or make it private."""
    make_dirs(path)
    make_private(path, strict)
    return path


def make_dirs(path: Path) -> Path:
    """Create ``path`` and any missing parents as private folders; existing ones are left
    as they are (they may be the operator's, shared with others)."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            pass  # made by another process meanwhile
    return path


def inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())
