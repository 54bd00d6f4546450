"""Fixtures for the end-to-end tests: both sandbox CRMs over real HTTP, Relay pointed at them.

Every test gets its own pair of sandbox CRMs (seed 7, 150 leads, a fixed anchor, so
the data is the same on every run), its own store (a SQLite file always; a fresh
PostgreSQL schema too when ``RELAY_TEST_POSTGRES_URL`` is set, and a failure instead of
a skip under ``CI=true`` without it, as in ``tests/store``), and the environment that
points ``relay`` at all three.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from connector.config.loader import RelayConfig, load_config
from connector.store.migrate import open_store
from crm_sandbox.seed import SeedData
from tests.support.databases import fresh_postgres_schema

from ._world import LEADS, SEED, Crms, RelayEnv, relay_env_for, running_crms, seed_for


@pytest.fixture(scope="session")
def seed_data() -> SeedData:
    """The sandboxes' data: seed 7, 150 leads, fixed anchor."""
    return seed_for(SEED, LEADS)


@pytest.fixture
def crms(seed_data: SeedData) -> Iterator[Crms]:
    """Both sandbox CRMs, freshly seeded, on ephemeral ports."""
    with running_crms(seed_data) as world:
        yield world


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty store, once per backend: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'relay.db'}"
        return
    with fresh_postgres_schema() as url:  # skips locally, fails under CI=true, when not configured
        yield url


@pytest.fixture
def relay_env(monkeypatch: pytest.MonkeyPatch, crms: Crms, store_url: str, tmp_path: Path) -> RelayEnv:
    """The environment that points Relay at the sandboxes and the store (set in os.environ too)."""
    env = relay_env_for(crms, store_url, tmp_path)
    for name, value in env.overrides.items():
        monkeypatch.setenv(name, value)
    for name in env.removed:
        monkeypatch.delenv(name, raising=False)
    return env


@pytest.fixture
def config(relay_env: RelayEnv) -> RelayConfig:
    """Relay's shipped configuration, loaded with the sandboxes' addresses."""
    return load_config(relay_env.config_dir, relay_env.mappings_dir, env=relay_env.environ())


@pytest.fixture
def engine(relay_env: RelayEnv) -> Iterator[Engine]:
    """The test's store, migrated (as ``relay sync`` would find it)."""
    store = open_store(relay_env.store_url)
    try:
        yield store
    finally:
        store.dispose()
