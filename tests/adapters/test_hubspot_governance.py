"""Deal governance through the HubSpot adapter: property history and contact conversion.

Against the sandbox portal over real HTTP; what the adapter did is read back through
hubspot-api-client, as a user of the portal would see it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import AssociationSpec
from hubspot.crm.deals import ApiException as DealsApiException
from hubspot.crm.deals import (
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectId,
    SimplePublicObjectInput,
)
from hubspot.crm.deals import SimplePublicObjectInputForCreate as DealInput

from connector.adapters.base import Conversion, CrmAdapter, HistoryValue, WriteOp
from connector.adapters.errors import ConfigurationError, FatalError, RecordError
from connector.adapters.retry import RetryPolicy
from connector.crms.hubspot.adapter import HubSpotAdapter
from connector.crms.hubspot.governance import conversion_key, history_values, moves_forward
from crm_sandbox.hubspot import HubSpotSandbox

from ._sandbox_helpers import ManualClock, sandbox_admin

APP_ID = "1234567"
"""The sandbox's app id: the ``sourceId`` of what the API writes."""
ENTERPRISE = "75312468"
"""The sandbox's "Enterprise Sales" pipeline: stages 128400101 (Prospecting) ... 128400107."""


@pytest.fixture
def portal(hs_url: str) -> HubSpot:
    """hubspot-api-client on the sandbox portal: how the tests read back what the adapter did."""
    return HubSpot(access_token="sandbox-token", host=hs_url)


def posts(box: HubSpotSandbox, path: str) -> int:
    """POSTs the portal received on ``path`` (its ledger records a call just after answering it: wait for that)."""
    deadline = time.monotonic() + 2.0
    seen = -1
    while time.monotonic() < deadline:
        entries = box.ledger.entries()
        if len(entries) == seen:
            break
        seen = len(entries)
        time.sleep(0.05)
    return sum(1 for e in box.ledger.entries() if e.method == "POST" and e.path == path)


def deal(portal: HubSpot, properties: dict[str, str]) -> str:
    return str(portal.crm.deals.basic_api.create(DealInput(properties=properties)).id)


# --- history ---------------------------------------------------------------------------------


def test_history_of_a_deal_moved_through_two_stages_comes_oldest_first(
        hubspot: HubSpotAdapter, portal: HubSpot, clock: ManualClock) -> None:
    deals = portal.crm.deals.basic_api
    deal_id = deal(portal, {"dealname": "Acme - Platform", "pipeline": ENTERPRISE, "dealstage": "128400101",
                            "amount": "1000"})
    for stage in ("128400102", "128400103"):
        clock.advance(days=3)
        deals.update(deal_id, SimplePublicObjectInput(properties={"dealstage": stage}))
    assert isinstance(hubspot, CrmAdapter)

    history = hubspot.read_history("deals", [deal_id], ["dealstage", "no_such_property"])

    stages = history[deal_id]
    assert [(h.field, h.value, h.by) for h in stages] == [
        ("dealstage", "128400101", APP_ID), ("dealstage", "128400102", APP_ID), ("dealstage", "128400103", APP_ID)]
    assert stages[0].at < stages[1].at < stages[2].at and stages[2].at - stages[1].at == timedelta(days=3)
    seen = deals.get_by_id(deal_id, properties_with_history=["dealstage"]).properties_with_history["dealstage"]
    assert [(h.value, h.timestamp) for h in reversed(seen)] == [(h.value, h.at) for h in stages]
    assert hubspot.calls.get("read") == 1


