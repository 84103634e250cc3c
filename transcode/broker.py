"""The embedded mode's broker: kombu's SQLAlchemy transport on a SQLite file, polling
often enough that a chain of short steps does not wait a second between each one."""

from __future__ import annotations

from kombu.transport.sqlalchemy import Transport


class SQLiteTransport(Transport):
    # kombu passes this transport's options straight to create_engine, so the interval
    # cannot be set as an option; it is set here instead.
    polling_interval = 0.1
