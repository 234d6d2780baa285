"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url``.

    For SQLite the file's folder is created, and foreign keys, WAL and a busy timeout
    are switched on for every connection.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (idempotent)."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    command.downgrade(alembic_config(engine), revision)


def in_list(
    connection_or_session: Any, column: str, values: list[str]
) -> tuple[str, dict[str, Any]]:
    """SQL for ``column IN (values)`` that binds the whole list as one parameter.

    Binding thousands of values one by one costs more to compile and parse than the
    query costs to run. PostgreSQL splits one comma-joined text (cheaper to send than
    an array, whose every element the driver checks for quoting), SQLite reads a JSON
    array. The values must not contain commas (ids and keys here never do).
    """
    bind = (
        connection_or_session.get_bind()
        if hasattr(connection_or_session, "get_bind")
        else connection_or_session
    )
    if bind.dialect.name == "postgresql":
        return (
            f"{column} IN (SELECT unnest(string_to_array(:values, ',')))",
            {"values": ",".join(values)},
        )
    return f"{column} IN (SELECT value FROM json_each(:values))", {"values": json.dumps(values)}