def test_history_of_two_fields_is_merged_by_time(hubspot: HubSpotAdapter, portal: HubSpot,
                                                  clock: ManualClock) -> None:
    deal_id = deal(portal, {"dealname": "Two", "pipeline": "default", "dealstage": "appointmentscheduled"})
    clock.advance(hours=1)
    portal.crm.deals.basic_api.update(deal_id, SimplePublicObjectInput(properties={"amount": "500"}))
    clock.advance(hours=1)
    portal.crm.deals.basic_api.update(deal_id, SimplePublicObjectInput(properties={"dealstage": "closedwon",
                                                                                   "amount": ""}))

    history = hubspot.read_history("deal", [deal_id], ["dealstage", "amount"])[deal_id]

    assert [(h.field, h.value) for h in history] == [
        ("dealstage", "appointmentscheduled"), ("amount", "500"), ("dealstage", "closedwon"), ("amount", None)]
    assert history == sorted(history, key=lambda h: h.at)


def test_history_asks_50_ids_a_call_and_leaves_out_unknown_ids(hubspot: HubSpotAdapter,
                                                                 hs_sandbox: HubSpotSandbox) -> None:
    made = hubspot.write([WriteOp("deals", "create", {"dealname": f"d{i}", "pipeline": "default",
                                                      "dealstage": "qualifiedtobuy"}) for i in range(120)])
    ids = [str(r.crm_id) for r in made]
    before = hubspot.calls.get("read")

    history = hubspot.read_history("deals", [*ids, "424242", ids[0]], ["dealstage"])

    assert set(history) == set(ids)  # 424242 is not in the portal: left out, not an error
    assert all([h.value for h in values] == ["qualifiedtobuy"] for values in history.values())
    assert hubspot.calls.get("read") - before == 3  # 121 distinct ids: 50 + 50 + 21
    assert posts(hs_sandbox, "/crm/v3/objects/deals/batch/read") == 3


def test_the_portal_refuses_a_history_batch_of_more_than_50(hubspot: HubSpotAdapter, portal: HubSpot) -> None:
    ids = [str(r.crm_id) for r in hubspot.write([WriteOp("deals", "create", {"dealname": f"x{i}"})
                                                  for i in range(51)])]
    body = BatchReadInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=i) for i in ids], properties=[],
                                              properties_with_history=["dealname"])
    with pytest.raises(DealsApiException) as refused:
        portal.crm.deals.batch_api.read(body)
    assert refused.value.status == 400
    assert "maximum number of inputs supported in a batch request for property histories is 50" in str(refused.value.body)
    body.properties_with_history = []
    assert len(portal.crm.deals.batch_api.read(body).results) == 51  # without history, 100 a call


def test_history_of_nothing_asks_nothing_and_owners_have_none(hubspot: HubSpotAdapter) -> None:
    assert hubspot.read_history("deals", [], ["dealstage"]) == {}
    assert hubspot.read_history("deals", ["1"], []) == {}
    assert hubspot.calls.total == 0
    with pytest.raises(ConfigurationError, match="no property history of owners"):
        hubspot.read_history("owners", ["1"], ["email"])
    with pytest.raises(ConfigurationError):
        hubspot.read_history("spaceships", ["1"], ["name"])  # HubSpot's 400: no such object type


@dataclass
class _Seed:
    hubspot: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def test_history_the_portal_kept_names_the_user_or_the_source(policy: RetryPolicy) -> None:
    stages = [  # newest first, as HubSpot answers
        {"value": "qualifiedtobuy", "timestamp": "2025-01-09T10:00:00.000Z", "sourceType": "CRM_UI",
         "sourceId": "userId:7001", "updatedByUserId": 7001},
        {"value": "appointmentscheduled", "timestamp": "2025-01-02T10:00:00.000Z", "sourceType": "INTEGRATION",
         "sourceId": "5670736"},
    ]
    record = {"id": "9001", "properties": {"dealname": "Globex", "pipeline": "default", "dealstage": "qualifiedtobuy"},
              "createdAt": "2025-01-02T10:00:00.000Z", "updatedAt": "2025-01-09T10:00:00.000Z", "archived": False,
              "propertiesWithHistory": {"dealstage": stages}}
    box = HubSpotSandbox(_Seed(hubspot={"deals": [record]}), ten_second_limit=100_000)
    server = box.start()
    try:
        adapter = HubSpotAdapter("hubspot", str(server.url), "sandbox-token", retry=policy)
        assert adapter.read_history("deals", ["9001"], ["dealstage"]) == {"9001": [
            HistoryValue("dealstage", "appointmentscheduled", datetime(2025, 1, 2, 10, tzinfo=UTC), "5670736"),
            HistoryValue("dealstage", "qualifiedtobuy", datetime(2025, 1, 9, 10, tzinfo=UTC), "7001"),
        ]}
    finally:
        box.stop()


