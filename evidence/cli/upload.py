"""The officer's upload client: hash, then send with tus in chunks, resumably.

Each file is hashed (SHA-256) first; that hash is sent as metadata so the server can prove
it received exactly these bytes, and it is the key under which the upload's URL is
remembered, so running the same command again after any interruption resumes from the
server's offset. (tuspy's own fingerprint looks only at the size and the first 64 KiB,
which collides for CCTV exports that share a header.)
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import requests
from rich.console import Console
from rich.progress import Progress
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError
from tusclient.uploader.uploader import Uploader

from evidence.cli.progress import Position, Row, file_bar, interrupted, wait_visibly
from evidence.cli.resume import ResumeRecords, state_dir
from evidence.cli.suggest import suggesting
from evidence.errors import EvidenceError, InvalidInput, NotFound, Unauthorized, Unavailable

HASH_BLOCK = 4 * 1024 * 1024
# Statuses that no retry can fix: the request itself is refused.
FATAL = {400: "refused", 401: "token rejected", 403: "not allowed", 413: "too large", 415: "refused"}
# The remembered upload is gone: start that file again.
STALE = {404, 410}


@dataclass
class Uploaded:
    item_id: str
    sha256: str
    path: Path


class _Uploader(Uploader):
    """tuspy's uploader, remembering its URL under our key: the file's full SHA-256
    (computed once), not tuspy's re-read (and stream-closing) fingerprint."""

    def __init__(self, *args: Any, resume_key: str, **kwargs: Any) -> None:
        self._resume_key = resume_key
        super().__init__(*args, **kwargs)

    def _get_fingerprint(self) -> str:
        return self._resume_key


def expand(paths: Iterable[str]) -> list[Path]:
    """Files to send: each file given, and every file under each directory given."""
    files: list[Path] = []
    missing = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            missing.append(text)
    if missing:
        raise InvalidInput("no such file: " + ", ".join(missing))
    if not files:
        raise InvalidInput("nothing to upload: the directories given hold no files")
    return files


