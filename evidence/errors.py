"""Every error a user can see, each with the HTTP status and CLI exit code it produces.

The API and the CLI turn these into a clear message; anything else is a bug.
"""

from __future__ import annotations


class EvidenceError(Exception):
    status = 500
    exit_code = 1

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class InvalidInput(EvidenceError):
    status, exit_code = 400, 2


class Unauthorized(EvidenceError):
    status, exit_code = 401, 4


class Forbidden(EvidenceError):
    status, exit_code = 403, 4


class NotFound(EvidenceError):
    status, exit_code = 404, 3


class Conflict(EvidenceError):
    status, exit_code = 409, 5


class Unavailable(EvidenceError):
    status, exit_code = 503, 6


class NotPrivate(EvidenceError):
    """A file or folder of the service's that others can read and that cannot be fixed:
    the server refuses to start on it."""

    status, exit_code = 500, 1
