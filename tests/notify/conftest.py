"""Fixtures of the alert tests: the notification sink, configurations pointed at it, fresh stores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from connector.config.loader import RelayConfig, load_config
from connector.store import migrate
from connector.store.db import create_engine_for
from crm_sandbox.notify import NotifySandbox
from tests.support.databases import fresh_postgres_schema

ALERT_VARIABLES = frozenset({
    "RELAY_SMTP_HOST", "RELAY_SMTP_PORT", "RELAY_SMTP_SECURITY", "RELAY_SMTP_USERNAME", "RELAY_SMTP_PASSWORD",
    "RELAY_ALERT_FROM", "RELAY_SLACK_WEBHOOK_URL", "RELAY_SMS_BASE_URL", "RELAY_SMS_ACCOUNT_SID",
    "RELAY_SMS_AUTH_TOKEN", "RELAY_SMS_FROM", "HUBSPOT_PORTAL_ID",
})
"""What alerts.yaml reads: cleared, so a developer's own settings never reach a test."""

PORTAL = "62515"
"""The sandbox HubSpot's portal id (links to its records name it)."""


@pytest.fixture()
def sink() -> Iterator[NotifySandbox]:
    """A running notification sink (HTTP and SMTP on ports the OS picked)."""
    box = NotifySandbox()
    box.start()
    try:
        yield box
    finally:
        box.stop()


def config_for(sink: NotifySandbox | None, **extra: str) -> RelayConfig:
    """The shipped configuration, its alert channels pointed at ``sink`` (none: no channel configured)."""
    env: dict[str, str] = {k: v for k, v in os.environ.items() if k not in ALERT_VARIABLES}
    if sink is not None:
        env.update(sink.client_settings().env)
    env["HUBSPOT_PORTAL_ID"] = PORTAL
    env.update(extra)
    return load_config(env=env)


@pytest.fixture()
def config(sink: NotifySandbox) -> RelayConfig:
    return config_for(sink)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated store, once per backend (PostgreSQL when RELAY_TEST_POSTGRES_URL is set)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'relay.db'}"
        yield from _migrated(url)
    else:
        with fresh_postgres_schema() as url:
            yield from _migrated(url)


def _migrated(url: str) -> Iterator[Engine]:
    engine = create_engine_for(url)
    migrate.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()
