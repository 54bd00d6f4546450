"""Engines and sessions for Relay's database, chosen by URL (SQLite or PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from connector.store._types import json_text
from connector.store.errors import UnsupportedDatabase

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_MS = 30_000
_POSTGRES_DEFAULT_DRIVER = "postgresql+psycopg"
_PASSWORD = re.compile(r":[^:@/\s]*@")


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


READ_ONLY = "relay_read_only"
"""Execution option of a connection (or engine) that only reads: on SQLite its transactions begin deferred."""


def _configure_sqlite(engine: Engine, *, memory: bool, immediate: bool) -> None:
    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

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
        # A read (READ_ONLY set on the connection or engine) begins deferred: under WAL it reads its
        # snapshot beside a writer instead of queueing for, and holding, the write lock.
        deferred = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if deferred else begin)


def _parse(database_url: str | URL) -> URL:
    try:
        url = make_url(database_url)
    except Exception as exc:
        shown = _PASSWORD.sub(":***@", str(database_url))
        raise UnsupportedDatabase(
            f"database URL {shown!r} cannot be parsed ({exc}); expected e.g. "
            "sqlite:///./relay.db or postgresql+psycopg://user@host:5432/relay"
        ) from exc
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername=_POSTGRES_DEFAULT_DRIVER)
    return url


def create_engine_for(
    database_url: str | URL, *, sqlite_immediate: bool = True, **engine_options: Any
) -> Engine:
    """Create an engine for Relay's database.

    SQLite connections get WAL journaling, foreign keys and a busy timeout; their
    transactions start with ``BEGIN IMMEDIATE``, which takes the write lock up front,
    so concurrent writers queue (up to the busy timeout) instead of failing with
    "database is locked" when a read turns into a write. An in-memory SQLite URL
    (``sqlite://``) shares one connection, so it can be migrated and then used.
    PostgreSQL URLs without a driver use psycopg 3 and get ``pool_pre_ping``. JSON
    columns are written with :func:`connector.store._types.json_text` (lone surrogates
    become U+FFFD). Nothing connects yet: :func:`connector.store.migrate.open_store`
    checks the database and turns driver errors into one-line store errors.

    Args:
        database_url: e.g. ``sqlite:///./relay.db`` or
            ``postgresql+psycopg://relay@db.example:5432/relay``.
        sqlite_immediate: ``False`` for a read-mostly SQLite engine (e.g. a
            dashboard), whose transactions then take the write lock only when writing.
        **engine_options: Extra keyword arguments for :func:`sqlalchemy.create_engine`.

    Returns:
        A configured engine.

    Raises:
        UnsupportedDatabase: If the URL names another backend or cannot be parsed.
    """
    url = _parse(database_url)
    backend = url.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise UnsupportedDatabase(
            f"database URL {url.render_as_string(hide_password=True)!r} uses {backend!r}; "
            f"Relay supports {', '.join(SUPPORTED_BACKENDS)}"
        )
    # JSON columns: lone surrogates (invalid Unicode) become U+FFFD instead of failing the row.
    engine_options.setdefault("json_serializer", json_text)
    if backend == "postgresql":
        engine_options.setdefault("pool_pre_ping", True)
        return create_engine(url, **engine_options)
    memory = _is_memory(url)
    if memory:
        engine_options.setdefault("poolclass", StaticPool)
        engine_options.setdefault("connect_args", {"check_same_thread": False})
    engine = create_engine(url, **engine_options)
    _configure_sqlite(engine, memory=memory, immediate=sqlite_immediate)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine``.

    Sessions do not expire objects on commit. Repositories never commit: the caller
    owns the transaction, e.g. ``with factory.begin() as session: ...``.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)


def serialize_decisions(session: Session, connection: str) -> None:
    """Hold the connection's decision lock until ``session``'s transaction ends.

    Runs of one connection may go on side by side (a scheduled sync and events runs on
    several workers): their CRM reads and writes overlap, but each page's decisions read
    the store (a person's other records, active assignments, round-robin positions) and
    write it, so those transactions must not interleave, or two runs could each give one
    person an owner, or one rep the same turn. On PostgreSQL this takes a
    transaction-level advisory lock keyed by the connection; SQLite transactions start
    with ``BEGIN IMMEDIATE`` and are serialised already.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"relay.decide/{connection}"})


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction, always rolled back: REPEATABLE READ on PostgreSQL, a deferred BEGIN on SQLite
    (its WAL snapshot), so every query of a report or a dashboard page sees the same moment and takes
    no write lock."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        else:
            conn = conn.execution_options(**{READ_ONLY: True})  # SQLite: no write lock for a read
        with conn.begin() as transaction:
            try:
                yield conn
            finally:
                transaction.rollback()


@contextmanager
def held_alone(engine: Engine, name: str) -> Iterator[bool]:
    """Hold the store-wide lock ``name`` for the block if nobody else holds it; yields whether it is held.

    On PostgreSQL a session-level advisory lock on a connection of its own (taken without waiting,
    released at the end, and by the server if the process dies): two processes on two machines
    never run the block at once. SQLite stores live on one machine, where the callers' own locks
    (the job queue's) serialise; there it always yields ``True``.
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as connection:
        held = bool(connection.execute(text("SELECT pg_try_advisory_lock(hashtext(:key))"), {"key": name}).scalar())
        connection.commit()
        try:
            yield held
        finally:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": name})
                connection.commit()
