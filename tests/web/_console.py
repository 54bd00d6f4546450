"""A running admin API over a store a real sync of both sandboxes filled, with a user of every role."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from connector.config.loader import RelayConfig, load_config
from connector.pipeline.console import Console
from connector.pipeline.context import utc_now
from connector.pipeline.sync import run_sync
from connector.store.db import session_factory
from connector.store.migrate import open_store
from connector.store.models import AssignmentRow
from connector.web.app import create_app
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.runner import SandboxServer
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.seed import generate

ROLES = ("admin", "manager", "rep", "marketing", "read_only")
ANCHOR = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)


@dataclass
class Api:
    url: str
    engine: Engine
    config: RelayConfig
    tokens: dict[str, str]
    """role -> token (the rep's is ``rep``; ``other_rep`` owns other people)."""
    rep_email: str
    own: tuple[str, str, str]
    """A record assigned to the rep (connection, object, crm id)."""
    other: tuple[str, str, str]
    """A record assigned to someone else."""
    own_email: str
    sf: SalesforceSandbox
    hs: HubSpotSandbox

    def call(self, method: str, path: str, role: str | None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role is not None else {}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


@contextmanager
def console_api(tmp: Path) -> Iterator[Api]:
    """Both sandboxes synced into a SQLite store under ``tmp``, ``relay serve``'s app on a port the OS picks."""
    data = generate(seed=5, leads=40, anchor=ANCHOR)
    sf, hs = SalesforceSandbox(data), HubSpotSandbox(data)
    env = dict(os.environ, SALESFORCE_INSTANCE_URL=sf.start().url, HUBSPOT_BASE_URL=hs.start().url)
    engine = open_store(f"sqlite:///{tmp / 'relay.db'}")
    config = load_config(env=env)
    for connection in config.relay.connections.values():
        connection.read_lag_seconds = 0
    for name in ("salesforce", "hubspot"):
        run_sync(config, name, engine)
    with session_factory(engine).begin() as session:
        counts = session.execute(select(AssignmentRow.owner_email, func.count()).where(AssignmentRow.status == "active")
                                 .group_by(AssignmentRow.owner_email).order_by(func.count().desc())).all()
        rep_email, other_email = counts[0][0], counts[1][0]
        own = session.execute(select(AssignmentRow.connection, AssignmentRow.object, AssignmentRow.crm_id)
                              .where(AssignmentRow.owner_email == rep_email, AssignmentRow.status == "active")).first()
        other = session.execute(select(AssignmentRow.connection, AssignmentRow.object, AssignmentRow.crm_id)
                                .where(AssignmentRow.owner_email == other_email,
                                       AssignmentRow.status == "active")).first()
    assert own is not None and other is not None
    console = Console(config, engine, clock=utc_now)
    tokens = {}
    for role in ROLES:
        email = rep_email if role == "rep" else ("marketing@northwind.example" if role == "marketing" else None)
        tokens[role] = console.add_user(f"{role}-user", role, email)[1]
    tokens["other_rep"] = console.add_user("other-rep", "rep", other_email)[1]
    server = SandboxServer(create_app(config, engine), port=0, name="relay").start()
    own_snapshot = console.person(*own)
    assert own_snapshot is not None
    own_email = next(r["values"].get("email") for r in own_snapshot["records"] if r["values"].get("email"))
    try:
        yield Api(server.url, engine, config, tokens, rep_email, tuple(own), tuple(other), own_email, sf, hs)
    finally:
        server.stop()
        sf.stop()
        hs.stop()
        engine.dispose()


