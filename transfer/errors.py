"""Every protocol error the tus handler can answer with, each carrying its HTTP status.

Handlers and stores raise these; the handler turns them into a response with a plain-text
body that tells the client what went wrong. Nothing else produces an error response.
"""

from __future__ import annotations

import errno


class TusError(Exception):
    status: int = 500
    default_message = "internal error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        # Extra response headers, e.g. the offset that was kept when storage failed.
        self.headers: dict[str, str] = {}
        super().__init__(self.message)


class BadRequest(TusError):
    status, default_message = 400, "bad request"


class Unauthorized(TusError):
    status, default_message = 401, "a valid bearer token is required"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message)
        self.headers["WWW-Authenticate"] = "Bearer"  # RFC 6750: the scheme that would do


class Forbidden(TusError):
    status, default_message = 403, "this operation is not allowed on this upload"


class NotFound(TusError):
    status, default_message = 404, "upload not found"


class MethodNotAllowed(TusError):
    status, default_message = 405, "method not allowed"


class OffsetMismatch(TusError):
    status, default_message = 409, "Upload-Offset does not match the upload's current offset"


class Gone(TusError):
    status, default_message = 410, "upload expired or terminated"


class UnsupportedVersion(TusError):
    status, default_message = 412, "unsupported Tus-Resumable version; this server speaks 1.0.0"


class TooLarge(TusError):
    status, default_message = 413, "upload exceeds the maximum size"


class UnsupportedMediaType(TusError):
    status, default_message = 415, "Content-Type must be application/offset+octet-stream"


class Locked(TusError):
    status, default_message = 423, "upload is busy with another request; retry shortly"


class HeadersTooLarge(TusError):
    status, default_message = 431, "request header fields too large"


class ChecksumMismatch(TusError):
    status, default_message = 460, "checksum mismatch: the chunk was not stored"


class StorageUnavailable(TusError):
    """Storage failed part-way through a request. ``written`` is how many bytes of the
    chunk being written the store had durably kept before it failed (0 when nothing new,
    or when the failure was not in a write): the handler records exactly that offset."""

    status, default_message = 503, "storage is unavailable; nothing past the reported offset was kept"

    def __init__(self, message: str | None = None, *, written: int = 0) -> None:
        super().__init__(message)
        self.written = written
        # RFC 9110: when to try again. Storage that is down is usually back within seconds
        # (a restarted gateway); the client then asks for the offset (HEAD) and carries on.
        self.headers["Retry-After"] = "5"


class InsufficientStorage(StorageUnavailable):
    """The store's disk is full (ENOSPC) or its quota spent (EDQUOT). Like any storage
    failure, ``written`` is what of the chunk was durably kept; the upload resumes from
    there once space is freed, which takes an operator, not seconds."""

    status = 507
    default_message = "the server's storage is full; nothing past the reported offset was kept; try again later"

    def __init__(self, message: str | None = None, *, written: int = 0) -> None:
        super().__init__(message, written=written)
        self.headers["Retry-After"] = "60"


def disk_full(error: OSError) -> bool:
    """Is ``error`` the file system saying it has no room (rather than any other failure)?"""
    return error.errno in (errno.ENOSPC, errno.EDQUOT)
