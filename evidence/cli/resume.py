"""Where ``evidence upload`` remembers each upload it began, so that running the same command
again resumes it from the server's offset.

Several ``evidence upload`` processes may run at once from one home folder (an officer
sending a phone extraction and a CCTV export side by side, or a script that starts eight).
One shared JSON file, rewritten whole by each of them, was torn by the others' writes and
killed them with ``JSONDecodeError``. Here each upload has a small file of its own, named by
a hash of its key, and written whole: a temporary file beside it, flushed to disk, then put
in place with ``os.replace``, so a reader sees the old record or the new one, never half of
either, and two processes never write the same file. The folder is the user's alone (0700):
the records hold upload URLs.

A record that cannot be read (a disk that filled up, an edit by hand) is skipped with a
warning: the upload then starts again, which costs time but never evidence. Records kept in
the old single file (``uploads.json``, tuspy's ``FileStorage``) are moved over once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tusclient.storage.interface import Storage

from evidence.filemodes import private_dir

Warn = Callable[[str], None]


def state_dir() -> Path:
    """``$XDG_STATE_HOME/evidence`` (``~/.local/state/evidence`` when unset)."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "evidence"


class ResumeRecords(Storage):
    """tuspy's URL storage (``get_item``, ``set_item``, ``remove_item``) as one file per key."""

    def __init__(self, folder: Path, warn: Warn) -> None:
        self.folder = folder
        self.warn = warn
        # What ``evidence uploads list`` shows beside each URL (the file's path, its case),
        # given by the uploader before tuspy stores the URL.
        self._details: dict[str, dict[str, str]] = {}
        private_dir(folder)
        _import_legacy(folder.parent / "uploads.json", self)

    def path_of(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    def get_item(self, key: str) -> str | None:
        path = self.path_of(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            self.warn(f"cannot read the resume record {path} ({error.strerror}); starting this file afresh")
            return None
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        url = record.get("url") if isinstance(record, dict) and record.get("key") == key else None
        if not isinstance(url, str) or not url:
            self.warn(f"the resume record {path} is damaged and was ignored; starting this file afresh")
            return None
        return url

    def set_item(self, key: str, value: str | None) -> None:
        if value is None:  # tuspy stores what it looked up, found or not: nothing to keep
            return
        _write_whole(self.path_of(key), json.dumps({**self._details.get(key, {}), "key": key, "url": value}))

    def describe(self, key: str, **details: str) -> None:
        """Keep ``details`` in ``key``'s record when it is written."""
        self._details[key] = details

    def note(self, key: str, **details: str) -> None:
        """Add ``details`` to ``key``'s record, if it has one (how far it got; that it finished)."""
        self._details[key] = {**self._details.get(key, {}), **details}
        url = self.get_item(key)
        if url is not None:
            self.set_item(key, url)

    def remove_item(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_of(key).unlink()

    def urls(self) -> list[str]:
        """Every readable record's URL, oldest first."""
        return [record["url"] for record in self.records()]

    def records(self) -> list[dict[str, str]]:
        """Every readable record (``key``, ``url``, and ``path``, ``case`` where kept), oldest first."""
        found = []
        for path in sorted(self.folder.glob("*.json"), key=_mtime):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                record = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(record.get("url"), str) and isinstance(record.get("key"), str):
                    found.append({k: v for k, v in record.items() if isinstance(v, str)})
        return found


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _write_whole(path: Path, text: str) -> None:
    """``text`` in ``path``, or ``path`` as it was: never a part of it."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    # The rename itself is durable once the folder is.
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _import_legacy(legacy: Path, records: ResumeRecords) -> None:
    """Move the records of the old single file (``{"_default": {"1": {"key", "url"}}}``)
    into ``records``, once: the first process to get here does it, the others wait for it."""
    if not legacy.exists():
        return
    with _locked(records.folder / ".import.lock"):
        try:
            text = legacy.read_text(encoding="utf-8")
        except FileNotFoundError:
            return  # another process did it meanwhile
        try:
            table = json.loads(text).get("_default", {})
            entries = list(table.values()) if isinstance(table, dict) else []
        except (ValueError, AttributeError):
            records.warn(f"the old resume file {legacy} is damaged; its uploads will start afresh")
            entries = []
        for entry in entries:
            key = entry.get("key") if isinstance(entry, dict) else None
            url = entry.get("url") if isinstance(entry, dict) else None
            if isinstance(key, str) and isinstance(url, str) and url and not records.path_of(key).exists():
                records.set_item(key, url)
        # Kept beside, not deleted: nothing an officer had is thrown away.
        os.replace(legacy, legacy.with_name(legacy.name + ".imported"))
