"""Fresh databases for tests: SQLite files always, PostgreSQL schemas when configured.

With ``CI=true`` and no ``RELAY_TEST_POSTGRES_URL`` (or ``RELAY_TEST_REDIS_URL``), the
PostgreSQL (Redis) tests fail instead of skipping, so CI cannot pass without them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from connector.store.db import create_engine_for

POSTGRES_URL_VARIABLE = "RELAY_TEST_POSTGRES_URL"
REDIS_URL_VARIABLE = "RELAY_TEST_REDIS_URL"


def _required(variable: str, what: str, example: str) -> str:
    value = os.environ.get(variable)
    if value:
        return value
    message = f"{variable} is not set, so the {what} tests cannot run"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI must run them (e.g. {example})")
    pytest.skip(message)


def postgres_base_url() -> str:
    """The PostgreSQL server to test against (skip locally, fail in CI, when unset)."""
    return _required(POSTGRES_URL_VARIABLE, "PostgreSQL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def redis_url() -> str:
    """The Redis server to test against (skip locally, fail in CI, when unset)."""
    return _required(REDIS_URL_VARIABLE, "Redis", "redis://127.0.0.1:6379/15")


@contextmanager
def fresh_postgres_schema() -> Iterator[str]:
    """URL of an empty PostgreSQL schema of its own, dropped afterwards."""
    base = postgres_base_url()
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
