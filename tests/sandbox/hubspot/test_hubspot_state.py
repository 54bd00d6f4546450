"""Seed loading, the injectable clock, file persistence and search freshness."""

from __future__ import annotations

from pathlib import Path

from hubspot.crm.contacts import (
    PublicMergeInput,
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot_portal import Seed, client, contact

from crm_sandbox.hubspot import HubSpotSandbox

OWNER = {"id": "501", "email": "solo@northwind.example", "firstName": "Solo", "lastName": "Owner", "userId": 7,
         "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-01-01T00:00:00.000Z", "archived": False, "teams": []}


def _seed() -> Seed:
    company = {"id": "900", "properties": {"name": "Globex", "domain": "globex.example"},
               "createdAt": "2025-01-01T00:00:00.000Z", "updatedAt": "2025-01-02T00:00:00.000Z", "archived": False}
    return Seed(
        hubspot={"contacts": [contact(1, hubspot_owner_id="501"), contact(2)], "companies": [company]},
        hubspot_owners=[OWNER],
        hubspot_associations=[("contacts", "1", "companies", "900", 279)],
    )


def test_seed_owners_associations_and_the_injected_clock() -> None:
    now = [1_767_225_600_000]
    box = HubSpotSandbox(_seed(), clock=lambda: now[0])
    server = box.start()
    try:
        hs = client(server)
        assert [o.email for o in hs.crm.owners.owners_api.get_page().results] == ["solo@northwind.example"]
        company = hs.crm.companies.basic_api.get_by_id("900", associations=["contacts"])
        assert company.properties["hs_lastmodifieddate"] == "2025-01-02T00:00:00.000Z"
        assert [a.id for a in company.associations["contacts"].results] == ["1"]
        now[0] += 1_234
        updated = hs.crm.contacts.basic_api.update("2", SimplePublicObjectInput(properties={"lastname": "Moved"}))
        assert updated.properties["lastmodifieddate"] == "2026-01-01T00:00:01.234Z"
        assert updated.properties["createdate"] == "2025-01-01T00:00:02.000Z"
        unchanged = hs.crm.contacts.basic_api.update("2", SimplePublicObjectInput(properties={"lastname": "Moved"}))
        assert unchanged.updated_at == updated.updated_at
    finally:
        box.stop()


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "portal.json"
    first = HubSpotSandbox(_seed(), state_file=path)
    server = first.start()
    hs = client(server)
    hs.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id="1", object_id_to_merge="2"))
    first.stop()
    assert path.exists()

    second = HubSpotSandbox(state_file=path)
    server = second.start()
    try:
        hs = client(server)
        primary = hs.crm.contacts.basic_api.get_by_id("1", properties=["hs_merged_object_ids", "hubspot_owner_id"],
                                                      associations=["companies"])
        assert primary.properties["hs_merged_object_ids"] == "2"
        assert primary.properties["hubspot_owner_id"] == "501"
        assert [a.id for a in primary.associations["companies"].results] == ["900"]
        assert [r.id for r in hs.crm.contacts.basic_api.get_page(archived=True).results] == ["2"]
    finally:
        second.stop()


def test_search_sees_writes_made_after_an_earlier_identical_search() -> None:
    box = HubSpotSandbox(_seed(), search_per_second=1_000)
    server = box.start()
    try:
        hs = client(server)
        query = PublicObjectSearchRequest(filter_groups=[{"filters": [
            {"propertyName": "hs_lead_status", "operator": "EQ", "value": "NEW"}]}])
        assert hs.crm.contacts.search_api.do_search(query).total == 0
        hs.crm.contacts.basic_api.update("1", SimplePublicObjectInput(properties={"hs_lead_status": "NEW"}))
        assert [r.id for r in hs.crm.contacts.search_api.do_search(query).results] == ["1"]
    finally:
        box.stop()


def test_search_can_trail_writes_like_hubspots_index() -> None:
    now = [1_767_225_600_000]
    box = HubSpotSandbox(search_lag_ms=5_000, clock=lambda: now[0], search_per_second=1_000)
    server = box.start()
    try:
        hs = client(server)
        made = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "late@example.com"}))
        assert hs.crm.contacts.search_api.do_search(PublicObjectSearchRequest()).total == 0
        assert hs.crm.contacts.basic_api.get_by_id(made.id).id == made.id
        now[0] += 5_000
        assert [r.id for r in hs.crm.contacts.search_api.do_search(PublicObjectSearchRequest()).results] == [made.id]
    finally:
        box.stop()
