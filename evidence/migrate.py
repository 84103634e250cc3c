"""Bring the database schema up to date (run automatically when the server starts).

Most starts (the server's, every CLI command's) find the schema already at the newest revision:
one plain query says so, and Alembic (about a tenth of a CLI command's start-up) is imported
only when there is something to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision in migrations/versions (tests/evidence/test_migrations.py checks it is).
# Left behind by a new migration, it would only cost the quick path, never skip an upgrade.
HEAD = "0012"
_PG_MIGRATION_LOCK = 7_301_894_001  # any constant: serialises servers starting together


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def at_head(engine: Engine) -> bool:
    """Whether the schema is at :data:`HEAD` already (a database that cannot be reached raises)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars()) == [HEAD]


def upgrade(engine: Engine) -> str | None:
    """Upgrade the schema to :data:`HEAD`. The revision a database in use was upgraded from,
    for the custody record (:meth:`evidence.runtime.Runtime.upgrade_schema`); None when it was
    at HEAD already or new (no evidence yet whose record an upgrade could touch)."""
    if at_head(engine):
        return None
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        before = _revision(connection)  # under the lock: a server that upgraded meanwhile leaves HEAD
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before if before != HEAD else None


def _revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    found: str | None = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return found
