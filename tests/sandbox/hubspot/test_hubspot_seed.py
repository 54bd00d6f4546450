"""The generated seed data loads and reads back through the SDK with response validation on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hubspot import HubSpot
from hubspot_portal import client

from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.hubspot.properties import normalise_value
from crm_sandbox.seed import SeedData, generate


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[SeedData, HubSpotSandbox, HubSpot]]:
    data = generate(seed=7, leads=300, anchor=datetime(2026, 1, 15, tzinfo=UTC))
    box = HubSpotSandbox(data, ten_second_limit=100_000)
    server = box.start()
    yield data, box, client(server)
    box.stop()


def test_every_seeded_object_reads_back(seeded: tuple[SeedData, HubSpotSandbox, HubSpot]) -> None:
    data, _, hs = seeded
    assert len(hs.crm.contacts.get_all(associations=["companies"])) == sum(not r["archived"] for r in data.hubspot["contacts"])
    assert len(hs.crm.companies.get_all()) == sum(not r["archived"] for r in data.hubspot["companies"])
    assert len(hs.crm.deals.get_all(properties=["dealstage", "amount"])) == sum(not r["archived"] for r in data.hubspot["deals"])
    from hubspot.utils.objects import fetch_all

    tasks = fetch_all(hs.crm.objects.tasks.basic_api, properties=["hs_task_subject"], associations=["contacts"])
    assert len(tasks) == sum(not r["archived"] for r in data.hubspot["tasks"])
    active = [o for o in data.hubspot_owners if not o["archived"]]
    assert len(hs.crm.owners.owners_api.get_page(limit=500).results) == len(active)


def test_seeded_values_satisfy_the_property_definitions(seeded: tuple[SeedData, HubSpotSandbox, HubSpot]) -> None:
    _, box, _ = seeded
    owners = set(box.state.owners)
    problems = []
    for object_type, records in box.state.records.items():
        definitions = box.state.definitions[object_type]
        for record in records.values():
            for name, value in record["properties"].items():
                if value is not None:
                    _, problem = normalise_value(definitions[name], value, owners)
                    if problem:
                        problems.append((object_type, record["id"], problem))
    assert problems == []


def test_seeded_associations_are_readable_from_both_ends(seeded: tuple[SeedData, HubSpotSandbox, HubSpot]) -> None:
    data, _, hs = seeded
    from_type, from_id, to_type, to_id, _ = next(a for a in data.hubspot_associations if a[0] == "contacts")
    forward = hs.crm.associations.v4.basic_api.get_page(from_type, from_id, to_type)
    assert str(to_id) in {str(r.to_object_id) for r in forward.results}
    backward = hs.crm.associations.v4.basic_api.get_page(to_type, to_id, from_type)
    assert str(from_id) in {str(r.to_object_id) for r in backward.results}
