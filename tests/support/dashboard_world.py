"""A seeded run for the dashboard's HTTP and browser tests: both sandboxes synced, reps at work, clocks fired.

What happens, as in production:

1. The sandbox CRMs are seeded (their leads created around now) and synced into a fresh SQLite
   store, Salesforce as if three hours ago and HubSpot forty minutes ago (``run_sync(now=...)``):
   every owned lead gets its owner, its score, its task and an SLA clock started then.
2. The reps work every other new lead in their CRM (Salesforce ``Status`` to "Working - Contacted",
   HubSpot ``hs_lead_status`` to ``IN_PROGRESS``) through the official SDKs; the next syncs read it as
   the first touch, about 180 and 40 minutes after the clocks started.
3. The SLA job fires what is due now (reminders, escalations to managers and directors).
4. Users of every role are made (``relay users add``'s path); ``relay serve``'s app runs on a port the
   OS picks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInput
from simple_salesforce import Salesforce
from sqlalchemy import Engine, func, select

from connector.config.loader import RelayConfig, load_config
from connector.pipeline.clocks import fire_due_clocks
from connector.pipeline.console import Console
from connector.pipeline.context import utc_now
from connector.pipeline.sync import run_sync
from connector.store.db import session_factory
from connector.store.migrate import open_store
from connector.store.models import AssignmentRow, SlaClockRow
from connector.web.app import create_app
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.runner import SandboxServer
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session
from crm_sandbox.seed import generate

ROLES = ("admin", "manager", "rep", "marketing", "read_only")
MARKETING_EMAIL = "marketing@northwind.example"


@dataclass
class DashboardWorld:
    """A running Relay over a seeded, worked store, with a user of each role."""

    url: str
    engine: Engine
    config: RelayConfig
    tokens: dict[str, str]
    """role -> API token (``other_rep`` is a second rep)."""
    rep_email: str
    other_email: str
    own: tuple[str, str, str]
    """A record assigned to the rep (connection, object, crm id)."""
    other: tuple[str, str, str]
    """A record assigned to the other rep."""
    own_email: str
    """The own record's email."""
    worked: int
    """Leads the reps worked in the CRMs (first touches the second syncs read)."""
    extra: dict[str, Any] = field(default_factory=dict)


def _work(config: RelayConfig, engine: Engine, sf: Salesforce, hs: HubSpot) -> int:
    """Move every other new lead with an open clock to a contacted status in its CRM."""
    with session_factory(engine).begin() as session:
        rows = session.execute(select(SlaClockRow.connection, SlaClockRow.object, SlaClockRow.crm_id)
                               .where(SlaClockRow.status == "open", SlaClockRow.stage == "new")
                               .order_by(SlaClockRow.id)).all()
    time.sleep(1.1)  # the CRMs' clocks count whole seconds: the changes come after the syncs' reads
    worked = 0
    for i, (connection, object_name, crm_id) in enumerate(rows):
        if i % 2:
            continue
        if connection == "salesforce" and object_name == "Lead":
            cast(Any, sf).Lead.update(crm_id, {"Status": "Working - Contacted"})
        elif connection == "hubspot" and object_name == "contacts":
            hs.crm.contacts.basic_api.update(crm_id, SimplePublicObjectInput(properties={"hs_lead_status": "IN_PROGRESS"}))
        else:
            continue
        worked += 1
    return worked


@contextmanager
def dashboard_world(tmp: Path, *, leads: int = 60) -> Iterator[DashboardWorld]:
    """The seeded, worked store and a running app (see the module docstring)."""
    started = datetime.now(UTC)
    data = generate(seed=5, leads=leads, anchor=started)
    sf_box, hs_box = SalesforceSandbox(data), HubSpotSandbox(data)
    sf_url, hs_url = sf_box.start().url, hs_box.start().url
    env = dict(os.environ, SALESFORCE_INSTANCE_URL=sf_url, HUBSPOT_BASE_URL=hs_url)
    engine = open_store(f"sqlite:///{tmp / 'relay.db'}")
    config = load_config(env=env)
    for connection in config.relay.connections.values():
        connection.read_lag_seconds = 0
    server: SandboxServer | None = None
    try:
        run_sync(config, "salesforce", engine, now=lambda: started - timedelta(hours=3))
        run_sync(config, "hubspot", engine, now=lambda: started - timedelta(minutes=40))
        sf = Salesforce(instance_url="https://sandbox", session_id=sf_box.access_token(),
                        session=sandbox_session(sf_url), version="59.0")
        hs = HubSpot(access_token="sandbox-token", host=hs_url)
        worked = _work(config, engine, sf, hs)
        for name in ("salesforce", "hubspot"):
            run_sync(config, name, engine)
        fired = fire_due_clocks(config, engine, now=utc_now())
        with session_factory(engine).begin() as session:
            counts = session.execute(select(AssignmentRow.owner_email, func.count())
                                     .where(AssignmentRow.status == "active",
                                            AssignmentRow.owner_email.like("%@northwind.example"),
                                            AssignmentRow.owner_email != "lead.queue@northwind.example")
                                     .group_by(AssignmentRow.owner_email)
                                     .order_by(func.count().desc(), AssignmentRow.owner_email)).all()
            rep_email, other_email = counts[0][0], counts[1][0]

            def first(owner: str) -> tuple[str, str, str]:
                found = session.execute(select(AssignmentRow.connection, AssignmentRow.object, AssignmentRow.crm_id)
                                        .where(AssignmentRow.owner_email == owner, AssignmentRow.status == "active")
                                        .order_by(AssignmentRow.id)).first()
                assert found is not None
                return (found[0], found[1], found[2])

            own, other = first(rep_email), first(other_email)
        console = Console(config, engine, clock=utc_now)
        tokens = {}
        for role in ROLES:
            email = rep_email if role == "rep" else (MARKETING_EMAIL if role == "marketing" else None)
            tokens[role] = console.add_user(f"{role.replace('_', '-')}-user", role, email)[1]
        tokens["other_rep"] = console.add_user("other-rep", "rep", other_email)[1]
        person = console.person(*own)
        assert person is not None
        own_email = next(r["values"]["email"] for r in person["records"] if r["values"].get("email"))
        server = SandboxServer(create_app(config, engine), port=0, name="relay").start()
        yield DashboardWorld(server.url, engine, config, tokens, rep_email, other_email, own, other, own_email,
                             worked, {"fired": len(fired.fired)})
    finally:
        if server is not None:
            server.stop()
        sf_box.stop()
        hs_box.stop()
        engine.dispose()


__all__ = ["ROLES", "DashboardWorld", "dashboard_world"]
