"""A fresh, migrated database per test: SQLite always, PostgreSQL when RELAY_TEST_POSTGRES_URL is set.

With ``CI=true`` and no ``RELAY_TEST_POSTGRES_URL``, the PostgreSQL half fails
instead of skipping, so CI cannot pass without exercising PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connector.store import migrate
from connector.store.db import create_engine_for, session_factory
from tests.support.databases import fresh_postgres_schema


@dataclass
class Database:
    """A migrated test database."""

    backend: str
    url: str
    engine: Engine
    sessions: sessionmaker[Session]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of an empty SQLite database file, not migrated."""
    return f"sqlite:///{tmp_path / 'relay.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of an empty PostgreSQL schema of its own, not migrated; dropped afterwards."""
    with fresh_postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest) -> str:
    """URL of an empty, unmigrated database, once per backend."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def db(empty_url: str) -> Iterator[Database]:
    """A freshly migrated database, once per backend."""
    engine = create_engine_for(empty_url)
    migrate.upgrade(engine)
    try:
        yield Database(engine.dialect.name, empty_url, engine, session_factory(engine))
    finally:
        engine.dispose()
