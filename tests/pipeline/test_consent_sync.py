"""The consent gate in a sync through both sandbox CRMs (and the enrichment sandbox) over HTTP.

As a rep sees it in the CRM (owner, task, routing reason, read back through the official SDKs), in the
audit log (not_enriched with the consent reason, the consent status on the assignment) and in the alerts
queued (no name, email or company for a person whose consent forbids it, only the link). A HubSpot contact
unsubscribed from the "One to One" email subscription type (through the communication preferences API, as
HubSpot records it) is gated like an email opt-out; a type the portal lacks and a token without the scope
are warnings, not failed syncs. Also the form intake: opt-outs and the lawful basis a form gives land in the
CRM fields Relay reads them from.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from simple_salesforce import Salesforce
from sqlalchemy import Engine, select

from connector.config.loader import RelayConfig, load_config
from connector.core.governance.rules import LawfulBasis
from connector.pipeline.alerts import WITHHELD, lead_from_store
from connector.pipeline.capture import store_submissions
from connector.pipeline.events import process_events
from connector.pipeline.submissions import read_fields, submission
from connector.pipeline.sync import run_sync
from connector.store.db import session_factory
from connector.store.migrate import open_store
from connector.store.models import AuditRow, NotificationRow, SlaClockRow
from connector.store.repositories import Repositories
from crm_sandbox.enrich import EnrichSandbox
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session
from crm_sandbox.seed import generate

ANCHOR = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
PORTAL = "24681357"
# Scores Qualified (routed to the SDR team of the region, a queue alert, a 24-hour SLA and a task).
QUALIFIED_HS = {"jobtitle": "VP of Sales", "company": "Acme Widgets", "website": "acme-widgets.example",
                "industry": "Software", "numemployees": "500", "annualrevenue": "50000000"}
QUALIFIED_SF = {"Company": "Acme Widgets", "Title": "VP of Sales", "Website": "acme-widgets.example",
                "Industry": "Software", "NumberOfEmployees": 500, "AnnualRevenue": 50000000, "Country": "US"}
NO_AUTO_ASSIGN = {"Sforce-Auto-Assign": "FALSE"}


@dataclass
class World:
    config: RelayConfig
    engine: Engine
    sf: Salesforce
    hs: HubSpot
    hs_box: HubSpotSandbox


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    data = generate(seed=5, leads=20, anchor=ANCHOR, dispositions=False)
    sf_box, hs_box, enrich_box = SalesforceSandbox(data), HubSpotSandbox(data), EnrichSandbox(data)
    sf_url, hs_url = sf_box.start().url, hs_box.start().url
    enrich_box.start()
    env = dict(os.environ, SALESFORCE_INSTANCE_URL=sf_url, HUBSPOT_BASE_URL=hs_url, HUBSPOT_PORTAL_ID=PORTAL,
               RELAY_CAPTURE_WEBSITE_SECRET="s", RELAY_CAPTURE_PARTNER_SECRET="s",
               **{**enrich_box.client_settings().env, "RELAY_ENRICH_ENABLED": "true"})
    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    config = load_config(env=env)
    # A lawful basis is required of people in Germany (the shipped file requires it nowhere).
    consent = config.rules.consent.model_copy(update={"lawful_basis": LawfulBasis(required_in=["DE"])})
    config = dataclasses.replace(config, rules=config.rules.model_copy(update={"consent": consent}))
    for connection in config.relay.connections.values():
        connection.read_lag_seconds = 0
        connection.objects = [o for o in connection.objects if o not in ("Opportunity", "deals")]
    try:
        yield World(config, engine, Salesforce(instance_url="https://sandbox", session_id=sf_box.access_token(),
                                               session=sandbox_session(sf_url), version="59.0"),
                    HubSpot(access_token="sandbox-token", host=hs_url), hs_box)
    finally:
        engine.dispose()
        enrich_box.stop()
        hs_box.stop()
        sf_box.stop()


def _contact(world: World, **properties: str) -> str:
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate

    made = world.hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties=properties))
    return str(made.id)


def _hs(world: World, contact: str) -> dict[str, Any]:
    record = world.hs.crm.contacts.basic_api.get_by_id(contact, properties=[
        "hubspot_owner_id", "relay_routing_reason", "relay_sla_due", "hs_email_optout", "hs_legal_basis"])
    return dict(record.properties)


def _hs_tasks(world: World, contact: str) -> list[dict[str, Any]]:
    found = []
    for task in world.hs.crm.objects.get_all("tasks", properties=["hs_task_subject", "hs_task_body"],
                                             associations=["contacts"]):
        linked = task.associations.get("contacts") if task.associations else None
        if linked and any(str(a.id) == contact for a in linked.results):
            found.append(dict(task.properties))
    return found


def _audit(world: World, action: str, crm_id: str) -> list[AuditRow]:
    with session_factory(world.engine)() as session:
        return list(session.scalars(select(AuditRow).where(AuditRow.action == action, AuditRow.crm_id == crm_id)))


def _alerts(world: World, crm_id: str) -> list[dict[str, Any]]:
    with session_factory(world.engine)() as session:
        return [dict(row.payload) for row in session.scalars(select(NotificationRow).where(
            NotificationRow.crm_id == crm_id))]


def _sync(world: World, connection: str) -> None:
    summary = run_sync(world.config, connection, world.engine, now=lambda: datetime.now(UTC))
    assert summary.write_failures == [], summary.write_failures


def test_an_opted_out_lead_gets_an_owner_but_no_task_and_is_not_enriched(world: World) -> None:
    no_phone = _contact(world, email="pat.optout@acme-widgets.example", firstname="Pat", lastname="Optout",
                        country="US", hs_email_optout="true", **QUALIFIED_HS)
    with_phone = _contact(world, email="sam.optout@acme-widgets.example", firstname="Sam", lastname="Optout",
                          country="US", phone="+1 212 555 0100", hs_email_optout="true", **QUALIFIED_HS)
    plain = _contact(world, email="kim.plain@acme-widgets.example", firstname="Kim", lastname="Plain",
                     country="US", **QUALIFIED_HS)

    _sync(world, "hubspot")

    shown = _hs(world, no_phone)
    assert shown["hubspot_owner_id"]  # routed
    assert _hs_tasks(world, no_phone) == [] and not shown["relay_sla_due"]
    assert shown["relay_routing_reason"].endswith(
        "; no follow-up task or SLA: consent (opted out of email; no open channel to reach them (email closed))")
    (skipped,) = _audit(world, "not_enriched", no_phone)
    assert skipped.detail["skipped"] == ["no consent: opted out of email (consent.yaml allows no enrichment)"]
    (assigned,) = _audit(world, "assigned", no_phone)
    assert assigned.detail["consent"]["states"] == ["email_opt_out"]
    # With a number on file the rep may call: a task that says so.
    (task,) = _hs_tasks(world, with_phone)
    assert task["hs_task_body"].endswith("Consent: opted out of email: reach by phone only.")
    assert _audit(world, "not_enriched", with_phone)[0].detail["skipped"][0].startswith("no consent: opted out")
    # Nobody else is touched: a person without any consent state gets a task, as before.
    assert len(_hs_tasks(world, plain)) == 1 and _hs(world, plain)["relay_sla_due"]
    assert _audit(world, "assigned", plain)[0].detail["consent"] is None


def test_an_opt_out_after_routing_closes_the_clock_that_chases_the_owner(world: World) -> None:
    contact = _contact(world, email="lee.later@acme-widgets.example", firstname="Lee", lastname="Later",
                       country="US", **QUALIFIED_HS)
    _sync(world, "hubspot")
    assert [(c.status, c.closed_reason) for c in _clocks(world, contact)] == [("open", None)]

    from hubspot.crm.contacts import SimplePublicObjectInput

    world.hs.crm.contacts.basic_api.update(contact, SimplePublicObjectInput(properties={"hs_email_optout": "true"}))
    _sync(world, "hubspot")

    assert [(c.status, c.closed_reason) for c in _clocks(world, contact)] == [("closed", "consent")]
    assert len(_hs_tasks(world, contact)) == 1  # the task made before the opt-out stays; no new one


def _clocks(world: World, crm_id: str) -> list[SlaClockRow]:
    with session_factory(world.engine)() as session:
        return list(session.scalars(select(SlaClockRow).where(SlaClockRow.crm_id == crm_id).order_by(SlaClockRow.id)))


ONE_TO_ONE = "7880017"
"""The sandbox portal's "One to One" email subscription type (consent.yaml ships subscription_types.hubspot: [One to One])."""


