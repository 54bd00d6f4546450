"""Engines and sessions for Relay's database, chosen by URL (SQLite or PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

from connector.store.errors import UnsupportedDatabase

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url)


def _configure_sqlite(engine: Engine, url: URL) -> None:
    memory = _is_memory(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN out of pysqlite's hands so that we emit it ourselves (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front: a transaction that reads and then
        # writes waits (busy_timeout) instead of failing with "database is locked".
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine_for(database_url: str | URL, **engine_options: Any) -> Engine:
    """Create an engine for Relay's database.

    SQLite connections get WAL journaling, foreign keys, a busy timeout and
    ``BEGIN IMMEDIATE`` transactions (so concurrent writers queue instead of failing).
    PostgreSQL connections get ``pool_pre_ping``.

    Args:
        database_url: e.g. ``sqlite:///./relay.db`` or
            ``postgresql+psycopg://relay@db.example:5432/relay``.
        **engine_options: Extra keyword arguments for :func:`sqlalchemy.create_engine`.

    Returns:
        A configured engine.

    Raises:
        UnsupportedDatabase: If the URL names another backend or cannot be parsed.
    """
    try:
        url = make_url(database_url)
    except Exception as exc:
        raise UnsupportedDatabase(
            f"database URL {str(database_url)!r} cannot be parsed: {exc}"
        ) from exc
    backend = url.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise UnsupportedDatabase(
            f"database URL {url.render_as_string(hide_password=True)!r} uses {backend!r}; "
            f"Relay supports {', '.join(SUPPORTED_BACKENDS)}"
        )
    if backend == "postgresql":
        engine_options.setdefault("pool_pre_ping", True)
        if url.get_driver_name() == "psycopg2" and "+" not in url.drivername:
            url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url, **engine_options)
    if backend == "sqlite":
        _configure_sqlite(engine, url)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine``.

    Sessions do not expire objects on commit. Repositories never commit: the caller
    owns the transaction, e.g. ``with factory.begin() as session: ...``.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)