class UploadClient:
    def __init__(
        self,
        server: str,
        token: str,
        *,
        chunk_size: int = 8 * 1024 * 1024,
        retries: int = 8,
        max_backoff: float = 30.0,
        console: Console | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.chunk_size = chunk_size
        self.retries = retries
        self.max_backoff = max_backoff
        self.console = console or Console(stderr=True)
        self.sleep = sleep
        self.headers = {"Authorization": f"Bearer {token}"}
        self._records: ResumeRecords | None = None
        # The file in hand and its bar: for the waiting note and the Ctrl-C message.
        self.position: Position | None = None
        self._row: Row | None = None

    @property
    def records(self) -> ResumeRecords:
        """Where each upload's URL is kept for a resume (:mod:`evidence.cli.resume`)."""
        if self._records is None:
            self._records = ResumeRecords(state_dir() / "uploads",
                                          lambda message: self.console.print(f"[yellow]warning:[/] {message}"))
        return self._records

    # -- checks before any byte is sent -------------------------------------------------

    def _api(self, path: str) -> dict[str, Any]:
        found: dict[str, Any] = self._api_any(path)
        return found

    def _api_any(self, path: str) -> Any:
        try:
            response = requests.get(f"{self.server}{path}", headers=self.headers, timeout=30)
        except requests.RequestException:
            raise Unavailable(f"the server at {self.server} is not reachable; is it running?") from None
        if response.status_code == 401:
            raise Unauthorized("the server rejected the token (expired, or not issued by this server)")
        if response.status_code == 403:
            raise Unauthorized("this token's role may not do that")
        if response.status_code == 404:
            raise NotFound(response.json().get("error", "not found"))
        if response.status_code >= 400:
            raise EvidenceError(f"the server answered {response.status_code}: {response.text[:200]}")
        return response.json()

    def check_case(self, case: str) -> None:
        try:
            self._api(f"/api/v1/cases/{quote(case, safe='')}")
        except NotFound as error:
            raise suggesting(error, case, self._case_refs) from None

    def _case_refs(self) -> list[str]:
        found: object = self._api_any("/api/v1/cases")
        return [str(case["ref"]) for case in found if isinstance(case, dict)] if isinstance(found, list) else []

    # -- one file -----------------------------------------------------------------------

    def sha256(self, path: Path, progress: Progress) -> str:
        row = Row(progress, f"hashing {path.name}", path.stat().st_size)
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            while block := stream.read(HASH_BLOCK):
                digest.update(block)
                row.advance(len(block))
        row.remove()
        return digest.hexdigest()

    def upload(self, path: Path, case: str, metadata: dict[str, str]) -> Uploaded:
        """One file, under a bar of its own that is finished (and left on the terminal) before
        this returns, so the caller's result line comes out under it."""
        self.position = Position(path, path.stat().st_size, 0)  # nothing sent yet, as far as we know
        with file_bar(self.console) as progress:
            sha256 = self.sha256(path, progress)
            key = f"{self.server}|{case}|{sha256}|{path.stat().st_size}"
            self._row = Row(progress, f"uploading {path.name}", self.position.size)
            storage = self.records
            storage.describe(key, path=str(path.absolute()), case=case)
            with open(path, "rb") as stream:
                uploader = self._uploader(stream, key, storage, case, sha256, path, metadata)
                size: int = uploader.stop_at  # the stream's size, measured when the uploader was made
                self.position = Position(path, size, uploader.offset, _url_of(uploader))
                self._row.at(uploader.offset)
                try:
                    self._send(uploader, size)
                except BaseException as stopped:
                    if isinstance(stopped, KeyboardInterrupt):
                        # The chunk in flight may have landed after all: ask, briefly.
                        self.position.acknowledged = self._held() or self.position.acknowledged
                    # `evidence uploads list` shows how far it got even when the server cannot be asked.
                    storage.note(key, sent=str(self.position.acknowledged))
                    raise
                storage.note(key, sent=str(size), finished="yes")
            self._row.note("")
            self._row = None
        item_id = self._item_of(_url_of(uploader))
        self.position = None
        return Uploaded(item_id, sha256, path)

    def _uploader(self, stream: BinaryIO, key: str, storage: ResumeRecords, case: str, sha256: str, path: Path,
                  metadata: dict[str, str]) -> _Uploader:
        client = TusClient(f"{self.server}/files/", headers=dict(self.headers))
        new_uploader = functools.partial(
            _Uploader,
            file_stream=stream,
            chunk_size=self.chunk_size,
            metadata={"filename": path.name, "case": case, "sha256": sha256, **metadata},
            store_url=True,
            url_storage=storage,
            resume_key=key,
            upload_checksum=True,
            client=client,
        )
        try:
            uploader = new_uploader()
        except TusCommunicationError as error:
            # The remembered upload is no longer on the server (expired, or another
            # server): begin this file again.
            if error.status_code not in STALE and error.status_code is not None:
                raise self._fatal(error) from None
            if error.status_code is None:
                raise Unavailable(f"the server at {self.server} is not reachable; is it running?") from None
            storage.remove_item(key)
            uploader = new_uploader()
        if uploader.url is None:
            self._with_retries(lambda: uploader.set_url(uploader.create_url()), creating=True)
            uploader.offset = 0
        return uploader

    def _send(self, uploader: Uploader, size: int) -> None:
        def recover() -> None:
            _refresh_offset(uploader)
            self._sent(uploader.offset)

        while uploader.offset < size:
            self._with_retries(uploader.upload_chunk, recover=recover, asked_to_wait=lambda: _retry_after(uploader))
            self._sent(uploader.offset)

    def _sent(self, offset: int) -> None:
        """The server acknowledged ``offset``: the bar and the Ctrl-C message say so."""
        if self.position is not None:
            self.position.acknowledged = offset
        if self._row is not None:
            self._row.at(offset)

    def _with_retries(self, action: Callable[[], object], recover: Callable[[], None] | None = None,
                      creating: bool = False, asked_to_wait: Callable[[], float] = lambda: 0.0) -> None:
        delay = 1.0
        for attempt in range(1, self.retries + 2):
            try:
                action()
            except TusCommunicationError as error:
                if error.status_code in FATAL or error.status_code in STALE:
                    raise self._fatal(error, creating) from None
                if attempt > self.retries:
                    raise Unavailable(
                        f"gave up after {attempt} attempts ({_describe(error)}); "
                        "run the same command again to resume"
                    ) from None
                # The server's Retry-After, when it gave one, but never longer than our cap.
                wait = min(max(delay, asked_to_wait()), self.max_backoff)
                wait_visibly(self._row, self.console, _describe(error), attempt, wait, self.sleep)
                delay = min(delay * 2, self.max_backoff)
                if recover is not None:
                    try:
                        recover()
                    except TusCommunicationError:
                        pass  # still down; the next attempt will say so
            else:
                if attempt > 1 and self._row is not None:
                    self._row.note("")
                return

    def _fatal(self, error: TusCommunicationError, creating: bool = False) -> EvidenceError:
        body = error.response_content
        text = body.decode(errors="replace").strip() if isinstance(body, bytes) else str(body or "")
        status = error.status_code
        if status == 401:
            return Unauthorized(f"the server rejected the token: {text}")
        if creating and status == 404:
            # Creating, nothing existed to go stale: the case is not one of ours (or is gone).
            return NotFound(text or "the case is not one of your cases")
        if status in STALE:
            return NotFound(f"the upload is no longer on the server ({text}); run the command again to restart it")
        return InvalidInput(f"the server {FATAL.get(status or 0, 'refused')} the upload ({status}): {text}")

    def _item_of(self, upload_url: str) -> str:
        upload_id = upload_url.rstrip("/").rsplit("/", 1)[-1]
        for _ in range(self.retries + 1):
            found = self._api(f"/api/v1/uploads/{upload_id}")
            if found.get("item"):
                return str(found["item"])
            self.sleep(0.5)  # completion is recorded by the server as the last chunk lands
        raise EvidenceError(f"the upload finished but the server reports no item for it ({upload_url})")

    # -- many files ---------------------------------------------------------------------

    def upload_all(self, paths: Iterable[str], case: str, metadata: dict[str, str]) -> Iterator[Uploaded]:
        files = expand(paths)
        self.check_case(case)
        for path in files:
            yield self.upload(path, case, metadata)

    # -- stopped by the officer ---------------------------------------------------------

    def interrupted(self, finished: int) -> str:
        """What to say on Ctrl-C: how much of the file in hand the server holds."""
        return interrupted(self.position, finished)

    def _held(self) -> int | None:
        if self.position is None or self.position.url is None:
            return None
        try:
            answer = requests.head(self.position.url, headers={**self.headers, "Tus-Resumable": "1.0.0"},
                                   timeout=(2, 3))
            return int(answer.headers["Upload-Offset"]) if answer.status_code == 200 else None
        except (requests.RequestException, KeyError, ValueError):
            return None


def _url_of(uploader: Uploader) -> str:
    url: object = uploader.url  # tuspy declares it by assigning None
    if not isinstance(url, str):
        raise EvidenceError("the server gave no URL for the upload")
    return url


def _refresh_offset(uploader: Uploader) -> None:
    uploader.offset = uploader.get_offset()


def _retry_after(uploader: Uploader) -> float:
    """Seconds the server asked for (``Retry-After`` on its last answer to a chunk), or 0."""
    request = getattr(uploader, "request", None)
    headers = getattr(request, "response_headers", None) or {}
    try:
        return max(0.0, float(headers.get("retry-after", 0)))
    except ValueError:
        return 0.0  # an HTTP date: rare here; our own back-off applies


def _describe(error: TusCommunicationError) -> str:
    if error.status_code is None:
        return "the server is not reachable"
    return f"the server answered {error.status_code}"