def _unsubscribe(world: World, email: str, subscription_id: str = ONE_TO_ONE) -> None:
    from hubspot.communication_preferences import PublicUpdateSubscriptionStatusRequest

    world.hs.communication_preferences.status_api.unsubscribe(PublicUpdateSubscriptionStatusRequest(
        email_address=email, subscription_id=subscription_id, legal_basis="LEGITIMATE_INTEREST_PQL"))


def _opt_out_of_one_to_one(world: World, contact: str) -> str | None:
    found = world.hs.crm.contacts.basic_api.get_by_id(contact, properties=[f"hs_email_optout_{ONE_TO_ONE}"])
    value: str | None = found.properties.get(f"hs_email_optout_{ONE_TO_ONE}")
    return value


def test_a_contact_opted_out_of_one_to_one_sales_email_gets_an_owner_but_no_task_and_no_clock(world: World) -> None:
    no_phone = _contact(world, email="ray.sales@acme-widgets.example", firstname="Ray", lastname="Sales",
                        country="US", **QUALIFIED_HS)
    with_phone = _contact(world, email="una.sales@acme-widgets.example", firstname="Una", lastname="Sales",
                          country="US", phone="+1 212 555 0102", **QUALIFIED_HS)
    marketing_only = _contact(world, email="max.news@acme-widgets.example", firstname="Max", lastname="News",
                              country="US", **QUALIFIED_HS)
    _unsubscribe(world, "ray.sales@acme-widgets.example")
    _unsubscribe(world, "una.sales@acme-widgets.example")
    _unsubscribe(world, "max.news@acme-widgets.example", "7880016")  # Marketing Information: not the rep's concern

    _sync(world, "hubspot")  # no write failure: Relay never writes the read-only opt-out properties

    shown = _hs(world, no_phone)
    assert shown["hubspot_owner_id"]  # routed
    assert _hs_tasks(world, no_phone) == [] and not shown["relay_sla_due"] and _clocks(world, no_phone) == []
    assert shown["relay_routing_reason"].endswith(
        "; no follow-up task or SLA: consent (unsubscribed from One to One; no open channel to reach them "
        "(email closed))")
    assert _opt_out_of_one_to_one(world, no_phone) == "true"
    (assigned,) = _audit(world, "assigned", no_phone)
    assert assigned.detail["consent"]["states"] == ["unsubscribed"]
    assert assigned.detail["consent"]["unsubscribed_from"] == ["One to One"]
    (skipped,) = _audit(world, "not_enriched", no_phone)
    assert skipped.detail["skipped"] == ["no consent: unsubscribed from One to One (consent.yaml allows no enrichment)"]
    # With a number on file the rep may call; an opt-out of marketing email leaves sales email open.
    (task,) = _hs_tasks(world, with_phone)
    assert task["hs_task_body"].endswith("Consent: unsubscribed from One to One: reach by phone only.")
    assert [c.status for c in _clocks(world, with_phone)] == ["open"]
    assert len(_hs_tasks(world, marketing_only)) == 1 and _hs(world, marketing_only)["relay_sla_due"]
    assert _audit(world, "assigned", marketing_only)[0].detail["consent"] is None


