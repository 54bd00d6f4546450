"""Is Relay's database there, reachable and sound? One-line errors instead of driver tracebacks.

:func:`check_store` runs when a command opens the store (see
:func:`connector.store.migrate.open_store`): SQLite's ``PRAGMA quick_check`` on a file,
a connection and a look at the migration table on PostgreSQL. :func:`store_errors`
turns what the drivers raise (missing directory, read-only file, not a database,
connection refused, unknown database, failed authentication...) into one
:class:`~connector.store.errors.StoreUnavailable` naming the URL, the problem and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DatabaseError, OperationalError

from connector.store.errors import StoreCorrupted, StoreUnavailable

URL_VARIABLE = "RELAY_DATABASE_URL"
_FIX_URL = f"set {URL_VARIABLE} to Relay's database"


def shown_url(database: str | URL | Engine) -> str:
    """The database URL as errors show it: as given, with the password masked."""
    if isinstance(database, Engine):
        database = database.url
    try:
        url = make_url(database)
    except Exception:  # an unparsable URL is named by create_engine_for; show what we can
        return "<database URL>"
    return url.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The absolute path of a SQLite database file, or ``None`` for an in-memory database."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if database in (None, "", ":memory:") or url.query.get("mode") == "memory":
        return None
    if database.startswith("file:"):  # a SQLite URI filename (``?uri=true``)
        database = database[len("file:") :].split("?", 1)[0]
    return Path(os.path.abspath(database))


def _recovery(path: Path) -> str:
    return (
        f"restore it from a backup, or move it aside (mv {path} {path}.corrupt) and run "
        "`relay sync --full`, which rebuilds the store and re-adopts the relay ids the CRM holds"
    )


def preflight_sqlite(url: URL) -> None:
    """Check, before connecting, that a SQLite file can be opened or created where the URL says.

    Raises:
        StoreUnavailable: naming the directory or file that is missing, not a directory,
            or cannot be read or written.
    """
    path = sqlite_path(url)
    if path is None:
        return
    shown = url.render_as_string(hide_password=True)
    directory = path.parent
    if not directory.exists():
        raise StoreUnavailable(shown, f"directory {directory} does not exist", f"create it or {_FIX_URL}")
    if not directory.is_dir():
        raise StoreUnavailable(shown, f"{directory} is not a directory", _FIX_URL)
    if path.is_dir():
        raise StoreUnavailable(shown, f"{path} is a directory, not a database file", _FIX_URL)
    if path.exists():
        if not os.access(path, os.R_OK):
            raise StoreUnavailable(
                shown, f"{path} cannot be read (permission denied)", "give this user read and write access to it"
            )
        if not os.access(path, os.W_OK):
            raise StoreUnavailable(
                shown, f"{path} is read-only", "give this user write access to it, or " + _FIX_URL
            )
    elif not os.access(directory, os.W_OK | os.X_OK):
        raise StoreUnavailable(
            shown,
            f"cannot create {path}: directory {directory} is not writable",
            "make it writable by this user, or " + _FIX_URL,
        )


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__


def _sqlite_problem(shown: str, path: Path | None, message: str) -> StoreUnavailable | None:
    lowered = message.lower()
    where = str(path) if path is not None else "the in-memory database"
    if "file is not a database" in lowered:
        assert path is not None
        return StoreCorrupted(
            shown,
            f"{where} is not a SQLite database, or its header is damaged ({message})",
            f"if it is Relay's store, {_recovery(path)}; otherwise {_FIX_URL}",
        )
    if "malformed" in lowered or "corrupt" in lowered:
        assert path is not None
        return StoreCorrupted(shown, f"{where} is damaged ({message})", _recovery(path))
    if "readonly" in lowered or "read-only" in lowered:
        return StoreUnavailable(
            shown,
            f"{where} is read-only ({message})",
            "give this user write access to the file and its directory (SQLite writes -wal and -shm files "
            "beside it), or " + _FIX_URL,
        )
    if "unable to open" in lowered:
        return StoreUnavailable(
            shown,
            f"cannot open {where} ({message})",
            "check that its directory exists and this user may read and write there, or " + _FIX_URL,
        )
    if "locked" in lowered or "busy" in lowered:
        return StoreUnavailable(
            shown, f"{where} stayed locked by another process ({message})", "wait for it to finish and retry"
        )
    if "disk i/o error" in lowered or "disk is full" in lowered or "database or disk is full" in lowered:
        return StoreUnavailable(
            shown, f"{where} cannot be read or written ({message})", "check the disk (space, errors) and retry"
        )
    return None  # e.g. "no such table": a problem of the schema, not of reaching the file


def _postgres_problem(url: URL, message: str) -> StoreUnavailable:
    shown = url.render_as_string(hide_password=True)
    message = message.split("FATAL:")[-1].strip()  # psycopg prefixes "connection failed: connection to ..."
    lowered = message.lower()
    server = f"{url.host or 'localhost'}:{url.port or 5432}"
    if "does not exist" in lowered and "database" in lowered:
        return StoreUnavailable(
            shown,
            f"database {url.database!r} does not exist on {server}",
            f"create it (createdb {url.database}) or {_FIX_URL}",
        )
    if (
        "authentication failed" in lowered
        or "no password supplied" in lowered
        or ("role" in lowered and "does not exist" in lowered)
        or "pg_hba.conf" in lowered
    ):
        return StoreUnavailable(
            shown,
            f"the server {server} refused user {url.username!r} ({message})",
            f"check the user and password in {URL_VARIABLE}",
        )
    if "connection refused" in lowered:
        return StoreUnavailable(
            shown,
            f"no PostgreSQL server accepts connections at {server} (connection refused)",
            f"start it, or fix the host and port in {URL_VARIABLE}",
        )
    if "translate host name" in lowered or "name or service not known" in lowered or "nodename" in lowered:
        return StoreUnavailable(shown, f"unknown host {url.host!r}", f"fix the host in {URL_VARIABLE}")
    if "timeout" in lowered or "timed out" in lowered:
        return StoreUnavailable(
            shown, f"connecting to {server} timed out", f"check the network and the host and port in {URL_VARIABLE}"
        )
    return StoreUnavailable(shown, f"cannot use the database at {server} ({message})", f"check {URL_VARIABLE}")


def translate(database: str | URL | Engine, exc: BaseException) -> StoreUnavailable | None:
    """The one-line store error for what a driver raised, or ``None`` if it is not a store problem.

    Args:
        database: The URL or engine the error came from.
        exc: What SQLAlchemy or the driver raised.

    Returns:
        A :class:`StoreUnavailable` (or :class:`StoreCorrupted`), or ``None`` for errors
        that are not about reaching or reading the database (e.g. a constraint violation).
    """
    url = database.url if isinstance(database, Engine) else make_url(database)
    if not isinstance(exc, DatabaseError):
        return None
    message = _first_line(exc)
    damaged = any(word in message.lower() for word in ("not a database", "malformed", "corrupt"))
    if not isinstance(exc, OperationalError) and not damaged:
        return None  # e.g. an IntegrityError: a bug or a race, not a store that cannot be used
    if url.get_backend_name() == "sqlite":
        return _sqlite_problem(url.render_as_string(hide_password=True), sqlite_path(url), message)
    return _postgres_problem(url, message)


@contextmanager
def store_errors(database: str | URL | Engine) -> Iterator[None]:
    """Turn the driver errors of opening, migrating or checking the store into one-line :class:`StoreUnavailable`.

    Errors that are not about reaching or reading the database pass through unchanged.
    """
    try:
        yield
    except DatabaseError as exc:
        problem = translate(database, exc)
        if problem is None:
            raise
        raise problem from exc


def check_store(engine: Engine) -> str | None:
    """Check that Relay's database is reachable and sound; refuse a damaged one.

    SQLite: the file must be where the URL says and pass ``PRAGMA quick_check`` (the
    structural check without the index cross-check, far cheaper than ``integrity_check``).
    PostgreSQL: a connection and a read of the migration table.

    Args:
        engine: An engine from :func:`connector.store.db.create_engine_for`.

    Returns:
        The migration revision the database is at (``None`` if never migrated).

    Raises:
        StoreCorrupted: If the SQLite file fails the check or is not a database; the
            message names the file and how to recover.
        StoreUnavailable: If the database cannot be opened or reached.
    """
    url = engine.url
    if url.get_backend_name() == "sqlite":
        preflight_sqlite(url)
    with store_errors(engine), engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            problems = [row[0] for row in connection.execute(text("PRAGMA quick_check(5)"))]
            if problems != ["ok"]:
                path = sqlite_path(url)
                where = str(path) if path is not None else "the in-memory database"
                found = [" ".join(str(problem).replace("*** in database main ***", "").split()) for problem in problems]
                detail = "; ".join(problem for problem in found if problem)[:200]
                raise StoreCorrupted(
                    url.render_as_string(hide_password=True),
                    f"{where} failed SQLite's integrity check ({detail})",
                    _recovery(path) if path is not None else "start again with a new database",
                )
        revision = MigrationContext.configure(connection).get_current_revision()
        connection.rollback()
    return revision
