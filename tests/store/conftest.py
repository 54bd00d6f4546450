"""A fresh, migrated database per test: SQLite always, PostgreSQL when RELAY_TEST_POSTGRES_URL is set.

With ``CI=true`` and no ``RELAY_TEST_POSTGRES_URL``, the PostgreSQL half fails
instead of skipping, so CI cannot pass without exercising PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from connector.store import migrate
from connector.store.db import create_engine_for, session_factory

POSTGRES_URL_VARIABLE = "RELAY_TEST_POSTGRES_URL"


@dataclass
class Database:
    """A migrated test database."""

    backend: str
    url: str
    engine: Engine
    sessions: sessionmaker[Session]


def _postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if url:
        return url
    message = f"{POSTGRES_URL_VARIABLE} is not set, so the PostgreSQL store tests cannot run"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(
            f"{message}; CI must run them (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    pytest.skip(message)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of an empty SQLite database file, not migrated."""
    return f"sqlite:///{tmp_path / 'relay.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of an empty PostgreSQL schema of its own, not migrated; dropped afterwards."""
    base = _postgres_base_url()
    schema = f"relay_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine_for(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


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
