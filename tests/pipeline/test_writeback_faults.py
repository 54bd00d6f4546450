"""Write-back under refusals: what the CRM shows when it refuses part of what Relay writes.

Each test runs Relay against the sandbox CRMs over real HTTP and reads the result back
through the official SDKs (simple-salesforce, hubspot-api-client), plus the store's
outbox and audit rows.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from simple_salesforce import Salesforce
from sqlalchemy import Engine, select

from connector.adapters.errors import ConfigurationError
from connector.config.loader import RelayConfig, load_config
from connector.pipeline.connections import open_adapter
from connector.pipeline.context import utc_now
from connector.pipeline.summary import SyncSummary
from connector.pipeline.sync import run_sync
from connector.pipeline.writer import OWNER_NOT_WRITTEN, OutboxPayload, OutboxWriter
from connector.store.db import session_factory
from connector.store.migrate import open_store
from connector.store.models import AuditRow, OutboxStatus
from connector.store.repositories import OutboxMessageIn, Repositories
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session
from crm_sandbox.seed import SeedData, generate

ANCHOR = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
CONTROL = "\x1b"
"""ESC: a control character a pasted value can bring along."""
LONG_COMPANY = "ACME  " + "INTERNATIONAL WIDGET AND GADGET MANUFACTURING HOLDINGS " * 5
"""A shouting company name longer than Salesforce's 255 characters for Lead.Company (legacy data)."""


@dataclass
class World:
    config: RelayConfig
    engine: Engine
    sf: Salesforce
    hs: HubSpot
    seed: SeedData


Change = Callable[[SeedData], None]


@pytest.fixture()
def start_world(tmp_path: Path) -> Iterator[Callable[[Change], World]]:
    """Starts both sandboxes with the seed as ``change`` leaves it, and a fresh store."""
    with ExitStack() as stack:

        def start(change: Change) -> World:
            seed = copy.deepcopy(generate(seed=5, leads=40, anchor=ANCHOR))
            change(seed)
            sf_box, hs_box = SalesforceSandbox(seed), HubSpotSandbox(seed)
            sf_url = sf_box.start().url
            stack.callback(sf_box.stop)
            hs_url = str(hs_box.start().url)
            stack.callback(hs_box.stop)
            engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
            stack.callback(engine.dispose)
            env = dict(os.environ, SALESFORCE_INSTANCE_URL=sf_url, HUBSPOT_BASE_URL=hs_url)
            return World(
                config=load_config(env=env),
                engine=engine,
                sf=Salesforce(instance_url="https://sandbox", session_id=sf_box.access_token(),
                              session=sandbox_session(sf_url), version="59.0"),
                hs=HubSpot(access_token="sandbox-token", host=hs_url),
                seed=seed,
            )

        yield start


def _unchanged(seed: SeedData) -> None:
    return None


def _audit(world: World, connection: str, action: str) -> list[AuditRow]:
    with session_factory(world.engine)() as session:
        rows = session.scalars(select(AuditRow).where(AuditRow.connection == connection, AuditRow.action == action)
                               .order_by(AuditRow.id))
        return list(rows)


def _lead(world: World, lead_id: str) -> dict[str, Any]:
    return dict(world.sf.query(
        "SELECT Id, OwnerId, Company, FirstName, Title, Relay_Score__c, Relay_Routing_Reason__c, Relay_SLA_Due__c, "
        f"Relay_Id__c FROM Lead WHERE Id = '{lead_id}'"
    )["records"][0])


def _relay_tasks(world: World) -> list[dict[str, Any]]:
    """Relay's follow-up tasks on people (deal governance tasks name an opportunity, not a person)."""
    return [dict(t) for t in world.sf.query_all(
        "SELECT Id, WhoId, OwnerId, Subject, Description, Relay_Idempotency_Key__c FROM Task WHERE WhatId = null"
    )["records"] if t["Relay_Idempotency_Key__c"]]


def _active_users(world: World) -> list[str]:
    rows = world.sf.query_all("SELECT Id, Email FROM User WHERE IsActive = true ORDER BY Id")["records"]
    return [row["Id"] for row in rows if row["Email"]]


# --------------------------------------------------------------------------- 1. a refused clean-up value


