"""The configuration Relay ships with loads, and its generated schemas are current."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config.canonical import RELAY_PERSON_FIELDS
from connector.config.loader import RelayConfig, load_config, validate_config
from connector.config.schema import export_schemas, stale_schemas
from connector.crms.hubspot.settings import HubSpotConnection
from connector.crms.salesforce.settings import SalesforceConnection

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config() -> RelayConfig:
    return load_config(REPO / "config", REPO / "mappings", env={})


def test_shipped_files_load_without_problems() -> None:
    assert validate_config(REPO / "config", REPO / "mappings", env={}) == []


def test_default_connections_point_at_the_sandboxes(config: RelayConfig) -> None:
    salesforce = config.connection("salesforce")
    hubspot = config.connection("hubspot")
    assert isinstance(salesforce, SalesforceConnection)
    assert isinstance(hubspot, HubSpotConnection)
    assert salesforce.base_url == "http://127.0.0.1:8701"
    assert salesforce.api_version == "59.0"
    assert salesforce.credentials.client_id.get_secret_value() == "sandbox"
    assert salesforce.objects == ["Lead", "Contact", "Account", "User", "Opportunity"]
    assert salesforce.write_batch_size == 200
    assert hubspot.base_url == "http://127.0.0.1:8702"
    assert hubspot.credentials.access_token.get_secret_value() == "sandbox-token"
    assert hubspot.objects == ["contacts", "companies", "owners", "deals"]
    assert hubspot.write_batch_size == 100
    assert "sandbox-token" not in repr(hubspot)


def test_environment_overrides_the_sandbox_defaults() -> None:
    env = {"SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com", "HUBSPOT_ACCESS_TOKEN": "pat-na1-123",
           "SALESFORCE_API_VERSION": "60.0"}
    config = load_config(REPO / "config", REPO / "mappings", env=env)
    assert config.connection("salesforce").base_url == "https://acme.my.salesforce.com"
    salesforce = config.connection("salesforce")
    hubspot = config.connection("hubspot")
    assert isinstance(salesforce, SalesforceConnection) and salesforce.api_version == "60.0"
    assert isinstance(hubspot, HubSpotConnection)
    assert hubspot.credentials.access_token.get_secret_value() == "pat-na1-123"


def test_rules_are_loaded_with_their_version(config: RelayConfig) -> None:
    assert len(config.rules.version) >= 8
    assert config.rules.version is config.rules.version  # computed once, not on every access


@pytest.mark.parametrize(("connection", "objects"), [("salesforce", ["Lead", "Contact"]), ("hubspot", ["contacts"])])
def test_relay_write_back_fields_are_read_and_written(config: RelayConfig, connection: str, objects: list[str]) -> None:
    for object_name in objects:
        mapping = config.object_mapping(connection, object_name)
        directions = {f.canonical: f.direction for f in mapping.fields}
        assert {name: directions.get(name) for name in RELAY_PERSON_FIELDS} == dict.fromkeys(RELAY_PERSON_FIELDS, "both")


def test_bookkeeping_fields_per_crm(config: RelayConfig) -> None:
    lead = config.object_mapping("salesforce", "Lead")
    assert (lead.id_field, lead.modified_field, lead.deleted_field) == ("Id", "SystemModstamp", "IsDeleted")
    contacts = config.object_mapping("hubspot", "contacts")
    assert (contacts.id_field, contacts.modified_field, contacts.deleted_field) == ("id", "hs_lastmodifieddate", "archived")
    assert lead.crm_fields_to_read()[:3] == ["Id", "SystemModstamp", "IsDeleted"]


def test_hubspot_creates_every_relay_property_it_writes(config: RelayConfig) -> None:
    contacts = config.object_mapping("hubspot", "contacts")
    created = {p.name: p for p in contacts.create_properties}
    relay_crm_fields = {f.crm for f in contacts.fields if f.canonical in RELAY_PERSON_FIELDS}
    assert set(created) == relay_crm_fields
    assert all(p.groupName == "relay" for p in created.values())
    # Records of the same person share their relay id, so it cannot be unique in the CRM...
    assert not created["relay_id"].hasUniqueValue
    tasks = config.object_mapping("hubspot", "tasks")
    assert [p.name for p in tasks.create_properties] == ["relay_idempotency_key"]
    # ...while the task key must be, so that a retried task upsert lands once.
    assert tasks.create_properties[0].hasUniqueValue


def test_committed_schemas_are_up_to_date() -> None:
    stale = stale_schemas(REPO / "config" / "schema")
    assert stale == [], f"regenerate with: python -m connector.config.schema config/schema (stale: {stale})"


def test_export_writes_all_fifteen_schemas(tmp_path: Path) -> None:
    written = export_schemas(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(
        ["relay.schema.json", "mappings.schema.json", "scoring.schema.json", "routing.schema.json", "sla.schema.json",
         "alerts.schema.json", "enrichment.schema.json", "matching.schema.json", "quality.schema.json",
         "stages.schema.json", "approvals.schema.json", "dispositions.schema.json", "handoffs.schema.json",
         "consent.schema.json", "retention.schema.json"]
    )


@pytest.mark.parametrize(
    ("path", "schema"),
    [("config/relay.yaml", "schema/relay.schema.json"), ("mappings/salesforce.yaml", "../config/schema/mappings.schema.json"),
     ("mappings/hubspot.yaml", "../config/schema/mappings.schema.json"),
     ("config/rules/scoring.yaml", "../schema/scoring.schema.json"),
     ("config/rules/routing.yaml", "../schema/routing.schema.json"),
     ("config/rules/sla.yaml", "../schema/sla.schema.json"),
     ("config/rules/alerts.yaml", "../schema/alerts.schema.json"),
     ("config/rules/enrichment.yaml", "../schema/enrichment.schema.json"),
     ("config/rules/matching.yaml", "../schema/matching.schema.json"),
     ("config/rules/stages.yaml", "../schema/stages.schema.json"),
     ("config/rules/approvals.yaml", "../schema/approvals.schema.json"),
     ("config/rules/dispositions.yaml", "../schema/dispositions.schema.json"),
     ("config/rules/handoffs.yaml", "../schema/handoffs.schema.json"),
     ("config/rules/consent.yaml", "../schema/consent.schema.json"),
     ("config/rules/retention.yaml", "../schema/retention.schema.json")],
)
def test_yaml_files_point_editors_at_their_schema(path: str, schema: str) -> None:
    first_line = (REPO / path).read_text(encoding="utf-8").splitlines()[0]
    assert first_line == f"# yaml-language-server: $schema={schema}"
    assert (REPO / path).parent.joinpath(schema).resolve().is_file()


def test_objects_to_sync_in_relay_yaml_order(config: RelayConfig) -> None:
    assert [(m.name, m.entity) for m in config.objects_to_sync("salesforce")] == [
        ("Lead", "person"), ("Contact", "person"), ("Account", "account"), ("User", "owner"), ("Opportunity", "deal")]
    assert [(m.name, m.entity) for m in config.objects_to_sync("hubspot")] == [
        ("contacts", "person"), ("companies", "account"), ("owners", "owner"), ("deals", "deal")]
    with pytest.raises(KeyError, match="no connection 'pipedrive' \\(known: salesforce, hubspot\\)"):
        config.objects_to_sync("pipedrive")
