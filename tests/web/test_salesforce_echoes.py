"""Relay's own Salesforce writes come back as outbound messages; they name Relay's user and are not read.

An outbound message carries the values of the fields it was set up with, not which field
changed, so its values cannot tell Relay's write from a rep's; the user who saved the record
can (``LastModifiedById``): Relay acts as the user of its OAuth token.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from simple_salesforce import Salesforce

from connector.config.loader import load_config
from connector.pipeline.events import process_events
from connector.store.migrate import open_store
from connector.web.app import create_app
from crm_sandbox.runner import SandboxServer
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session
from crm_sandbox.seed import generate
from tests.web.conftest import TOKEN, WEBHOOK_ENV


def test_a_lead_saved_by_relays_user_is_not_read_again_but_a_reps_save_is(tmp_path: Path) -> None:
    data = generate(seed=3, leads=5)
    org = SalesforceSandbox(data, outbound_url="http://127.0.0.1:9/unset", outbound_retry_base=0.05)
    server = org.start()
    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    config = load_config(env=dict(os.environ, SALESFORCE_INSTANCE_URL=server.url, **WEBHOOK_ENV))
    relay = SandboxServer(create_app(config, engine), port=0, name="relay").start()  # stores; decided by hand
    assert org.outbound is not None
    org.outbound.url = f"{relay.url}/webhooks/salesforce?token={TOKEN}"
    rep_name = next(u["Username"] for u in data.salesforce["User"] if u.get("IsActive", True)
                    and u["Id"] != org.state.admin_id)  # anyone but the user Relay's token acts as
    rep = Salesforce(instance_url="https://sandbox.my.salesforce.com", session_id=org.access_token(rep_name),
                     session=sandbox_session(server.url), version="59.0")

    def delivered() -> None:
        deadline = time.monotonic() + 10
        time.sleep(0.1)
        while time.monotonic() < deadline and org.outbound is not None and org.outbound.pending:
            time.sleep(0.02)

    def reads() -> int:
        return sum(1 for e in org.ledger.entries() if e.kind == "read" or "/query" in e.path)

    try:
        lead = rep.Lead.create({"FirstName": "Ada", "LastName": "Echo", "Company": "Initech", "Title": "VP Sales",
                                "Email": "ada.echo@initech.example", "Country": "United States"},
                               headers={"Sforce-Auto-Assign": "FALSE"})["id"]
        delivered()
        (first,) = process_events(config, engine)  # the rep's lead: read and decided, Relay writes its owner
        assert first.records == 1 and first.own_writes == 0
        assert rep.Lead.get(lead)["LastModifiedById"] != rep.query("SELECT Id FROM User WHERE Username = "
                                                                   f"'{rep_name}'")["records"][0]["Id"]

        delivered()  # Relay's save of the owner comes back as an outbound message, by Relay's user
        before = reads()
        (echo,) = process_events(config, engine)
        assert echo.own_writes == 1 and echo.records == 0 and reads() == before

        rep.Lead.update(lead, {"Title": "Chief Revenue Officer"})  # the rep's own save is read again
        delivered()
        (handed,) = process_events(config, engine)
        assert handed.own_writes == 0 and handed.records == 1 and reads() > before
    finally:
        relay.stop()
        org.stop()
        engine.dispose()
