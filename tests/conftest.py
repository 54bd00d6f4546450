"""Settings shared by every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector.adapters.cache import PROCESS_CACHES
from connector.pipeline.sync import forget_field_checks


@pytest.fixture(autouse=True)
def _fresh_process_caches() -> Iterator[None]:
    """Each test starts without the tokens and owners lists an earlier test's adapters cached.

    The caches are process-wide (a worker's runs share them); sandboxes of different tests can
    reuse an ephemeral port with the same credentials, so a cached list would leak between them.
    """
    PROCESS_CACHES.clear()
    forget_field_checks()
    yield
    PROCESS_CACHES.clear()
    forget_field_checks()
