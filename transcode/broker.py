"""The embedded mode's broker: kombu's SQLAlchemy transport on a SQLite file, polling
often enough that a chain of short steps does not wait a second between each one."""

from __future__ import annotations

from typing import Any

from kombu.transport.sqlalchemy import Channel, Transport
from sqlalchemy.exc import IntegrityError


class SQLiteChannel(Channel):
    def _get_or_create(self, queue: str) -> Any:
        # kombu's get-or-create of a queue's row is guarded by a lock of its process only: the
        # embedded worker and its beat (another process) declaring the same new queue at the
        # same moment made one of them fail on the name's UNIQUE constraint, and a worker that
        # fails so stops ("Unrecoverable error"), leaving uploads unprocessed. The row the
        # other process made is the one wanted.
        try:
            return super()._get_or_create(queue)  # type: ignore[misc]
        except IntegrityError:
            self.session.rollback()
            return super()._get_or_create(queue)  # type: ignore[misc]


class SQLiteTransport(Transport):
    Channel = SQLiteChannel
    # kombu passes this transport's options straight to create_engine, so the interval
    # cannot be set as an option; it is set here instead.
    polling_interval = 0.1
