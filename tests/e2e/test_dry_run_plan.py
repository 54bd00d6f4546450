"""``relay sync --dry-run``: the plan an admin reads before letting a sync write (issue 8).

After a first real sync, a rep edits one person's company (shouting, so Relay's clean-up
rewrites it) and a new person arrives without a rep. The dry run must show, per object,
each record with each field it changes, old -> new, then the tasks to create; with
``--json`` it must list every write, and those must be the writes the real sync then
makes, read back through the CRM's own SDK. The dry run itself writes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hubspot.crm.contacts import SimplePublicObjectInput, SimplePublicObjectInputForCreate
from sqlalchemy.engine import Engine

from connector.config.loader import RelayConfig
from connector.config.mappings import ObjectMapping
from connector.store.models import OutboxRow

from ._cli import relay, sync_summary
from ._crm import hubspot_client, read_crm, salesforce_client, sobject, write_calls
from ._store import rows
from ._world import Crms, RelayEnv

SHOUTED = "ACME [BOLD] CORP"
"""The company a rep types: Relay's clean-up recases it; the brackets must print as text, not markup."""
CLEANED = "Acme [bold] Corp"
CLOCK_DEPENDENT = frozenset({"relay_sla_due", "due_at", "description", "idempotency_key"})
"""Canonical fields whose value depends on when the decision is made (SLA deadline, task key):
a dry run and the real run a moment later write them with another time."""


@dataclass(frozen=True)
class Edits:
    """What the rep did in the CRM between the first sync and the dry run."""

    object: str
    edited: str
    """The record whose company was changed."""
    edited_name: str
    created: str
    """The new person, waiting for a rep."""
    rescored: str
    """A person who attended a webinar since: their score changes, the rest of Relay's fields do not."""


def _low_scored(crms: Crms, connection: str, kind: str) -> list[str]:
    """Ids of ``kind`` records Relay scored below 30 (a webinar's points cannot hit a cap), lowest id first."""
    view = read_crm(crms.salesforce, crms.hubspot, connection)
    found = [p.id for p in view.people.values()
             if p.object == kind and not p.converted and p.score is not None and p.score < 30]
    return sorted(found, key=lambda i: (len(i), i))


def _edit_salesforce(crms: Crms) -> Edits:
    leads = sobject(crms.salesforce, "Lead")
    edited, *others = _low_scored(crms, "salesforce", "Lead")
    rescored = next(i for i in others if not leads.get(i)["Webinar_Attended__c"])
    leads.update(edited, {"Company": SHOUTED})
    leads.update(rescored, {"Webinar_Attended__c": True})
    shown = leads.get(edited)
    queue = salesforce_client(crms.salesforce).query("SELECT Id FROM User WHERE LastName = 'Queue'")["records"]
    created = leads.create({
        "FirstName": "Dana", "LastName": "Scully", "Email": "dana.scully@fbi.example", "Company": "FBI",
        "Title": "VP Sales", "Country": "US", "NumberOfEmployees": 5000, "AnnualRevenue": 500_000_000,
        "Industry": "Technology", "Page_Views__c": 10, "Pricing_Page_Visits__c": 3, "Form_Submissions__c": 2,
        "Webinar_Attended__c": True,
    })["id"]
    leads.update(created, {"OwnerId": queue[0]["Id"]})  # waiting in the Lead Queue, as web leads do
    return Edits("Lead", edited, f"{shown['FirstName']} {shown['LastName']}", created, rescored)


def _edit_hubspot(crms: Crms) -> Edits:
    client = hubspot_client(crms.hubspot)
    contacts = client.crm.contacts.basic_api
    edited, *others = _low_scored(crms, "hubspot", "contacts")
    rescored = next(i for i in others if contacts.get_by_id(i, properties=["webinar_attended"])
                    .properties.get("webinar_attended") != "true")
    contacts.update(edited, SimplePublicObjectInput(properties={"company": SHOUTED}))
    contacts.update(rescored, SimplePublicObjectInput(properties={"webinar_attended": "true"}))
    shown = contacts.get_by_id(edited, properties=["firstname", "lastname"]).properties
    created = contacts.create(SimplePublicObjectInputForCreate(properties={
        "firstname": "Dana", "lastname": "Scully", "email": "dana.scully@fbi.example", "company": "FBI",
        "jobtitle": "VP Sales", "country": "US", "numemployees": "5000", "annualrevenue": "500000000",
        "industry": "Technology", "hs_analytics_num_page_views": "10", "pricing_page_visits": "3",
        "num_conversion_events": "2", "webinar_attended": "true",
    })).id  # no owner: Relay routes it
    return Edits("contacts", edited, f"{shown['firstname']} {shown['lastname']}", str(created), rescored)


