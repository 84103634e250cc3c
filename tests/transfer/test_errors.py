"""transfer.errors: the one list of protocol errors, each with its status and a message a
client can act on, and what each carries besides."""

from __future__ import annotations

import errno
import os

import pytest

from transfer import errors

STATUSES = {
    errors.BadRequest: 400, errors.Unauthorized: 401, errors.Forbidden: 403, errors.NotFound: 404,
    errors.MethodNotAllowed: 405, errors.OffsetMismatch: 409, errors.Gone: 410, errors.UnsupportedVersion: 412,
    errors.TooLarge: 413, errors.UnsupportedMediaType: 415, errors.Locked: 423, errors.HeadersTooLarge: 431,
    errors.ChecksumMismatch: 460, errors.StorageUnavailable: 503, errors.InsufficientStorage: 507,
}


def test_every_error_is_listed_with_its_status() -> None:
    declared = {value for value in vars(errors).values()
                if isinstance(value, type) and issubclass(value, errors.TusError) and value is not errors.TusError}
    assert declared == set(STATUSES)


@pytest.mark.parametrize(("error", "status"), STATUSES.items())
def test_each_error_has_its_status_and_a_default_message(error: type[errors.TusError], status: int) -> None:
    raised = error()
    assert raised.status == status
    assert raised.message == error.default_message and raised.message
    assert str(error("what happened")) == error("what happened").message == "what happened"


def test_a_401_names_the_scheme_that_would_do() -> None:
    assert errors.Unauthorized().headers == {"WWW-Authenticate": "Bearer"}
    assert errors.Forbidden().headers == {}


def test_storage_unavailable_says_how_much_of_the_chunk_was_kept() -> None:
    assert errors.StorageUnavailable().written == 0
    assert errors.StorageUnavailable("S3 went away", written=5 * 1024 * 1024).written == 5 * 1024 * 1024


def test_a_full_disk_is_507_and_says_how_much_was_kept() -> None:
    full = errors.InsufficientStorage(written=3)
    assert full.written == 3 and full.headers["Retry-After"] == "60"
    # The handler records what was kept exactly as for any storage failure.
    assert isinstance(full, errors.StorageUnavailable)


@pytest.mark.parametrize(("code", "full"), [(errno.ENOSPC, True), (errno.EDQUOT, True), (errno.EIO, False)])
def test_disk_full_tells_no_room_from_other_failures(code: int, full: bool) -> None:
    assert errors.disk_full(OSError(code, os.strerror(code))) is full
