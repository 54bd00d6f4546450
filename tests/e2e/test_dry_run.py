"""``relay sync --dry-run``: decides and shows what it would change, writes nothing anywhere."""

from __future__ import annotations

import re

from sqlalchemy.engine import Engine

from connector.store.models import AssignmentRow, AuditRow, OutboxRow, SyncCursorRow

from ._cli import relay, sync_summary
from ._crm import changed_between, read_crm, write_calls
from ._store import rows
from ._world import Crms, RelayEnv

CONNECTIONS = ("salesforce", "hubspot")


def test_dry_run_writes_nothing_and_shows_what_a_real_sync_then_writes(
    relay_env: RelayEnv, crms: Crms, engine: Engine
) -> None:
    before = {c: read_crm(crms.salesforce, crms.hubspot, c) for c in CONNECTIONS}
    crms.salesforce.ledger.reset()
    crms.hubspot.ledger.reset()

    shown = {}
    for connection in CONNECTIONS:
        result = relay("sync", connection, "--dry-run")
        assert result.exit_code == 0, result.output
        assert "dry run, nothing written" in result.stdout
        shown[connection] = result.stdout
    counted = re.search(r"would write\s+([\d,]+) record", shown["salesforce"])
    assert counted is not None, shown["salesforce"]
    planned = int(counted.group(1).replace(",", ""))

    assert write_calls(crms.salesforce.ledger) == []
    assert write_calls(crms.hubspot.ledger) == []
    for connection in CONNECTIONS:
        assert changed_between(before[connection], read_crm(crms.salesforce, crms.hubspot, connection)) == []
    assert rows(engine, OutboxRow) == [], "a dry run left outbox messages"
    assert rows(engine, SyncCursorRow) == [], "a dry run moved sync cursors"
    assert rows(engine, AssignmentRow) == [], "a dry run recorded assignments"
    assert rows(engine, AuditRow) == [], "a dry run wrote audit lines"

    # What it showed is what a real run then does: a real lead gets a real user as owner.
    lead_ids = {p.id for p in before["salesforce"].people.values() if p.object == "Lead"}
    user_ids = set(before["salesforce"].owner_ids_by_email.values())
    said = shown["salesforce"]  # tables, one line per row when piped
    shown_leads = set(re.findall(r"^\s+(00Q\w{15})\s", said, re.M)) | set(re.findall(r"\(Lead (\w{18})\)", said))
    assert shown_leads and shown_leads <= lead_ids, said
    assert any(re.search(rf"\sOwnerId\s.*->\s+{user} \(", said) for user in user_ids), said
    assert re.search(r"^(contacts: [\d,]+ record\(s\) to update|tasks: [\d,]+ task\(s\) to create)", shown["hubspot"],
                     re.M), shown["hubspot"]

    real = sync_summary("salesforce")
    assert len(rows(engine, OutboxRow)) == planned
    assert real["records_updated"] + real["tasks_created"] == planned