def test_a_refused_company_clean_up_still_writes_owner_score_and_sla_and_is_reported(
    start_world: Callable[[Change], World],
) -> None:
    def shout(seed: SeedData) -> None:  # legacy data, longer than Lead.Company allows today
        for lead in seed.salesforce["Lead"][:12]:
            lead["Company"] = LONG_COMPANY

    world = start_world(shout)
    shouting = {lead["Id"] for lead in world.seed.salesforce["Lead"][:12]}

    summary = run_sync(world.config, "salesforce", world.engine)

    assigned = {e.crm_id: e.detail for e in _audit(world, "salesforce", "assigned") if e.crm_id in shouting}
    assert assigned, "no lead with the long company name was routed: the test proves nothing"
    tasks = {t["WhoId"]: t for t in _relay_tasks(world)}
    for lead_id, detail in assigned.items():
        lead = _lead(world, lead_id)
        assert lead["OwnerId"] == detail["owner_crm_id"], f"owner of {lead_id} not written"
        assert lead["Relay_Routing_Reason__c"] == detail["reason"]
        assert lead["Relay_Score__c"] is not None and lead["Relay_Id__c"]
        assert lead["Company"] == LONG_COMPANY  # the refused clean-up, left as it was
        if lead_id in tasks:
            assert tasks[lead_id]["OwnerId"] == lead["OwnerId"]
    assert any(lead_id in tasks for lead_id in assigned), "no follow-up task for the routed leads"
    refused = {(f.crm_id, f.code) for f in summary.write_failures}
    written = {lead_id for lead_id in shouting if _lead(world, lead_id)["Relay_Score__c"] is not None}
    assert written == shouting
    assert refused == {(lead_id, "STRING_TOO_LONG") for lead_id in shouting}
    assert all("Company" in f.message and "the rest of the update was written" in f.message
               for f in summary.write_failures)
    logged = {e.crm_id: e.detail for e in _audit(world, "salesforce", "write_failed")}
    assert set(logged) == shouting
    assert all(d["fields"] == ["Company"] and d["code"] == "STRING_TOO_LONG" for d in logged.values())

    # The next run does not repeat anything: the decision is in the CRM.
    again = run_sync(world.config, "salesforce", world.engine)
    assert again.tasks_created == 0
    assert len(_relay_tasks(world)) == len(tasks)


# --------------------------------------------------------------------------- 2. a decision is one group


def _update(lead_id: str, key: str, fields: dict[str, Any], hygiene: tuple[str, ...] = ()) -> OutboxMessageIn:
    payload = OutboxPayload(fields=fields, purpose="update", hygiene_fields=hygiene)
    return OutboxMessageIn("salesforce", "Lead", "update", payload.to_json(), key, crm_id=lead_id)


def _task(lead_id: str, owner_id: str, key: str, after: str) -> OutboxMessageIn:
    fields = {"Subject": "Follow up", "ActivityDate": "2026-02-03", "OwnerId": owner_id, "WhoId": lead_id,
              "Priority": "High", "Status": "Not Started", "Relay_Idempotency_Key__c": key}
    payload = OutboxPayload(fields=fields, external_id_field="Relay_Idempotency_Key__c", purpose="task", after=after)
    return OutboxMessageIn("salesforce", "Task", "upsert", payload.to_json(), key)


def _writer(world: World, summary: SyncSummary) -> OutboxWriter:
    adapter = open_adapter(world.config, "salesforce")
    return OutboxWriter(adapter, session_factory(world.engine), 200, summary, utc_now)


def test_a_newer_update_of_a_record_supersedes_an_older_one_still_waiting(
    start_world: Callable[[Change], World],
) -> None:
    world = start_world(_unchanged)
    lead_id = world.seed.salesforce["Lead"][0]["Id"]
    first_owner, second_owner = _active_users(world)[:2]
    sessions = session_factory(world.engine)
    with sessions.begin() as session:
        outbox = Repositories(session).outbox
        outbox.enqueue_many([_update(lead_id, "upd:old", {
            "OwnerId": first_owner, "Relay_Routing_Reason__c": "marketing nurture, no sales owner",
            "Title": "VP Sales",
        }, hygiene=("Title",))])
        old = outbox.by_key("upd:old")
        assert old is not None
        outbox.mark_failed(old.id, "UNABLE_TO_LOCK_ROW: unable to obtain exclusive access", retriable=True)
    with sessions.begin() as session:  # a later run decides again
        Repositories(session).outbox.enqueue_many([_update(lead_id, "upd:new", {
            "OwnerId": second_owner, "Relay_Routing_Reason__c": "Named account -> second owner",
        })])

    with sessions.begin() as session:
        outbox = Repositories(session).outbox
        old, new = outbox.by_key("upd:old"), outbox.by_key("upd:new")
        assert old is not None and new is not None
        assert old.status is OutboxStatus.DEAD and old.last_error == "superseded by upd:new"
        assert new.payload["fields"]["Title"] == "VP Sales"  # the older clean-up is carried over
        assert new.payload["hygiene_fields"] == ["Title"]
    summary = SyncSummary(connection="salesforce", mode="incremental", dry_run=False)
    _writer(world, summary).drain(final=True)

    lead = _lead(world, lead_id)
    assert (lead["OwnerId"], lead["Relay_Routing_Reason__c"], lead["Title"]) == (
        second_owner, "Named account -> second owner", "VP Sales")
    assert summary.write_failures == []


