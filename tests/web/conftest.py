"""A running Relay (``relay serve``'s app on a port the OS picks) over a fresh store."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from connector.config.loader import RelayConfig, load_config
from connector.store.db import session_factory
from connector.store.migrate import open_store
from connector.store.models import InboxRow
from connector.web.app import create_app
from crm_sandbox.hubspot.webhooks import sign_v3
from crm_sandbox.runner import SandboxServer

SECRET = "hubspot-app-secret"
"""The HubSpot app's client secret (HUBSPOT_CLIENT_SECRET); the shipped relay.yaml has none."""
TOKEN = "outbound-token-0f3a"
"""The Salesforce outbound-message endpoint's ?token= (SALESFORCE_OUTBOUND_TOKEN)."""
ORG = "00D5e0000000001EAA"
"""The sandbox org's id (SALESFORCE_ORGANIZATION_ID)."""
WEBHOOK_ENV = {"HUBSPOT_CLIENT_SECRET": SECRET, "SALESFORCE_OUTBOUND_TOKEN": TOKEN, "SALESFORCE_ORGANIZATION_ID": ORG}


@dataclass
class Relay:
    url: str
    engine: Engine
    config: RelayConfig

    def post(self, body: bytes, *, timestamp: int | None = None, headers: dict[str, str] | None = None,
             path: str = "/webhooks/hubspot") -> httpx.Response:
        url = self.url + path
        stamp = str(timestamp if timestamp is not None else int(time.time() * 1000))
        sent = {"Content-Type": "application/json", "X-HubSpot-Signature-v3": sign_v3(SECRET, "POST", url,
                                                                                      body.decode(), stamp),
                "X-HubSpot-Request-Timestamp": stamp, **(headers or {})}
        return httpx.post(url, content=body, headers=sent)

    def stored(self) -> list[dict[str, Any]]:
        with session_factory(self.engine).begin() as session:
            return [dict(row.payload, key=row.event_key, provider=row.provider)
                    for row in session.scalars(select(InboxRow).order_by(InboxRow.id))]


@pytest.fixture()
def relay(tmp_path: Path) -> Iterator[Relay]:
    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    config = load_config(env=dict(os.environ, **WEBHOOK_ENV))
    server = SandboxServer(create_app(config, engine, max_body_bytes=50_000), port=0, name="relay").start()
    try:
        yield Relay(server.url, engine, config)
    finally:
        server.stop()
        engine.dispose()


