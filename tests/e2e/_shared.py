"""Computing an expensive, deterministic fixture value once per test session, across xdist workers."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable
from typing import Any

import pytest


def computed_once(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str,
    compute: Callable[[], Any],
) -> Any:
    """``compute()`` (JSON-ready), run by the first xdist worker that asks and read back by the others.

    Only for values that depend on nothing but their name (same seed, same data): the
    workers then agree on them whoever computes first.
    """
    if not hasattr(request.config, "workerinput"):  # not under xdist: this process is the session
        return compute()
    shared = tmp_path_factory.getbasetemp().parent / f"e2e-{name}.json"
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if shared.exists():
                return json.loads(shared.read_text())
            value = compute()
            shared.write_text(json.dumps(value))
            return value
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
