from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from registry.db import downgrade, upgrade
from registry.tables import Base


def test_migrations_match_the_tables(engine: Engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent_and_downgrade_reverses(engine: Engine) -> None:
    upgrade(engine)
    assert {"devices", "programs", "enrollments", "enrollment_log", "telemetry", "api_keys"} <= set(
        inspect(engine).get_table_names()
    )
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert "telemetry" in inspect(engine).get_table_names()