def test_a_task_waits_for_its_owner_and_is_given_up_when_the_owner_write_is_refused(
    start_world: Callable[[Change], World],
) -> None:
    world = start_world(_unchanged)
    lead_id = world.seed.salesforce["Lead"][0]["Id"]
    owner = _active_users(world)[0]
    sessions = session_factory(world.engine)
    with sessions.begin() as session:
        # The task is enqueued first: it must still wait for the update of its owner.
        Repositories(session).outbox.enqueue_many([
            _task(lead_id, owner, "task:1", after="upd:1"),
            # Relay_Matched_Account__c holds 18 characters: the decision is refused as a whole.
            _update(lead_id, "upd:1", {"OwnerId": owner, "Relay_Matched_Account__c": "X" * 20}),
        ])
    summary = SyncSummary(connection="salesforce", mode="incremental", dry_run=False)

    _writer(world, summary).drain(final=True)

    assert _lead(world, lead_id)["OwnerId"] != owner or world.seed.salesforce["Lead"][0]["OwnerId"] == owner
    assert [t for t in _relay_tasks(world) if t["WhoId"] == lead_id] == []
    codes = {f.code for f in summary.write_failures}
    assert codes == {"STRING_TOO_LONG", OWNER_NOT_WRITTEN}
    with sessions.begin() as session:
        task = Repositories(session).outbox.by_key("task:1")
        assert task is not None and task.status is OutboxStatus.DEAD
        assert task.last_error is not None and task.last_error.startswith("owner not written")
    cancelled = _audit(world, "salesforce", "task_cancelled")
    assert [(e.crm_id, e.detail["idempotency_key"]) for e in cancelled] == [(lead_id, "task:1")]


# --------------------------------------------------------------------------- 3. no active users


def test_a_crm_without_active_users_stops_the_run_before_anything_is_written(
    start_world: Callable[[Change], World],
) -> None:
    def everyone_left(seed: SeedData) -> None:
        for owner in seed.hubspot_owners:
            owner["archived"] = True

    world = start_world(everyone_left)

    with pytest.raises(ConfigurationError, match="no active users"):
        run_sync(world.config, "hubspot", world.engine)

    contacts = world.hs.crm.contacts.get_all(properties=["relay_score", "relay_sla_due", "relay_routing_reason"])
    assert contacts
    assert [c.id for c in contacts if c.properties.get("relay_score") or c.properties.get("relay_sla_due")] == []
    assert world.hs.crm.objects.get_all("tasks", properties=["relay_idempotency_key"]) == [] or all(
        not t.properties.get("relay_idempotency_key")
        for t in world.hs.crm.objects.get_all("tasks", properties=["relay_idempotency_key"]))


# --------------------------------------------------------------------------- 4. control characters


def test_control_characters_never_reach_either_crm(start_world: Callable[[Change], World]) -> None:
    def pasted(seed: SeedData) -> None:
        for lead in seed.salesforce["Lead"][:10]:
            lead["Company"] = f"ESCAPED{CONTROL}  WIDGETS{CONTROL} INC"
            lead["FirstName"] = f"JOHN{CONTROL}"
        for contact in seed.hubspot["contacts"][:10]:
            contact["properties"]["company"] = f"ESCAPED{CONTROL}  WIDGETS{CONTROL} INC"
            contact["properties"]["firstname"] = f"JOHN{CONTROL}"

    world = start_world(pasted)

    run_sync(world.config, "salesforce", world.engine)
    run_sync(world.config, "hubspot", world.engine)

    for lead in world.seed.salesforce["Lead"][:10]:
        shown = _lead(world, lead["Id"])
        assert shown["Company"] == "Escaped Widgets Inc"
        assert shown["FirstName"] == "John"
    for task in _relay_tasks(world):
        assert CONTROL not in (task["Subject"] or "") + (task["Description"] or "")
    for contact in world.seed.hubspot["contacts"][:10]:
        shown_hs = world.hs.crm.contacts.basic_api.get_by_id(contact["id"], properties=["company", "firstname"])
        assert shown_hs.properties["company"] == "Escaped Widgets Inc"
        assert shown_hs.properties["firstname"] == "John"
    for task in world.hs.crm.objects.get_all("tasks", properties=["hs_task_subject", "hs_task_body"]):
        assert CONTROL not in (task.properties.get("hs_task_subject") or "") + (task.properties.get("hs_task_body") or "")


