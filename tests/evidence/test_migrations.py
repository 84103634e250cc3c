"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from evidence import migrate
from evidence.db import make_engine
from evidence.models import Base


def test_migrations_match_the_models(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'schema.db'}")
    try:
        migrate.upgrade(engine)
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_the_quick_check_names_the_newest_migration_and_upgrades_what_is_behind(tmp_path: Path) -> None:
    """migrate.HEAD is the newest revision; a schema behind it is upgraded, one at it left alone."""
    from alembic import command
    from alembic.script import ScriptDirectory

    config = migrate.alembic_config()
    assert ScriptDirectory.from_config(config).get_heads() == [migrate.HEAD]
    engine = make_engine(f"sqlite:///{tmp_path / 'behind.db'}")
    try:
        assert not migrate.at_head(engine)  # a new database: no alembic_version yet
        migrate.upgrade(engine)
        assert migrate.at_head(engine)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0007")  # behind by two: 0008 adds the columns checked below
        assert not migrate.at_head(engine)
        assert "lease_holder" not in {c["name"] for c in inspect(engine).get_columns("items")}
        migrate.upgrade(engine)
        assert migrate.at_head(engine)
        assert "lease_holder" in {c["name"] for c in inspect(engine).get_columns("items")}
    finally:
        engine.dispose()
