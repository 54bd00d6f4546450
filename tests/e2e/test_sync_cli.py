"""``relay sync`` of both sandbox CRMs, checked as a RevOps admin and a rep would see it.

Everything is read back from the CRMs through the official SDKs and compared with the
CRMs' own users, so a mistake in Relay's adapters or mappings cannot hide itself.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from connector.config.loader import RelayConfig

from ._cli import sync_summary
from ._crm import (
    changed_between,
    hubspot_client,
    read_crm,
    read_hubspot,
    read_salesforce,
    salesforce_client,
)
from ._expect import (
    Expectation,
    RoutingRulesInForce,
    one_task_per_person_across,
    routing_problems,
    task_problems,
)
from ._store import audit
from ._world import Crms, RelayEnv

CONNECTIONS = ("salesforce", "hubspot")


def test_sync_routes_every_lead_once_and_a_second_sync_changes_nothing(
    relay_env: RelayEnv, crms: Crms, engine: Engine, config: RelayConfig
) -> None:
    rules = RoutingRulesInForce.of(config)
    sf_before, hs_before = read_salesforce(crms.salesforce), read_hubspot(crms.hubspot)

    first_sf = sync_summary("salesforce")
    first_hs = sync_summary("hubspot")

    sf, hs = read_salesforce(crms.salesforce), read_hubspot(crms.hubspot)
    problems = (
        routing_problems(sf, engine, "salesforce") + routing_problems(hs, engine, "hubspot")
        + task_problems(sf, engine, "salesforce") + task_problems(hs, engine, "hubspot")
        + Expectation("salesforce", sf_before, sf, rules).problems(engine)
        + Expectation("hubspot", hs_before, hs, rules).problems(engine)
        + one_task_per_person_across([sf, hs])
    )
    assert problems == [], "\n".join(problems)
    assert first_sf["write_failures"] == [] and first_hs["write_failures"] == []
    assert sum(first_sf["routed"].values()) > 0 and sum(first_hs["routed"].values()) > 0
    # people's follow-up tasks, and the deal governance tasks (tests/e2e/test_governance.py checks those)
    deal_tasks = {"salesforce": len(salesforce_client(crms.salesforce).query_all(
        "SELECT Id FROM Task WHERE WhatId != null AND Relay_Idempotency_Key__c != null")["records"]),
        "hubspot": sum(1 for t in hubspot_client(crms.hubspot).crm.objects.get_all(
            "tasks", properties=["relay_idempotency_key"], associations=["deals"])
            if t.associations and t.associations.get("deals") and t.properties.get("relay_idempotency_key"))}
    assert first_sf["tasks_created"] == len(sf.relay_tasks()) + deal_tasks["salesforce"] \
        == len(audit(engine, "salesforce", "task_created"))
    assert first_hs["tasks_created"] == len(hs.relay_tasks()) + deal_tasks["hubspot"] \
        == len(audit(engine, "hubspot", "task_created"))
    assert len(audit(engine, "salesforce", "assigned")) >= sum(first_sf["routed"].values())

    # Round two: a person routed in one CRM takes the same owner on their records in the other
    # (the first sync of that CRM ran before the other decided). Nothing else moves.
    for connection in CONNECTIONS:
        before = read_crm(crms.salesforce, crms.hubspot, connection)
        again = sync_summary(connection)
        moved = changed_between(before, read_crm(crms.salesforce, crms.hubspot, connection))
        assert (again["routed"], again["tasks_created"], again["write_failures"]) == ({}, 0, []), again
        propagated = _propagated_in_run(engine, connection, again["run_id"])
        assert {m.split()[-1] for m in moved} <= propagated, (moved, propagated)
        assert again["records_updated"] == len(moved)

    # Round three: settled. Nothing to route, write or create, and no record touched.
    for connection in CONNECTIONS:
        before = read_crm(crms.salesforce, crms.hubspot, connection)
        settled = sync_summary(connection)
        assert (settled["routed"], settled["propagated"], settled["records_updated"], settled["tasks_created"],
                settled["write_failures"]) == ({}, 0, 0, 0, []), settled
        assert changed_between(before, read_crm(crms.salesforce, crms.hubspot, connection)) == []


def _propagated_in_run(engine: Engine, connection: str, run_id: int) -> set[str]:
    """Records that took the owner of the same person's assignment elsewhere in this run."""
    return {row.crm_id or "" for row in audit(engine, connection, "assigned")
            if row.run_id == run_id and row.detail["kept_existing"]}
