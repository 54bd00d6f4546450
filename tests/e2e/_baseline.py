"""What a fault-free sync of both CRMs leaves behind, to compare a faulty run with."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from connector.adapters.retry import RetryPolicy
from connector.config.loader import RelayConfig, load_config
from connector.pipeline.connections import open_adapter
from connector.pipeline.summary import SyncProgress, SyncSummary
from connector.pipeline.sync import run_sync
from connector.store.migrate import open_store
from crm_sandbox.seed import SeedData

from ._crm import CrmView, read_crm
from ._world import SHIPPED_CONFIG, SHIPPED_MAPPINGS, Crms, running_crms

MAX_TEST_WAIT = 0.02
"""Seconds actually slept per retry wait in tests (the wait asked for is recorded)."""


@dataclass
class RecordedWaits:
    """A retry ``sleep`` that records each wait the policy asked for and sleeps at most a moment."""

    asked: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        time.sleep(min(seconds, MAX_TEST_WAIT))


def fast_policy(waits: RecordedWaits) -> RetryPolicy:
    """The adapters' default policy (Retry-After honoured), with waits recorded instead of slept."""
    return RetryPolicy(max_attempts=8, sleep=waits, random=lambda: 0.0)


def config_for(crms: Crms, config_dir: Path = SHIPPED_CONFIG) -> RelayConfig:
    """The configuration in ``config_dir`` (the shipped one by default) pointed at ``crms``."""
    env = {"SALESFORCE_INSTANCE_URL": crms.salesforce_url, "HUBSPOT_BASE_URL": crms.hubspot_url}
    return load_config(config_dir, SHIPPED_MAPPINGS, env=env)


def sync_with_policy(
    config: RelayConfig, connection: str, store: Engine, policy: RetryPolicy,
    progress: SyncProgress | None = None, *, full: bool = False,
) -> SyncSummary:
    """``run_sync`` with an adapter built on ``policy`` (how a test keeps retry waits short)."""
    adapter = open_adapter(config, connection, retry=policy)
    try:
        return run_sync(config, connection, store, adapter=adapter, progress=progress, full=full)
    finally:
        close = getattr(adapter, "close", None)
        if callable(close):
            close()


@dataclass(frozen=True)
class Outcome:
    """Per record: its owner, Relay's fields and its number of open Relay tasks, in each CRM."""

    records: dict[str, dict[str, tuple[object, ...]]]

    def to_json(self) -> dict[str, Any]:
        return {crm: {crm_id: list(o) for crm_id, o in records.items()} for crm, records in self.records.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        return cls({crm: {crm_id: tuple(o) for crm_id, o in records.items()} for crm, records in data.items()})

    @classmethod
    def of(cls, views: Sequence[CrmView]) -> Outcome:
        records: dict[str, dict[str, tuple[object, ...]]] = {}
        for view in views:
            records[view.crm] = {
                p.id: (p.owner_id, p.score, p.category, p.reason, len(view.open_relay_tasks_of(p.id)))
                for p in view.people.values()
            }
        return cls(records)

    def differences(self, other: Outcome, *, ignore: Collection[str] = ()) -> list[str]:
        """Records whose outcome differs (owner, score, category, reason, open tasks)."""
        found = []
        for crm, records in self.records.items():
            for crm_id, expected in records.items():
                got = other.records.get(crm, {}).get(crm_id)
                if crm_id not in ignore and got != expected:
                    found.append(f"{crm} {crm_id}: expected (owner, score, category, reason, tasks) "
                                 f"{expected}, got {got}")
        return found


def fault_free_outcome(
    seed: SeedData, store_dir: Path, connections: Sequence[str] = ("salesforce", "hubspot"),
    config_dir: Path = SHIPPED_CONFIG,
) -> Outcome:
    """Sync ``connections`` in order without faults on fresh sandboxes; what the CRMs then show."""
    with running_crms(seed) as crms:
        config = config_for(crms, config_dir)
        engine = open_store(f"sqlite:///{store_dir / 'baseline.db'}")
        try:
            for connection in connections:
                summary = sync_with_policy(config, connection, engine, fast_policy(RecordedWaits()))
                assert summary.write_failures == [], summary.write_failures
        finally:
            engine.dispose()
        return Outcome.of([read_crm(crms.salesforce, crms.hubspot, c) for c in connections])
