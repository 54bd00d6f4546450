"""One bad record never blocks a connection: it is quarantined with its reason and the rest goes on.

The sandboxes serve, on demand, a page in which one record has no id, and one in which a
record has an unreadable timestamp, a number field holding "abc" and a lone surrogate in
a text field. Each sync must finish, quarantine what cannot be read, decide the rest,
and the next sync must not be blocked by it.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy.engine import Engine

from connector.store.models import QuarantineRow
from crm_sandbox.common import FaultSettings

from ._cli import relay, sync_summary
from ._store import audit, rows
from ._world import Crms, RelayEnv

READS = {"salesforce": r"/composite$", "hubspot": r"/crm/v3/objects/contacts"}
"""Where each CRM's records come from: Salesforce answers the first page of every object in one Composite call."""


@pytest.mark.parametrize("connection", ["salesforce", "hubspot"])
@pytest.mark.parametrize("fault", ["missing_id", "wrong_types"])
def test_a_bad_record_is_quarantined_and_the_rest_is_synced(
    relay_env: RelayEnv, crms: Crms, engine: Engine, connection: str, fault: str
) -> None:
    sandbox = crms.salesforce if connection == "salesforce" else crms.hubspot
    sandbox.faults.configure(FaultSettings(script=[{"fault": fault, "path": READS[connection]}]))

    result = relay("sync", connection, "--json")
    sandbox.faults.configure(FaultSettings())

    assert result.exit_code in (0, 4), result.output
    assert "Traceback" not in result.output
    hit = [e for e in sandbox.ledger.entries() if e.fault == fault]
    assert hit, f"the {fault} fault never reached a read of {connection}"
    faulty = json.loads(result.stdout)
    assert len(audit(engine, connection, "assigned")) > 0, "nothing was decided: the bad record blocked the page"
    quarantined = rows(engine, QuarantineRow, QuarantineRow.connection == connection)
    if fault == "missing_id":
        assert any("has no" in q.reason for q in quarantined), [q.reason for q in quarantined]
        assert faulty["quarantined"] >= 1
    else:  # a bad timestamp quarantines its record; "abc" in a number is an unreadable value of a decided one
        assert faulty["quarantined"] >= 1 or faulty["findings"].get("unreadable_value", 0) >= 1, faulty
    again = sync_summary(connection)  # the next sync is not blocked either
    assert again["write_failures"] == [] or fault == "wrong_types", again["write_failures"]
