"""Helpers shared by the store's equivalence tests (set-based methods against record-by-record ones)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, settings
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from connector.store import StoreError

from .conftest import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PAGE = 2_000


@contextmanager
def rolled_back(db: Database) -> Iterator[Session]:
    """A transaction that leaves nothing behind, so each example starts from the same state."""
    session = db.sessions()
    session.begin()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def result_of(action: Callable[[], Any]) -> Any:
    """What ``action`` returned, or the type of the store error it raised."""
    try:
        return action()
    except StoreError as exc:
        return type(exc)


def table(session: Session, model: Any, *, without: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every row of a table, as dicts without the ``without`` columns, in primary key order."""
    model_table = model.__table__
    return [
        {name: value for name, value in row._mapping.items() if name not in without}
        for row in session.execute(select(model_table).order_by(*model_table.primary_key.columns))
    ]


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements the engine sends to the database while the block runs."""
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
