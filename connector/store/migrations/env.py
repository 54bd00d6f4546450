"""Alembic environment: runs Relay's migrations on the connection given by ``connector.store.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from connector.store.db import create_engine_for
from connector.store.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations on the connection handed over by the caller, or on ``sqlalchemy.url``."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no database for the migrations: use connector.store.migrate.upgrade(url) "
            "or set sqlalchemy.url"
        )
    engine = create_engine_for(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run them on a database")
run_migrations_online()
