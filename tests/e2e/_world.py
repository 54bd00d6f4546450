"""The world an end-to-end test runs in: sandbox CRMs, a store, and the environment for ``relay``."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.seed import SeedData, generate

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = REPO / "config"
SHIPPED_MAPPINGS = REPO / "mappings"
ANCHOR = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
"""The seed's "now": fixed, so every run sees the same data."""
SEED = 7
LEADS = 150
HUBSPOT_TOKEN = "sandbox-token"

# Variables of config/relay.yaml a developer's shell may set; the tests use the defaults.
_CREDENTIAL_VARIABLES = (
    "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET", "SALESFORCE_API_VERSION",
    "HUBSPOT_ACCESS_TOKEN", "HUBSPOT_CLIENT_SECRET",
)


def seed_for(seed: int, leads: int, *, dispositions: bool = False) -> SeedData:
    """The generated sandbox data for ``seed`` and ``leads``, at the fixed anchor.

    Without the dispositions reps set, unless asked: the routing invariants these tests check hold
    for people without one (dispositions.yaml recycles, suppresses and converts the others;
    tests/pipeline/test_dispositions.py checks that).
    """
    return generate(seed=seed, leads=leads, anchor=ANCHOR, dispositions=dispositions)


@dataclass
class Crms:
    """Both sandbox CRMs, running."""

    salesforce: SalesforceSandbox
    hubspot: HubSpotSandbox
    seed: SeedData

    @property
    def salesforce_url(self) -> str:
        assert self.salesforce.server is not None, "the Salesforce sandbox is not running"
        return self.salesforce.server.url

    @property
    def hubspot_url(self) -> str:
        assert self.hubspot.server is not None, "the HubSpot sandbox is not running"
        return str(self.hubspot.server.url)


@contextmanager
def running_crms(
    seed: SeedData, *, salesforce_options: dict[str, Any] | None = None, hubspot_options: dict[str, Any] | None = None
) -> Iterator[Crms]:
    """Start both sandboxes on ephemeral ports with ``seed``; stop them afterwards.

    Args:
        seed: The sandboxes' data.
        salesforce_options: Extra ``SalesforceSandbox`` arguments (e.g. ``daily_limit`` for a benchmark).
        hubspot_options: Extra ``HubSpotSandbox`` arguments (e.g. ``ten_second_limit``).
    """
    salesforce = SalesforceSandbox(seed, **(salesforce_options or {}))
    hubspot = HubSpotSandbox(seed, access_token=HUBSPOT_TOKEN, **(hubspot_options or {}))
    salesforce.start()
    try:
        hubspot.start()
        try:
            yield Crms(salesforce, hubspot, seed)
        finally:
            hubspot.stop()
    finally:
        salesforce.stop()


@dataclass
class RelayEnv:
    """What points Relay at the sandboxes and the store."""

    store_url: str
    config_dir: Path
    mappings_dir: Path
    overrides: dict[str, str] = field(default_factory=dict)
    removed: tuple[str, ...] = _CREDENTIAL_VARIABLES

    def environ(self) -> dict[str, str]:
        """The full environment for ``relay`` (this process's, with the overrides)."""
        env = {k: v for k, v in os.environ.items() if k not in self.removed}
        env.update(self.overrides)
        return env


def relay_env_for(crms: Crms, store_url: str, tmp_path: Path) -> RelayEnv:
    """The environment for a test: sandbox URLs, the store, absolute config directories."""
    env = RelayEnv(store_url=store_url, config_dir=SHIPPED_CONFIG, mappings_dir=SHIPPED_MAPPINGS)
    env.overrides = {
        "SALESFORCE_INSTANCE_URL": crms.salesforce_url,
        "HUBSPOT_BASE_URL": crms.hubspot_url,
        "RELAY_DATABASE_URL": store_url,
        "RELAY_CONFIG_DIR": str(SHIPPED_CONFIG),
        "RELAY_MAPPINGS_DIR": str(SHIPPED_MAPPINGS),
        "RELAY_LOG_LEVEL": "WARNING",
    }
    return env


def config_copy(target: Path, **connections: dict[str, int]) -> Path:
    """A copy of the shipped config/ with settings of some connections changed in relay.yaml.

    Example:
        ``config_copy(tmp_path / "config", salesforce={"page_size": 200, "write_batch_size": 10})``
    """
    shutil.copytree(SHIPPED_CONFIG, target)
    relay_yaml = target / "relay.yaml"
    text = relay_yaml.read_text()
    for connection, settings in connections.items():
        block = re.search(rf"(?ms)^  {re.escape(connection)}:\n.*?(?=^  \S|\Z)", text)
        assert block is not None, f"no connection {connection!r} in {relay_yaml}"
        section = block.group(0)
        for key, value in settings.items():
            section, n = re.subn(rf"(?m)^(    {key}:) *[^#\n]*", rf"\g<1> {value} ", section)
            assert n == 1, f"connection {connection!r} in {relay_yaml} has no single {key!r} to change"
        text = text[: block.start()] + section + text[block.end():]
    relay_yaml.write_text(text)
    return target
