"""The shipped mappings read every record the sandbox CRMs are seeded with, mess included."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connector.config.loader import RelayConfig, load_config
from connector.crms.hubspot.records import flatten
from connector.mapping import record_meta, to_canonical
from crm_sandbox.seed import SeedData, generate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config() -> RelayConfig:
    return load_config(REPO / "config", REPO / "mappings", env={})


@pytest.fixture(scope="module")
def seed() -> SeedData:
    return generate(seed=7, leads=300, anchor=datetime(2024, 6, 1, tzinfo=UTC))


def records(seed: SeedData, connection: str, object_name: str) -> list[dict[str, Any]]:
    if connection == "salesforce":
        return seed.salesforce[object_name]
    if object_name == "owners":
        return seed.hubspot_owners
    return [flatten(row) for row in seed.hubspot[object_name]]  # as the HubSpot adapter hands them on


@pytest.mark.parametrize(
    ("connection", "object_name"),
    [("salesforce", "Lead"), ("salesforce", "Contact"), ("salesforce", "Account"), ("salesforce", "User"),
     ("hubspot", "contacts"), ("hubspot", "companies"), ("hubspot", "owners")],
)
def test_every_seeded_record_maps_without_problems(
    config: RelayConfig, seed: SeedData, connection: str, object_name: str
) -> None:
    mapping = config.object_mapping(connection, object_name)
    rows = records(seed, connection, object_name)
    assert rows, f"the seed has no {object_name}"
    for row in rows:
        canonical, problems = to_canonical(mapping, row)
        assert problems == [], [str(p) for p in problems]
        meta = record_meta(mapping, row)
        assert meta.record_id and meta.modified_at is not None and meta.modified_at <= seed.anchor
        if mapping.entity == "person":
            assert isinstance(canonical["created_at"], datetime) and canonical["created_at"].tzinfo is not None
        if mapping.entity == "owner":
            assert "@" in canonical["email"] and isinstance(canonical["active"], bool)


def test_the_inactive_rep_reads_as_inactive_in_both_crms(config: RelayConfig, seed: SeedData) -> None:
    salesforce_users = [to_canonical(config.object_mapping("salesforce", "User"), u)[0] for u in seed.salesforce["User"]]
    hubspot_owners = [to_canonical(config.object_mapping("hubspot", "owners"), o)[0] for o in seed.hubspot_owners]
    for owners in (salesforce_users, hubspot_owners):
        inactive = {o["email"] for o in owners if not o["active"]}
        assert "lucas.silva@northwind.example" in inactive
        assert "olivia.grant@northwind.example" not in inactive