def test_values_of_one_timestamp_keep_hubspots_order_turned_round() -> None:
    stamp = "2025-03-01T08:00:00.000Z"
    row = {"id": "5", "propertiesWithHistory": {"dealstage": [
        {"value": "closedwon", "timestamp": stamp, "sourceType": "WORKFLOWS", "sourceId": "wf-9"},
        {"value": "contractsent", "timestamp": stamp, "sourceType": "CRM_UI", "updatedByUserId": 12},
        {"value": "appointmentscheduled", "timestamp": "2025-02-01T08:00:00.000Z", "sourceType": "IMPORT"}]}}

    values = history_values(row, ["dealstage"], "history")

    assert [(v.value, v.by) for v in values] == [("appointmentscheduled", None), ("contractsent", "12"),
                                                 ("closedwon", "wf-9")]


def test_an_unreadable_history_timestamp_names_the_record_and_property() -> None:
    row = {"id": "77", "propertiesWithHistory": {"dealstage": [{"value": "x", "timestamp": "yesterday"}]}}
    with pytest.raises(FatalError, match=r"record 77 .* dealstage .* 'yesterday'"):
        history_values(row, ["dealstage"], "history")
    assert history_values({"id": "78", "propertiesWithHistory": {}}, ["dealstage"], "history") == []


# --- conversion ------------------------------------------------------------------------------


def contact_with_company(portal: HubSpot, tag: str, lifecycle: str | None = "salesqualifiedlead") -> tuple[str, str]:
    """A contact whose primary company is set (association type 1), and that company."""
    from hubspot.crm.companies import SimplePublicObjectInputForCreate as CompanyInput
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate as ContactInput

    company = str(portal.crm.companies.basic_api.create(CompanyInput(properties={"name": f"{tag} Inc"})).id)
    properties = {"email": f"{tag}@convert.example", "lastname": tag}
    if lifecycle:
        properties["lifecyclestage"] = lifecycle
    contact = str(portal.crm.contacts.basic_api.create(ContactInput(properties=properties)).id)
    portal.crm.associations.v4.basic_api.create("contacts", contact, "companies", company, [
        AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=1)])
    return contact, company


def deals_of(portal: HubSpot, contact: str) -> list[str]:
    page = portal.crm.associations.v4.basic_api.get_page("contacts", contact, "deals")
    return [str(r.to_object_id) for r in page.results]


def owner_id(portal: HubSpot) -> str:
    return str(portal.crm.owners.owners_api.get_page().results[0].id)


def test_converting_a_contact_makes_an_associated_deal_and_an_opportunity(
        hubspot: HubSpotAdapter, portal: HubSpot) -> None:
    contact, company = contact_with_company(portal, "acme")
    owner = owner_id(portal)

    conversion = hubspot.convert_lead("contacts", contact, opportunity_name="Acme - New Business", owner_id=owner,
                                      pipeline=ENTERPRISE)

    assert conversion.opportunity_id is not None
    assert conversion == Conversion("contacts", contact, conversion.opportunity_id, contact, company, False)
    made = portal.crm.deals.basic_api.get_by_id(conversion.opportunity_id, properties=[
        "dealname", "pipeline", "dealstage", "hubspot_owner_id", "amount", "relay_conversion_key"],
        associations=["contacts", "companies"])
    assert made.properties["dealname"] == "Acme - New Business"
    assert (made.properties["pipeline"], made.properties["dealstage"]) == (ENTERPRISE, "128400101")  # first stage
    assert made.properties["hubspot_owner_id"] == owner and made.properties["amount"] is None
    assert made.properties["relay_conversion_key"] == conversion_key(contact, "Acme - New Business")
    assert [a.id for a in made.associations["contacts"].results] == [contact]
    assert {a.id for a in made.associations["companies"].results} == {company}
    person = portal.crm.contacts.basic_api.get_by_id(contact, properties=["lifecyclestage"])
    assert person.properties["lifecyclestage"] == "opportunity"


