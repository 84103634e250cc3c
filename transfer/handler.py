"""The tus 1.0.0 protocol over HTTP, as an ASGI (Starlette) application.

It knows nothing of the storage backend beyond the contract in :mod:`transfer.store`,
advertises exactly the extensions the configured store can do, and keeps upload state in
the application's :class:`~transfer.store.Registry`.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from transfer import errors
from transfer.body import VerifiedBody, received, verified
from transfer.capabilities import Capabilities
from transfer.creation import OCTET_STREAM, Creation, CreationLimits, new_upload, parse_creation, usable_partials
from transfer.expiry import Expiry, removable
from transfer.headers import (
    CHECKSUM_ALGORITHMS,
    TUS_VERSION,
    Checksum,
    encode_metadata,
    is_upload_id,
    parse_checksum,
    parse_length,
)
from transfer.hooks import Authorizer, Hooks
from transfer.info import UploadInfo
from transfer.lock import Locker
from transfer.store import Checkpoints, Registry, Store

__all__ = ["Authorizer", "Hooks", "TusApp", "TusConfig"]

log = logging.getLogger(__name__)


@dataclass
class TusConfig:
    max_size: int
    expiry: timedelta | None = timedelta(days=7)
    tmp_dir: Path | None = None
    # However often it is touched, an unfinished upload expires this long after it began.
    max_lifetime: timedelta | None = None
    # Upload-Concat: final names at most this many partial uploads.
    max_partials: int = 1000
    # A chunk without Upload-Checksum makes its progress durable and recorded after about
    # this many bytes each time, so a crash in a long PATCH loses at most this much.
    checkpoint_bytes: int = 64 * 1024 * 1024

    @property
    def lifetimes(self) -> Expiry:
        return Expiry(idle=self.expiry, lifetime=self.max_lifetime)


class TusApp:
    def __init__(self, store: Store, registry: Registry, locker: Locker, hooks: Hooks, config: TusConfig) -> None:
        self.store = store
        self.registry = registry
        self.locker = locker
        self.hooks = hooks
        self.config = config
        # What the store and the application can do beyond the contract, found once.
        self.capabilities = Capabilities.of(store)
        self._authorize = hooks.authorize if isinstance(hooks, Authorizer) else None
        self._creation_limits = CreationLimits(
            max_size=config.max_size,
            max_partials=config.max_partials,
            can_defer_length=self.capabilities.declare_length is not None,
            can_concatenate=self.capabilities.concatenate is not None,
        )
        self.router = Router(
            routes=[
                Route("/", self._collection, methods=["OPTIONS", "POST"]),
                # POST too: X-HTTP-Method-Override arrives as a POST naming the real method.
                Route("/{upload_id}", self._resource, methods=["OPTIONS", "HEAD", "PATCH", "DELETE", "POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router(scope, receive, send)

    @property
    def extensions(self) -> list[str]:
        expires = self.config.expiry is not None or self.config.max_lifetime is not None
        return self.capabilities.extensions(expires)

    # -- dispatch -----------------------------------------------------------------------

    async def _collection(self, request: Request) -> Response:
        return await self._dispatch(request, None)

    async def _resource(self, request: Request) -> Response:
        return await self._dispatch(request, request.path_params["upload_id"])

    async def _dispatch(self, request: Request, upload_id: str | None) -> Response:
        # Browsers and some proxies can only send GET/POST: the spec's method override.
        method = request.headers.get("x-http-method-override", request.method).upper()
        try:
            if method == "OPTIONS":
                return self._options()
            if request.headers.get("tus-resumable", "").strip() != TUS_VERSION:
                raise errors.UnsupportedVersion()
            if upload_id is None:
                if method != "POST":
                    raise errors.MethodNotAllowed()
                # Whatever the headers alone decide is refused before any database work,
                # authentication included.
                creation = parse_creation(request.headers, request.url.path, self._creation_limits)
                return await self._post(request, await self._authenticate(request), creation)
            if not is_upload_id(upload_id):
                raise errors.NotFound()
            handler = {"HEAD": self._head, "PATCH": self._patch, "DELETE": self._delete}.get(method)
            if handler is None:
                raise errors.MethodNotAllowed()
            return await handler(request, await self._authenticate(request), upload_id)
        except errors.TusError as error:
            if error.status >= 500:
                log.warning("tus %s %s: %s", method, upload_id or "", error.message)
            headers = {"Tus-Version": TUS_VERSION} if isinstance(error, errors.UnsupportedVersion) else {}
            return self._response(error.status, {**headers, **error.headers}, error.message + "\n", method)

    async def _authenticate(self, request: Request) -> str:
        return await anyio.to_thread.run_sync(self.hooks.authenticate, request.headers)

    def _response(self, status: int, headers: dict[str, str] | None = None, body: str = "", method: str = "") -> Response:
        headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **(headers or {})}
        if method == "HEAD":
            body = ""
        return Response(body, status_code=status, headers=headers, media_type="text/plain" if body else None)

    def _options(self) -> Response:
        return self._response(
            204,
            {
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": ",".join(self.extensions),
                "Tus-Max-Size": str(self.config.max_size),
                "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
            },
        )

    # -- loading ------------------------------------------------------------------------

    async def _load(self, upload_id: str, owner: str) -> UploadInfo:
        info = await anyio.to_thread.run_sync(self.registry.load, upload_id)
        # Someone else's upload answers exactly like one that does not exist.
        if info is None or info.owner != owner:
            raise errors.NotFound()
        # Rights can be taken away after creation (an officer taken off the case): the
        # application decides again on every request.
        if self._authorize is not None:
            await anyio.to_thread.run_sync(self._authorize, owner, info)
        if info.terminated:
            raise errors.Gone()
        if self.config.lifetimes.expired(info, _now()):
            raise errors.Gone("upload expired before it was finished; start it again")
        return info

    def _touch(self, info: UploadInfo) -> None:
        if not info.finished:
            info.expires_at = self.config.lifetimes.next_expiry(info, _now())

    def _state_headers(self, info: UploadInfo) -> dict[str, str]:
        headers = {"Upload-Offset": str(info.offset)}
        # A finished partial upload expires too, unless a final upload takes it first.
        may_expire = not info.finished or (info.concat == "partial" and not info.consumed)
        if info.expires_at is not None and may_expire:
            headers["Upload-Expires"] = format_datetime(info.expires_at, usegmt=True)
        return headers

    # -- POST: creation, creation-with-upload, defer-length, concatenation --------------

    async def _post(self, request: Request, owner: str, creation: Creation) -> Response:
        partials = await self._partials(creation, owner)
        info = new_upload(creation, owner, partials, self._creation_limits, upload_id=secrets.token_hex(16), now=_now())
        self._touch(info)
        await anyio.to_thread.run_sync(self.hooks.prepare, info, partials)
        if not info.storage_key:
            raise errors.TusError("the application gave the upload no storage key")
        async with self._first_chunk(request, creation, info) as body:
            async with self.locker.lock(info.id):
                if partials:
                    await self._assemble(info, partials)
                else:
                    await self._begin(info, body)
                if info.is_complete:
                    await self._finish(info)
        location = str(request.url.replace(query=None)).rstrip("/") + "/" + info.id
        return self._response(201, {"Location": location, **self._state_headers(info)})

    async def _partials(self, creation: Creation, owner: str) -> list[UploadInfo]:
        """A final upload's partial uploads, loaded in one round trip and checked."""
        ids = creation.partial_ids
        if not ids:
            return []
        found = await anyio.to_thread.run_sync(self.registry.load_many, ids)
        return usable_partials(ids, found, owner, self.config.lifetimes, _now())

    @contextlib.asynccontextmanager
    async def _first_chunk(
        self, request: Request, creation: Creation, info: UploadInfo
    ) -> AsyncIterator[AsyncIterator[bytes] | None]:
        """creation-with-upload: the body, if any. One that carries a checksum is verified
        before the upload exists: a refused POST gives the client no Location, so an upload
        created first could never be resumed."""
        if not creation.with_upload:
            yield None
            return
        body = received(request.stream(), info.size if info.size is not None else self.config.max_size)
        if creation.checksum is None:
            yield body
            return
        spooled = VerifiedBody(self.config.tmp_dir)
        try:
            await spooled.spool(body, creation.checksum)
            yield spooled.blocks()
        finally:
            spooled.close()

    async def _begin(self, info: UploadInfo, body: AsyncIterator[bytes] | None) -> None:
        await self.store.create(info)
        await anyio.to_thread.run_sync(self.registry.add, info)
        if body is not None:
            await self._store(info, body)

    async def _assemble(self, info: UploadInfo, partials: list[UploadInfo]) -> None:
        """A final upload: its partial uploads' bytes, then its record, which also takes
        the partial uploads (or refuses, if another final upload took one meanwhile)."""
        concatenate = self.capabilities.concatenate
        if concatenate is None:  # parse_creation refused the request already
            raise errors.BadRequest("this server does not support concatenation")
        try:
            await concatenate(info, partials)
            info.offset = info.size or 0
            await anyio.to_thread.run_sync(self.registry.add, info)
        except BaseException:
            # Never recorded: nobody could resume or finish it, so its bytes go.
            with anyio.CancelScope(shield=True):
                await self._discard(info)
            raise

    async def _discard(self, info: UploadInfo) -> None:
        if self.capabilities.terminate is None:
            return
        try:
            await self.capabilities.terminate(info)
        except Exception:  # the original error is the one to report
            log.exception("could not discard the stored bytes of unrecorded upload %s", info.id)

    # -- HEAD ---------------------------------------------------------------------------

    async def _head(self, request: Request, owner: str, upload_id: str) -> Response:
        info = await self._load(upload_id, owner)
        if info.is_complete and not info.finished:
            # A crash between the last byte and the completion record: finish it now,
            # so a client that sees the full offset also gets its item.
            async with self.locker.lock(info.id):
                info = await self._load(upload_id, owner)
                if info.is_complete and not info.finished:
                    await self._finish(info)
        headers = self._state_headers(info)
        if info.size is None:
            headers["Upload-Defer-Length"] = "1"
        else:
            headers["Upload-Length"] = str(info.size)
        if info.metadata:
            headers["Upload-Metadata"] = encode_metadata(info.metadata)
        if info.concat == "partial":
            headers["Upload-Concat"] = "partial"
        elif info.concat == "final":
            # The spec lists the partial uploads' URLs here (absolute, whatever form the POST used).
            collection = str(request.url.replace(query=None)).rsplit("/", 1)[0]
            headers["Upload-Concat"] = "final;" + " ".join(f"{collection}/{pid}" for pid in info.partials)
        return self._response(200, headers, method="HEAD")

    # -- PATCH --------------------------------------------------------------------------

    async def _patch(self, request: Request, owner: str, upload_id: str) -> Response:
        headers = request.headers
        if headers.get("content-type", "").split(";")[0].strip().lower() != OCTET_STREAM:
            raise errors.UnsupportedMediaType()
        offset = parse_length(headers.get("upload-offset"), "Upload-Offset")
        if offset is None:
            raise errors.BadRequest("Upload-Offset is required")
        new_length = parse_length(headers.get("upload-length"), "Upload-Length")
        checksum = parse_checksum(headers.get("upload-checksum"))

        async with self.locker.lock(upload_id):
            info = await self._load(upload_id, owner)
            if info.concat == "final":
                raise errors.Forbidden("a final upload is assembled from its partial uploads and takes no data")
            if offset != info.offset:
                raise errors.OffsetMismatch(f"Upload-Offset is {offset} but the upload is at {info.offset}")
            if new_length is not None:
                self._declare_length(info, new_length)
            if info.finished:
                return self._response(204, self._state_headers(info))
            await self._write(request, info, checksum)
            if info.is_complete:
                await self._finish(info)
        return self._response(204, self._state_headers(info))

    def _declare_length(self, info: UploadInfo, length: int) -> None:
        if info.size is not None:
            if length != info.size:
                raise errors.BadRequest("Upload-Length cannot change once set")
            return
        if length > self.config.max_size:
            raise errors.TooLarge(f"upload of {length} bytes exceeds the maximum of {self.config.max_size}")
        if length < info.offset:
            raise errors.BadRequest("Upload-Length is smaller than what was already uploaded")
        declare = self.capabilities.declare_length
        if declare is None:  # an upload with a deferred length, on a store that cannot have one
            raise errors.BadRequest("this server cannot defer the upload length")
        declare(info, length)
        info.size = length

    async def _write(self, request: Request, info: UploadInfo, checksum: Checksum | None) -> None:
        remaining = (info.size if info.size is not None else self.config.max_size) - info.offset
        declared = parse_length(request.headers.get("content-length"), "Content-Length")
        if declared is not None and declared > remaining:
            raise errors.TooLarge(f"the chunk of {declared} bytes goes past the upload's length")
        body = received(request.stream(), remaining)
        if checksum is not None:
            body = verified(body, checksum)
        await self._store(info, body, partial_ok=checksum is None)

    async def _store(self, info: UploadInfo, blocks: AsyncIterator[bytes], partial_ok: bool = True) -> None:
        """Write ``blocks`` at the upload's offset and record what was kept. A chunk that
        may count in part (no checksum) also records its progress as it streams."""
        start = info.offset

        async def record(stored: int) -> None:
            # Under the upload's lock (held by the caller), like every offset change.
            info.offset = start + stored
            self._touch(info)
            await anyio.to_thread.run_sync(self.registry.save, info)

        checkpoints = Checkpoints(self.config.checkpoint_bytes, record) if partial_ok else None
        try:
            written = await self.store.write_chunk(info, blocks, checkpoints)
        except errors.StorageUnavailable as error:
            # The store reports what it did manage to keep; record exactly that, unless the
            # chunk carried a checksum: then a part of it is unverified and counts for nothing.
            if partial_ok and start + error.written > info.offset:
                info.offset = start + error.written
                await anyio.to_thread.run_sync(self.registry.save, info)
            error.headers["Upload-Offset"] = str(info.offset)
            raise
        info.offset = start + written
        self._touch(info)
        await anyio.to_thread.run_sync(self.registry.save, info)

    async def _finish(self, info: UploadInfo) -> None:
        try:
            await self.store.finish(info)
        except errors.StorageUnavailable as error:
            # Every byte is kept and recorded; the client asks again (HEAD) to finish it.
            error.headers["Upload-Offset"] = str(info.offset)
            raise
        info.finished = True
        if info.concat == "partial":
            # A fresh wait for the final upload that is to use it, whatever its lifetime.
            info.expires_at = self.config.lifetimes.next_expiry(info, _now())
        try:
            await anyio.to_thread.run_sync(self.registry.complete, info)
        except BaseException:
            info.finished = False  # not recorded: a retry (HEAD, PATCH, cleanup) finishes it
            raise
        try:
            await anyio.to_thread.run_sync(self.hooks.completed, info)
        except Exception:  # the upload is safe and recorded; a failed hook must not undo that
            log.exception("completion hook failed for upload %s", info.id)

    # -- DELETE -------------------------------------------------------------------------

    async def _delete(self, request: Request, owner: str, upload_id: str) -> Response:
        terminate = self.capabilities.terminate
        if terminate is None:
            raise errors.MethodNotAllowed("this server does not support termination")
        async with self.locker.lock(upload_id):
            info = await self._load(upload_id, owner)
            if info.finished:
                raise errors.Forbidden("a finished upload is kept as received and cannot be deleted")
            if info.is_complete:
                # Every byte arrived; only its completion record is missing (HEAD makes it).
                raise errors.Forbidden("this upload has all its bytes and is kept as received; it cannot be deleted")
            await terminate(info)
            await anyio.to_thread.run_sync(self.registry.remove, info)
        return self._response(204)

    # -- expiry -------------------------------------------------------------------------

    async def cleanup_expired(self) -> list[str]:
        """Remove what has expired: unfinished uploads past their expiry, and finished
        partial uploads that a final upload consumed or that were never used in time;
        return their ids. An upload whose bytes have all arrived is finished instead."""
        removed = []
        for listed in await anyio.to_thread.run_sync(self.registry.expired, _now()):
            try:
                if await self._clean(listed.id):
                    removed.append(listed.id)
            except errors.Locked:
                continue  # in use right now: not abandoned after all
            except errors.TusError as error:  # storage down, say: the next run tries again
                log.warning("cleanup of upload %s: %s", listed.id, error.message)
            except Exception:  # one bad upload must not stop the cleanup of the others
                log.exception("cleanup of upload %s failed", listed.id)
        return removed

    async def _clean(self, upload_id: str) -> bool:
        """Remove one upload the registry listed as expired, if it still is; say whether."""
        async with self.locker.lock(upload_id):
            # Re-read under the lock: a chunk that was being written when the list was
            # made has moved the expiry on (or finished the upload).
            info = await anyio.to_thread.run_sync(self.registry.load, upload_id)
            if info is None or info.terminated:
                return False
            if info.is_complete and not info.finished:
                await self._finish(info)  # all received: keep it, never discard it
                return False
            if not removable(info, self.config.lifetimes, _now()):
                return False
            if self.capabilities.terminate is not None:
                await self.capabilities.terminate(info)
            await anyio.to_thread.run_sync(self.registry.remove, info)
        return True


def _now() -> datetime:
    return datetime.now(UTC)