EDITS: dict[str, Callable[[Crms], Edits]] = {"salesforce": _edit_salesforce, "hubspot": _edit_hubspot}


def _mapping(config: RelayConfig, connection: str, entity: str) -> ObjectMapping:
    return next(m for m in config.mapping_for(connection).objects.values() if m.entity == entity)


def _crm_field(mapping: ObjectMapping, canonical: str) -> str:
    return next(fm.crm for fm in mapping.write_fields() if fm.canonical == canonical)


def _block(output: str, crm_id: str) -> list[str]:
    """The table lines of one record: from the line naming it to the blank line ending its section."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if re.search(rf"^\s*{re.escape(crm_id)}\s", line))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def _comparable(object_name: str, operation: str, crm_id: str | None, fields: dict[str, Any],
                clock_fields: set[str]) -> str:
    """A write as the CRM receives it, with values that depend on the moment of decision masked."""
    shown = {k: "<moment of decision>" if k in clock_fields else v for k, v in sorted(fields.items())}
    return json.dumps([object_name, operation, crm_id, shown])


@pytest.mark.parametrize("connection", ["salesforce", "hubspot"])
def test_dry_run_shows_each_change_old_to_new_and_lists_exactly_what_the_real_sync_writes(
    relay_env: RelayEnv, crms: Crms, engine: Engine, config: RelayConfig, connection: str
) -> None:
    sandbox = crms.salesforce if connection == "salesforce" else crms.hubspot
    sync_summary(connection)
    edits = EDITS[connection](crms)
    person, task = _mapping(config, connection, "person"), _mapping(config, connection, "task")
    company_field, owner_field = _crm_field(person, "company"), _crm_field(person, "owner_id")
    before = read_crm(crms.salesforce, crms.hubspot, connection)  # also: the edits are in the ledger by now
    messages_before = len(rows(engine, OutboxRow))
    sandbox.ledger.reset()

    # The table, summary first: the edited record, its company old -> new, shown as typed.
    shown = relay("sync", connection, "--dry-run", "--full")
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert out.index("dry run, nothing written") < out.index(f"\n{edits.object}: ") < out.index(f"\n{task.name}: ")
    edited_rows = _block(out, edits.edited)
    assert edits.edited_name in edited_rows[0], edited_rows
    cells = [re.search(rf"\s({re.escape(company_field)}\s.*)$", row) for row in edited_rows]
    assert [re.sub(r"\s+", " ", c.group(1)).strip() if c else row for c, row in zip(cells, edited_rows, strict=True)] \
        == [f"{company_field} {SHOUTED} -> {CLEANED}"], "\n".join(edited_rows)
    # The new person: an owner where there was the queue (or none), with the owner's email; a task for them.
    owner_rows = [row for row in _block(out, edits.created) if re.search(rf"\s{owner_field}\s", row)]
    assert len(owner_rows) == 1, out
    new_owner = re.search(r"->\s+(\S+) \(([^)]+)\)\s*$", owner_rows[0])
    assert new_owner is not None, owner_rows[0]
    owner_id, owner_email = new_owner.groups()
    assert before.owner_ids_by_email[owner_email] == owner_id
    tasks_table = out[out.index(f"\n{task.name}: "):]
    task_rows = [line for line in tasks_table.splitlines() if f"{edits.object} {edits.created})" in line]
    assert len(task_rows) == 1 and "Dana Scully" in task_rows[0] and f"{owner_id} ({owner_email})" in task_rows[0], (
        tasks_table)

    # The JSON: every write, the edited record's as one change; in a stable order; nothing written.
    listed = sync_summary(connection, "--dry-run", "--full")
    planned = listed["planned"]
    assert listed["planned_writes"] == len(planned)
    assert [w for w in planned if w["crm_id"] == edits.edited] == [{
        "object": edits.object, "operation": "update", "purpose": "update", "crm_id": edits.edited,
        "record": {"object": edits.object, "crm_id": edits.edited, "label": _planned_label(planned, edits.edited)},
        "changes": [{"field": company_field, "canonical": "company", "old": SHOUTED, "new": CLEANED,
                     "old_known": True, "old_label": None, "new_label": None}],
        "task": None, "fields": {company_field: CLEANED},
    }]
    assert edits.edited_name in _planned_label(planned, edits.edited)
    # A new score sends Relay's fields together, but only what differs is a change.
    [rescored] = [w for w in planned if w["crm_id"] == edits.rescored]
    score_field, relay_id_field = _crm_field(person, "relay_score"), _crm_field(person, "relay_id")
    assert {score_field, relay_id_field} <= set(rescored["fields"]), rescored
    changed = {c["field"]: c for c in rescored["changes"]}
    assert relay_id_field not in changed, rescored
    old_score = before.people[edits.rescored].score
    assert old_score is not None
    webinar = config.rules.scoring.behavioural.webinar_attended
    assert (changed[score_field]["old"], changed[score_field]["new"]) == (old_score, old_score + webinar), rescored
    order = [(w["purpose"] == "task", w["object"], w["record"]["object"], w["record"]["crm_id"]) for w in planned]
    assert order == sorted(order)
    assert write_calls(sandbox.ledger) == [], "a dry run called the CRM to write"
    assert len(rows(engine, OutboxRow)) == messages_before, "a dry run left outbox messages"

    # The real sync sends exactly those writes; the CRM then shows the planned values.
    real = sync_summary(connection, "--full")
    assert real["planned"] == [] and real["planned_writes"] == 0
    assert real["records_updated"] + real["tasks_created"] == len(planned), real
    clock_fields = {fm.crm for m in (person, task) for fm in m.write_fields() if fm.canonical in CLOCK_DEPENDENT}
    sent = rows(engine, OutboxRow, OutboxRow.run_id == real["run_id"])
    sent_crm_ids = {r.id: r.crm_id if r.operation == "update" else None for r in sent}  # a sent upsert learns its id
    assert sorted(_comparable(r.object, r.operation, sent_crm_ids[r.id], r.payload["fields"], clock_fields)
                  for r in sent) == \
        sorted(_comparable(w["object"], w["operation"], w["crm_id"], w["fields"], clock_fields) for w in planned)
    after = read_crm(crms.salesforce, crms.hubspot, connection)
    assert after.people[edits.created].owner_id == owner_id
    [made] = [t for t in after.relay_tasks() if edits.created in t.person_ids]
    [planned_task] = [w["task"] for w in planned if w["purpose"] == "task" and w["record"]["crm_id"] == edits.created]
    assert (made.subject, made.owner_id) == (planned_task["subject"], owner_id)
    assert _company(crms, connection, edits.edited) == CLEANED

    # Nothing left to do: the plan says so.
    again = relay("sync", connection, "--dry-run", "--full")
    assert again.exit_code == 0, again.output
    assert "nothing to write" in again.stdout
    assert sync_summary(connection, "--dry-run", "--full")["planned"] == []


def _planned_label(planned: list[dict[str, Any]], crm_id: str) -> str:
    [label] = [w["record"]["label"] for w in planned if w["crm_id"] == crm_id]
    assert isinstance(label, str)
    return label


def _company(crms: Crms, connection: str, crm_id: str) -> str:
    """The record's company as the CRM shows it, through its SDK."""
    if connection == "salesforce":
        return str(sobject(crms.salesforce, "Lead").get(crm_id)["Company"])
    contact = hubspot_client(crms.hubspot).crm.contacts.basic_api.get_by_id(crm_id, properties=["company"])
    return str(contact.properties["company"])
