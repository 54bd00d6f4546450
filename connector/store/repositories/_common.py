"""Helpers shared by the repositories: clock, input checks, portable upserts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, Table, TextClause
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from connector.store._types import NaiveDatetimeError, require_aware, scrub_text, to_json_document
from connector.store.errors import InvalidStoreValue, UnsupportedDatabase
from connector.store.models import Base

E = TypeVar("E", bound=StrEnum)


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def when(value: datetime | None, where: str) -> datetime:
    """Return ``value`` in UTC (or now, if ``None``); refuse naive datetimes, naming ``where``."""
    if value is None:
        return utcnow()
    return aware(value, where)


def aware(value: datetime, where: str) -> datetime:
    """Return ``value`` in UTC; raise :class:`InvalidStoreValue` naming ``where`` if it is naive."""
    try:
        return require_aware(value, where)
    except (NaiveDatetimeError, TypeError) as exc:
        raise InvalidStoreValue(str(exc)) from exc


def text_value(value: object, where: str, max_length: int) -> str:
    """Return ``value`` if it is a non-blank string of at most ``max_length`` characters.

    Lone surrogates (invalid Unicode) come back as U+FFFD (:func:`scrub_text`), so the
    database never refuses the text.
    """
    if not isinstance(value, str):
        raise InvalidStoreValue(f"{where}: expected text, got {type(value).__name__} {value!r}")
    value = scrub_text(value)
    if not value.strip():
        raise InvalidStoreValue(f"{where}: must not be empty")
    if len(value) > max_length:
        raise InvalidStoreValue(
            f"{where}: {len(value)} characters is longer than the {max_length} allowed ({value[:40]!r}...)"
        )
    return value


def optional_text(value: object | None, where: str, max_length: int) -> str | None:
    """Like :func:`text_value`, but ``None`` passes through."""
    return None if value is None else text_value(value, where, max_length)


class TextChecks:
    """:func:`text_value` with a memory of the texts that passed, for one batch.

    A page repeats its connection, object and action names thousands of times; each
    distinct text is checked once. Use it for such repeated fields only (a CRM id is
    checked once anyway). A text that passed passes again: the check depends on the
    text and the length allowed, never on ``where``, which only names it in an error.
    """

    def __init__(self) -> None:
        self._passed: dict[tuple[str, int], str] = {}

    def text(self, value: object, where: str, max_length: int) -> str:
        """:func:`text_value`, remembered."""
        if type(value) is str:
            passed = self._passed.get((value, max_length))
            if passed is not None:
                return passed
            checked = text_value(value, where, max_length)
            self._passed[(value, max_length)] = checked
            return checked
        return text_value(value, where, max_length)

    def optional(self, value: object | None, where: str, max_length: int) -> str | None:
        """:func:`optional_text`, remembered."""
        return None if value is None else self.text(value, where, max_length)


def enum_value(enum: type[E], value: object, where: str) -> E:
    """Return ``value`` as a member of ``enum``; the error lists the allowed values."""
    if type(value) is enum:  # already a member: the common case, nothing to look up
        return value
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    allowed = ", ".join(member.value for member in enum)  # only for the message
    raise InvalidStoreValue(f"{where}: {value!r} is not one of {allowed}")


def json_document(value: Any, where: str) -> Any:
    """Return ``value`` as plain JSON data; raise :class:`InvalidStoreValue` naming ``where``."""
    try:
        return to_json_document(value, where)
    except TypeError as exc:
        raise InvalidStoreValue(str(exc)) from exc


def json_object(value: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """Return ``value`` as a JSON object (``{}`` for ``None``); a fresh copy, never ``value`` itself."""
    if value is None:
        return {}
    if type(value) is not dict:
        if not isinstance(value, Mapping):
            raise InvalidStoreValue(f"{where}: expected a mapping, got {type(value).__name__}")
        value = dict(value)
    document = json_document(value, where)
    assert isinstance(document, dict)
    return document


def _insert_for(session: Session, model: type[Base]) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise UnsupportedDatabase(f"the store supports SQLite and PostgreSQL, not {dialect!r}")


def insert_or_ignore(
    session: Session,
    model: type[Base],
    values: Mapping[str, Any],
    conflict_columns: Sequence[str],
    returning: Sequence[Any],
    conflict_where: ColumnElement[bool] | TextClause | None = None,
) -> Row[Any] | None:
    """Insert one row unless a unique index on ``conflict_columns`` already holds its key.

    Uses ``INSERT ... ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL), so a conflict
    neither raises nor aborts the caller's transaction.

    Returns:
        The ``returning`` columns of the new row, or ``None`` if the row already existed.
    """
    statement = (
        _insert_for(session, model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(conflict_columns), index_where=conflict_where)
        .returning(*returning)
    )
    row: Row[Any] | None = session.execute(statement).first()
    return row


def upsert(
    session: Session,
    model: type[Base],
    values: Mapping[str, Any],
    conflict_columns: Sequence[str],
    update_columns: Sequence[str],
) -> None:
    """Insert one row, or update ``update_columns`` of the row holding the same key."""
    statement = _insert_for(session, model).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=list(conflict_columns),
        set_={column: statement.excluded[column] for column in update_columns},
    )
    session.execute(statement)


def is_postgresql(session: Session) -> bool:
    """Return whether the session talks to PostgreSQL (row locks are meaningful there)."""
    return session.get_bind().dialect.name == "postgresql"


# Rows per IN list or executemany batch: far below SQLite's and PostgreSQL's parameter limits.
CHUNK = 500

T = TypeVar("T")


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, for executemany statements that skip the ORM."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def chunked(items: Sequence[T], size: int = CHUNK) -> list[Sequence[T]]:
    """Split ``items`` into consecutive slices of at most ``size`` (none for an empty input)."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def insert_many_or_ignore(
    session: Session,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    conflict_columns: Sequence[str],
    returning: Sequence[str] = (),
    conflict_where: TextClause | None = None,
) -> list[Row[Any]]:
    """Insert many rows in one executemany, skipping those whose key a unique index already holds.

    A Core ``INSERT ... ON CONFLICT DO NOTHING`` on the model's table (SQLite and
    PostgreSQL) with a list of parameter dicts: no ORM unit of work, no per-row
    statement construction.

    Args:
        session: The caller's session (transaction).
        model: The table's model.
        rows: One dict of column values per row; every dict has the same keys.
        conflict_columns: The unique index that decides "already there"; empty for any
            unique index or primary key (``ON CONFLICT DO NOTHING`` without a target).
        returning: Columns to return for the rows actually inserted.
        conflict_where: The predicate of a partial unique index (as literal SQL text).

    Returns:
        The ``returning`` columns of the inserted rows (empty if ``returning`` is empty).
    """
    if not rows:
        return []
    table = table_of(model)
    statement = _table_insert_for(session, table).on_conflict_do_nothing(
        index_elements=list(conflict_columns) or None, index_where=conflict_where
    )
    if returning:
        statement = statement.returning(*(table.c[name] for name in returning))
        return list(session.execute(statement, [dict(row) for row in rows]).all())
    session.execute(statement, [dict(row) for row in rows])
    return []


def _table_insert_for(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise UnsupportedDatabase(f"the store supports SQLite and PostgreSQL, not {dialect!r}")
