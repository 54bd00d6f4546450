"""A person routed in one CRM takes the same owner on their records in the other, read again or not.

The records of the other CRM were synced before the person was routed, and nothing about
them changes afterwards, so no incremental read returns them: the owner must reach them
all the same (from their stored snapshots), as a rep would see it in that CRM.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from connector.store.db import session_factory
from connector.store.repositories import Repositories

from ._cli import sync_summary
from ._crm import read_salesforce
from ._store import active_assignments, audit
from ._world import Crms, RelayEnv


def _nothing_more_to_read(engine: Engine, connection: str) -> None:
    """Move every cursor of ``connection`` past anything the CRM holds: incremental reads return nothing."""
    ahead = datetime.now(UTC) + timedelta(days=365)
    with session_factory(engine).begin() as session:
        cursors = Repositories(session).cursors
        for cursor in cursors.all(connection):
            cursors.advance(connection, cursor.object, ahead, cursor.last_id, now=datetime.now(UTC))


def test_an_owner_decided_in_the_other_crm_reaches_records_that_are_not_read_again(
    relay_env: RelayEnv, crms: Crms, engine: Engine
) -> None:
    sync_summary("salesforce")
    sync_summary("hubspot")  # routes people Salesforce already synced without an owner of theirs
    _nothing_more_to_read(engine, "salesforce")

    again = sync_summary("salesforce")

    assert {k: v for k, v in again["read"].items() if v and k != "User"} == {}, again["read"]
    taken = [row for row in audit(engine, "salesforce", "assigned")
             if row.run_id == again["run_id"] and row.detail["kept_existing"]]
    assert taken, "no Salesforce record took the owner decided for the same person in HubSpot"
    assert again["propagated"] == len(taken)
    hubspot_owners = {row.relay_id: row.owner_email for row in active_assignments(engine, "hubspot").values()}
    view = read_salesforce(crms.salesforce)
    for row in taken:
        assert row.detail["owner_email"] == hubspot_owners[row.relay_id]
        assert view.people[str(row.crm_id)].owner_id == view.owner_ids_by_email[row.detail["owner_email"]]
    # Settled: a further run has nobody left to give an owner to.
    settled = sync_summary("salesforce")
    assert (settled["propagated"], settled["records_updated"], settled["tasks_created"]) == (0, 0, 0), settled

