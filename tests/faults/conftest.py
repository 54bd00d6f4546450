"""Fixtures of the fault suite: those of the end-to-end tests (``tests/e2e/conftest.py``).

Both sandbox CRMs over real HTTP on ephemeral ports, a store per backend (a SQLite file
always; a PostgreSQL schema of its own when ``RELAY_TEST_POSTGRES_URL`` is set, and a
failure instead of a skip under ``CI=true`` without it), and the environment pointing
``relay`` at them. Test modules override ``seed_data`` for their own size of world.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import config, crms, engine, relay_env, seed_data, store_url

__all__ = ["config", "crms", "engine", "relay_env", "seed_data", "store_url"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chaos: Relay killed and resumed against faulty CRMs (a CI-sized run; bench/chaos.py scales it)"
    )