def test_a_second_conversion_finds_the_deal_of_the_first(hubspot: HubSpotAdapter, portal: HubSpot,
                                                         hs_sandbox: HubSpotSandbox) -> None:
    contact, company = contact_with_company(portal, "again")
    first = hubspot.convert_lead("contacts", contact, opportunity_name="Again - Expansion", owner_id=None)

    second = hubspot.convert_lead("contacts", contact, opportunity_name="Again - Expansion", owner_id=None)

    assert second == Conversion("contacts", contact, first.opportunity_id, contact, company, True)
    assert deals_of(portal, contact) == [first.opportunity_id]
    assert posts(hs_sandbox, "/crm/v3/objects/deals/batch/create") == 1
    made = portal.crm.deals.basic_api.get_by_id(str(first.opportunity_id), properties=["pipeline", "dealstage"])
    assert (made.properties["pipeline"], made.properties["dealstage"]) == ("default", "appointmentscheduled")


def test_a_retry_after_a_crash_before_the_lifecycle_update_finishes_it(
        hubspot: HubSpotAdapter, portal: HubSpot) -> None:
    from hubspot.crm.contacts import SimplePublicObjectInput as ContactUpdate

    contact, _ = contact_with_company(portal, "crash", lifecycle="lead")
    first = hubspot.convert_lead("contacts", contact, opportunity_name="Crash - New", owner_id=None)
    # As if the run had died after creating the deal: the contact is still a lead.
    portal.crm.contacts.basic_api.update(contact, ContactUpdate(properties={"lifecyclestage": "lead"}))

    retried = hubspot.convert_lead("contacts", contact, opportunity_name="Crash - New", owner_id=None)

    assert retried.already_converted and retried.opportunity_id == first.opportunity_id
    assert portal.crm.contacts.basic_api.get_by_id(contact, properties=["lifecyclestage"]).properties[
        "lifecyclestage"] == "opportunity"
    assert deals_of(portal, contact) == [first.opportunity_id]


def test_a_create_whose_answer_was_lost_makes_one_deal(hubspot: HubSpotAdapter, portal: HubSpot, hs_url: str,
                                                       hs_sandbox: HubSpotSandbox) -> None:
    contact, _ = contact_with_company(portal, "lost")
    sandbox_admin(hs_url, "PUT", "faults", {"script": [{"fault": "lost_after_apply",
                                                         "path": "/crm/v3/objects/deals/batch/create"}]})

    conversion = hubspot.convert_lead("contacts", contact, opportunity_name="Lost - New", owner_id=None)

    # The create landed, its answer did not; sent again, the portal refused the second deal (the unique
    # relay_conversion_key), and the adapter read the first one back.
    assert deals_of(portal, contact) == [conversion.opportunity_id]
    assert posts(hs_sandbox, "/crm/v3/objects/deals/batch/create") == 2
    assert portal.crm.contacts.basic_api.get_by_id(contact, properties=["lifecyclestage"]).properties[
        "lifecyclestage"] == "opportunity"