def test_an_opt_out_of_one_to_one_after_routing_closes_the_clock(world: World) -> None:
    contact = _contact(world, email="ola.later@acme-widgets.example", firstname="Ola", lastname="Later",
                       country="US", **QUALIFIED_HS)
    _sync(world, "hubspot")
    assert [(c.status, c.closed_reason) for c in _clocks(world, contact)] == [("open", None)]

    _unsubscribe(world, "ola.later@acme-widgets.example")  # moves the contact's last modification: read again
    _sync(world, "hubspot")

    assert [(c.status, c.closed_reason) for c in _clocks(world, contact)] == [("closed", "consent")]


def test_a_type_the_portal_lacks_is_named_in_a_warning_and_the_sync_goes_on(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    consent = world.config.rules.consent.model_copy(
        update={"subscription_types": {"hubspot": ["Sales Email", "One to One"]}})
    world.config = dataclasses.replace(world.config, rules=world.config.rules.model_copy(update={"consent": consent}))
    contact = _contact(world, email="ivy.sales@acme-widgets.example", firstname="Ivy", lastname="Sales",
                       country="US", **QUALIFIED_HS)
    _unsubscribe(world, "ivy.sales@acme-widgets.example")

    with caplog.at_level(logging.WARNING, logger="connector.crms.hubspot.adapter"):
        _sync(world, "hubspot")

    named = [r.getMessage() for r in caplog.records if "Sales Email" in r.getMessage()]
    assert named == ["connection 'hubspot': consent.yaml subscription_types.hubspot names 'Sales Email', but the "
                     "HubSpot portal has no email subscription type of that name (its types: Marketing Information, "
                     "One to One, Customer Service Communication): opt-outs of it are not read"]
    assert _hs(world, contact)["hubspot_owner_id"] and _hs_tasks(world, contact) == []  # One to One still counts


def test_without_the_communication_preferences_scope_the_sync_warns_and_goes_on(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    contact = _contact(world, email="zed.scope@acme-widgets.example", firstname="Zed", lastname="Scope",
                       country="US", **QUALIFIED_HS)
    _unsubscribe(world, "zed.scope@acme-widgets.example")
    world.hs_box.denied_scopes.add("communication_preferences.read")

    with caplog.at_level(logging.WARNING, logger="connector.crms.hubspot.adapter"):
        _sync(world, "hubspot")

    refused = [r.getMessage() for r in caplog.records if "communication_preferences.read" in r.getMessage()]
    assert len(refused) == 1 and "HubSpot refused the list of email subscription types (MISSING_SCOPES" in refused[0]
    # Relay cannot see the opt-out: the contact is routed and followed up as before (hs_email_optout still counts).
    assert _hs(world, contact)["hubspot_owner_id"] and len(_hs_tasks(world, contact)) == 1


def test_a_salesforce_lead_that_may_neither_be_emailed_nor_called_gets_no_task(world: World) -> None:
    queue = world.sf.query("SELECT Id FROM User WHERE Email = 'lead.queue@northwind.example'")["records"][0]["Id"]
    made = world.sf.restful("sobjects/Lead", method="POST", headers=NO_AUTO_ASSIGN, json={
        "FirstName": "Dee", "LastName": "Nocall", "Email": "dee.nocall@acme-widgets.example", "Phone": "+1 212 555 0101",
        "HasOptedOutOfEmail": True, "DoNotCall": True, "OwnerId": queue, **QUALIFIED_SF})
    assert isinstance(made, dict)
    lead_id = made["id"]

    _sync(world, "salesforce")

    lead = world.sf.restful(f"sobjects/Lead/{lead_id}")
    assert isinstance(lead, dict)
    assert lead["OwnerId"] != queue and lead["Relay_Routing_Reason__c"].endswith(
        "; no follow-up task or SLA: consent (opted out of email, do not call; no open channel to reach them "
        "(email and phone closed))")
    assert lead["Relay_SLA_Due__c"] is None
    assert world.sf.query(f"SELECT Id FROM Task WHERE WhoId = '{lead_id}'")["totalSize"] == 0


def test_an_alert_about_a_person_without_a_lawful_basis_names_only_the_link(world: World) -> None:
    no_basis = _contact(world, email="jonas.weber@acme-widgets.example", firstname="Jonas", lastname="Weber",
                        country="DE", phone="+49 30 1234567", **QUALIFIED_HS)
    with_basis = _contact(world, email="lena.fischer@acme-widgets.example", firstname="Lena", lastname="Fischer",
                          country="DE", phone="+49 30 7654321", hs_legal_basis="Freely given consent from contact",
                          **QUALIFIED_HS)

    _sync(world, "hubspot")

    assert _hs(world, no_basis)["hubspot_owner_id"] and _hs_tasks(world, no_basis) == []
    (alert, *_) = _alerts(world, no_basis)
    text = str(alert)
    assert alert["lead"].startswith(f"contacts {no_basis} (personal data withheld: no lawful basis recorded)")
    assert alert["company"] == "withheld (consent)"
    assert "Jonas" not in text and "Weber" not in text and "jonas.weber" not in text and "Acme" not in text
    assert alert["link"] and no_basis in alert["link"] and PORTAL in alert["link"]
    (named, *_) = _alerts(world, with_basis)
    assert named["lead"] == "Lena Fischer" and named["company"] == "Acme Widgets"
    assert len(_hs_tasks(world, with_basis)) == 1
    assert _audit(world, "not_enriched", no_basis)[0].detail["skipped"] == [
        "no consent: no lawful basis recorded (consent.yaml allows no enrichment)"]
    # The alerts of later clock steps are told from the store, under the same consent.
    with session_factory(world.engine)() as session:
        later = lead_from_store(Repositories(session), "hubspot", "contacts", no_basis, world.config.rules)
        named_later = lead_from_store(Repositories(session), "hubspot", "contacts", with_basis, world.config.rules)
    assert later.name.startswith(f"contacts {no_basis} (personal data withheld") and later.company == WITHHELD
    assert named_later.name == "Lena Fischer"


def _post(world: World, source: str, **fields: Any) -> None:
    values, problems = read_fields(fields.items())
    assert problems == []
    store_submissions(world.config, world.engine, [submission(source, values, received_at=ANCHOR, channel="form")],
                      now=ANCHOR)


def test_a_form_records_opt_outs_and_the_lawful_basis_where_the_crm_keeps_them(world: World) -> None:
    _post(world, "website", email="ines.form@acme-widgets.example", first_name="Ines", last_name="Form",
          company="Acme Widgets", email_opt_out="yes", legal_basis="Freely given consent from contact")
    _post(world, "partner", email="omar.form@acme-widgets.example", last_name="Form", company="Acme Widgets",
          do_not_call=True, email_opt_out="no")

    process_events(world.config, world.engine)

    body = {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ",
                                           "value": "ines.form@acme-widgets.example"}]}],
            "properties": ["hs_email_optout", "hs_legal_basis", "hubspot_owner_id"], "limit": 10}
    (contact,) = world.hs.crm.contacts.search_api.do_search(public_object_search_request=body).results
    assert contact.properties["hs_email_optout"] == "true"
    assert contact.properties["hs_legal_basis"] == "Freely given consent from contact"
    (lead,) = world.sf.query("SELECT Id, DoNotCall, HasOptedOutOfEmail FROM Lead "
                             "WHERE Email = 'omar.form@acme-widgets.example'")["records"]
    assert (lead["DoNotCall"], lead["HasOptedOutOfEmail"]) == (True, False)

    # A later form saying "no" never lifts an opt-out; the lawful basis fills only an empty field.
    _post(world, "website", email="ines.form@acme-widgets.example", email_opt_out="no",
          legal_basis="Performance of a contract", title="Director")
    process_events(world.config, world.engine)
    (again,) = world.hs.crm.contacts.search_api.do_search(public_object_search_request=body).results
    assert again.properties["hs_email_optout"] == "true"
    assert again.properties["hs_legal_basis"] == "Freely given consent from contact"


def test_a_form_value_that_is_no_yes_or_no_is_refused_naming_the_field() -> None:
    _, problems = read_fields([("email", "a@b.example"), ("Do Not Call", "maybe"), ("Opt-Out", "yes")])
    assert [str(p) for p in problems] == ["Do Not Call: must be yes or no (true/false)"]
