"""Schema migrations, configured in code (no alembic.ini): ``relay db upgrade`` calls :func:`upgrade`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL

from connector.store.db import create_engine_for
from connector.store.errors import StoreError
from connector.store.health import check_store, preflight_sqlite, shown_url, store_errors

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """Build the Alembic configuration for Relay's migrations.

    Args:
        connection: If given, migrations run on this connection (env.py picks it up).

    Returns:
        An Alembic ``Config`` pointing at ``connector/store/migrations``.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """Return the newest migration revision shipped with this version of Relay."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def _engine(database: str | URL | Engine) -> tuple[Engine, bool]:
    if isinstance(database, Engine):
        return database, False
    engine = create_engine_for(database)
    if engine.url.get_backend_name() == "sqlite":
        preflight_sqlite(engine.url)
    return engine, True


def upgrade(database: str | URL | Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (the newest by default).

    Args:
        database: A database URL (e.g. ``sqlite:///./relay.db``) or an engine.
        revision: Target revision; ``"head"`` for the newest.

    Raises:
        StoreUnavailable: If the database cannot be opened or reached, or is damaged
            (a one-line message naming the URL, the problem and the fix).
    """
    engine, owned = _engine(database)
    try:
        with store_errors(engine), engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)
    finally:
        if owned:
            engine.dispose()


def current_revision(database: str | URL | Engine) -> str | None:
    """Return the revision the database is at, or ``None`` if it was never migrated.

    Raises:
        StoreUnavailable: If the database cannot be opened or reached.
    """
    engine, owned = _engine(database)
    try:
        with store_errors(engine), engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        if owned:
            engine.dispose()


def is_up_to_date(database: str | URL | Engine) -> bool:
    """Return whether the database is at the newest migration shipped with Relay."""
    return current_revision(database) == head_revision()


class DatabaseNotMigrated(StoreError, RuntimeError):
    """The database is at another migration than the one this Relay ships."""


def _known_revision(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic raises its own errors for unknown revisions
        return False


def open_store(database_url: str | URL, *, migrate_empty: bool = True) -> Engine:
    """An engine on Relay's database, checked, and migrated when it is empty.

    ``relay sync`` and ``relay demo`` use this: a fresh database is created on the spot;
    one at an older migration is left alone (``relay db upgrade`` moves it on purpose).
    The database is checked first (:func:`connector.store.health.check_store`): a
    damaged SQLite file is refused before anything reads or writes it.

    Raises:
        DatabaseNotMigrated: when the database is not at the newest migration.
        StoreCorrupted: when the SQLite file fails its integrity check or is not a database.
        StoreUnavailable: when the database cannot be opened or reached (missing
            directory, read-only file, connection refused, unknown database, failed
            authentication); the message is one line: URL, problem, fix.
        UnsupportedDatabase: when the URL names another backend or cannot be parsed.
    """
    engine = create_engine_for(database_url)
    try:
        revision = check_store(engine)
        if revision is None and migrate_empty:
            upgrade(engine)
        elif revision != head_revision():
            newer = revision is not None and not _known_revision(revision)
            raise DatabaseNotMigrated(
                f"{shown_url(engine)}: the database is at migration {revision!r}, this Relay needs "
                f"{head_revision()!r}; "
                + ("it was written by a newer Relay: upgrade Relay" if newer else "run `relay db upgrade`")
            )
    except BaseException:
        engine.dispose()
        raise
    return engine