def test_a_customer_stays_a_customer_and_the_stage_may_be_named_by_label(
        hubspot: HubSpotAdapter, portal: HubSpot) -> None:
    contact, _ = contact_with_company(portal, "loyal", lifecycle="customer")

    conversion = hubspot.convert_lead("contacts", contact, opportunity_name="Loyal - Upsell", owner_id=None,
                                      pipeline="Enterprise Sales", stage="Discovery")

    made = portal.crm.deals.basic_api.get_by_id(str(conversion.opportunity_id), properties=["pipeline", "dealstage"])
    assert (made.properties["pipeline"], made.properties["dealstage"]) == (ENTERPRISE, "128400102")
    assert portal.crm.contacts.basic_api.get_by_id(contact, properties=["lifecyclestage"]).properties[
        "lifecyclestage"] == "customer"


def test_a_contact_without_a_company_gets_a_deal_all_the_same(hubspot: HubSpotAdapter, portal: HubSpot) -> None:
    [made] = hubspot.write([WriteOp("contacts", "create", {"email": "solo@convert.example"})])

    conversion = hubspot.convert_lead("contact", str(made.crm_id), opportunity_name="Solo", owner_id=None)

    assert conversion.account_id is None and deals_of(portal, str(made.crm_id)) == [conversion.opportunity_id]
    got = portal.crm.deals.basic_api.get_by_id(str(conversion.opportunity_id), associations=["companies"])
    assert got.associations is None or "companies" not in got.associations


def test_an_unknown_contact_is_refused_naming_it(hubspot: HubSpotAdapter, hs_sandbox: HubSpotSandbox) -> None:
    with pytest.raises(RecordError, match="cannot convert contact 424242: HubSpot has no such contact") as refused:
        hubspot.convert_lead("contacts", "424242", opportunity_name="Ghost", owner_id=None)
    assert refused.value.status == 404
    assert posts(hs_sandbox, "/crm/v3/objects/deals/batch/create") == 0


def test_a_refused_deal_names_the_contact(hubspot: HubSpotAdapter, portal: HubSpot) -> None:
    contact, _ = contact_with_company(portal, "badowner")
    with pytest.raises(RecordError, match=f"cannot convert contact {contact}: HubSpot refused the deal 'Bad'") as err:
        hubspot.convert_lead("contacts", contact, opportunity_name="Bad", owner_id="99999999")
    assert "hubspot_owner_id" in str(err.value) or "hubspot_owner_id" in err.value.fields
    assert deals_of(portal, contact) == []


def test_what_cannot_be_converted_is_a_configuration_error(hubspot: HubSpotAdapter, portal: HubSpot) -> None:
    contact, _ = contact_with_company(portal, "conf")
    with pytest.raises(ConfigurationError, match="converts contacts into deals, not 'companies'"):
        hubspot.convert_lead("companies", "1", opportunity_name="X", owner_id=None)
    with pytest.raises(ConfigurationError, match="no deal pipeline 'Wholesale'"):
        hubspot.convert_lead("contacts", contact, opportunity_name="X", owner_id=None, pipeline="Wholesale")
    with pytest.raises(ConfigurationError, match="deal pipeline default has no stage 'Prospecting'") as stage:
        hubspot.convert_lead("contacts", contact, opportunity_name="X", owner_id=None, stage="Prospecting")
    assert "appointmentscheduled (Appointment Scheduled)" in str(stage.value)
    assert deals_of(portal, contact) == []


def test_lifecycle_moves_only_forward_in_the_portals_order() -> None:
    custom = {"options": [{"value": "lead", "displayOrder": 1}, {"value": "nurture", "displayOrder": 2},
                          {"value": "opportunity", "displayOrder": 3}, {"value": "customer", "displayOrder": 4}]}
    assert moves_forward(custom, "nurture") and moves_forward(custom, None)
    assert not moves_forward(custom, "opportunity") and not moves_forward(custom, "customer")
    assert not moves_forward(custom, "unknown-stage")
    assert not moves_forward(None, "other") and moves_forward(None, "marketingqualifiedlead")
