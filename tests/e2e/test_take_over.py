"""``--take-over`` never takes over a live run unless forced, and a run taken over stops cleanly.

A live run beats its heartbeat from a thread of its own, so a slow request (here: a
run held between two objects) does not make it look dead.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from connector.config.loader import load_config
from connector.pipeline.heartbeat import SyncTakenOver
from connector.pipeline.summary import NoProgress
from connector.pipeline.sync import run_sync
from connector.store.db import session_factory
from connector.store.errors import SyncAlreadyRunning
from connector.store.models import SyncStatus
from connector.store.repositories import Repositories

from ._cli import relay
from ._world import Crms, RelayEnv


class HeldAfterAccounts(NoProgress):
    """Holds the run after its Account page, as a CRM that takes minutes to answer would."""

    def __init__(self) -> None:
        self.held = threading.Event()
        self.release = threading.Event()

    def page_done(self, object_name: str, records: int) -> None:
        if object_name == "Account" and not self.held.is_set():
            self.held.set()
            assert self.release.wait(120), "the test never released the held run"


def _runs(engine: Engine) -> list[Any]:
    with session_factory(engine)() as session:
        return Repositories(session).sync_runs.recent("salesforce", limit=10)


def test_a_live_run_is_not_taken_over_without_force_and_stops_cleanly_when_forced(
    relay_env: RelayEnv, crms: Crms, engine: Engine
) -> None:
    config = load_config(relay_env.config_dir, relay_env.mappings_dir, env=relay_env.environ())
    held = HeldAfterAccounts()
    outcome: dict[str, BaseException | None] = {}

    def first_run() -> None:
        try:
            run_sync(config, "salesforce", engine, progress=held, heartbeat_every=0.1)
            outcome["error"] = None
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=first_run)
    thread.start()
    try:
        assert held.held.wait(60), "the first run never reached its Account page"
        (live,) = _runs(engine)
        time.sleep(0.5)  # longer than the heartbeat interval: the thread must have beaten meanwhile
        (still,) = _runs(engine)
        assert still.heartbeat_at > live.heartbeat_at, "a held run must keep its heartbeat fresh"

        refused = relay("sync", "salesforce", "--take-over")
        assert refused.exit_code == 3, refused.output
        assert "--force" in " ".join(refused.stderr.split())
        with pytest.raises(SyncAlreadyRunning):
            run_sync(config, "salesforce", engine, take_over=True)

        summary = run_sync(config, "salesforce", engine, take_over=True, force=True)
        assert summary.write_failures == []
    finally:
        held.release.set()
        thread.join(120)
    assert isinstance(outcome["error"], SyncTakenOver), outcome
    statuses = {run.id: run.status for run in _runs(engine)}
    assert statuses == {live.id: SyncStatus.CRASHED, summary.run_id: SyncStatus.SUCCEEDED}
