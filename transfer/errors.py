"""Every protocol error the tus handler can answer with, each carrying its HTTP status.

Handlers and stores raise these; the handler turns them into a response with a plain-text
body that tells the client what went wrong. Nothing else produces an error response.
"""

from __future__ import annotations


class TusError(Exception):
    status: int = 500
    default_message = "internal error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        # Extra response headers, e.g. the offset that was kept when storage failed.
        self.headers: dict[str, str] = {}
        super().__init__(self.message)


def _error(name: str, status: int, message: str) -> type[TusError]:
    return type(name, (TusError,), {"status": status, "default_message": message})


BadRequest = _error("BadRequest", 400, "bad request")
class Unauthorized(TusError):
    status = 401
    default_message = "a valid bearer token is required"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message)
        self.headers["WWW-Authenticate"] = "Bearer"  # RFC 6750: the scheme that would do


Forbidden = _error("Forbidden", 403, "this operation is not allowed on this upload")
NotFound = _error("NotFound", 404, "upload not found")
MethodNotAllowed = _error("MethodNotAllowed", 405, "method not allowed")
OffsetMismatch = _error("OffsetMismatch", 409, "Upload-Offset does not match the upload's current offset")
Gone = _error("Gone", 410, "upload expired or terminated")
UnsupportedVersion = _error("UnsupportedVersion", 412, "unsupported Tus-Resumable version; this server speaks 1.0.0")
TooLarge = _error("TooLarge", 413, "upload exceeds the maximum size")
UnsupportedMediaType = _error(
    "UnsupportedMediaType", 415, "Content-Type must be application/offset+octet-stream"
)
Locked = _error("Locked", 423, "upload is busy with another request; retry shortly")
HeadersTooLarge = _error(
    "HeadersTooLarge", 431, "request header fields too large"
)
ChecksumMismatch = _error("ChecksumMismatch", 460, "checksum mismatch: the chunk was not stored")
StorageUnavailable = _error(
    "StorageUnavailable", 503, "storage is unavailable; nothing past the reported offset was kept"
)
