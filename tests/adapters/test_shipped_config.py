"""The shipped config/ and mappings/ drive the adapters end to end against both sandboxes."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.adapters.base import FieldSpec
from connector.adapters.errors import ConfigurationError
from connector.adapters.retry import RetryPolicy
from connector.config.loader import RelayConfig, load_config
from connector.crms.factory import build_adapter
from connector.crms.hubspot.adapter import HubSpotAdapter
from connector.crms.salesforce.adapter import SalesforceAdapter

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(sf_url: str, hs_url: str) -> RelayConfig:
    env = {"SALESFORCE_INSTANCE_URL": sf_url, "HUBSPOT_BASE_URL": hs_url}
    return load_config(ROOT / "config", ROOT / "mappings", env=env)


@pytest.mark.parametrize("name", ["salesforce", "hubspot"])
def test_every_synced_object_reads_with_its_mapped_fields(config: RelayConfig, name: str,
                                                          policy: RetryPolicy) -> None:
    adapter = build_adapter(name, config.connection(name), retry=policy)
    for mapping in config.objects_to_sync(name):
        object_name = mapping._name
        assert object_name is not None
        specs = [FieldSpec.of(p) for p in mapping.create_properties]
        if specs:
            adapter.ensure_fields(object_name, specs)
        fields = [f.crm for f in mapping.fields if f.reads]
        records = [r for page in adapter.read(object_name, fields, None) for r in page.records]
        assert records, f"{name} {object_name}: nothing read"
        missing = [f for f in fields if f not in records[0]]
        assert not missing, f"{name} {object_name}: mapped fields not in the records: {missing}"


def test_salesforce_write_back_fields_exist_in_the_org(config: RelayConfig, policy: RetryPolicy) -> None:
    adapter = build_adapter("salesforce", config.connection("salesforce"), retry=policy)
    assert isinstance(adapter, SalesforceAdapter)
    lead = config.object_mapping("salesforce", "Lead")
    assert adapter.ensure_fields("Lead", [f.crm for f in lead.fields if f.writes]) == []


def test_hubspot_connection_gets_its_batch_size_and_token(config: RelayConfig) -> None:
    adapter = build_adapter("hubspot", config.connection("hubspot"))
    assert isinstance(adapter, HubSpotAdapter) and adapter.write_batch_size == 100


def test_unknown_kinds_are_refused() -> None:
    class Odd:
        kind = "pipedrive"
        credentials = object()

    with pytest.raises(ConfigurationError, match="pipedrive"):
        build_adapter("odd", Odd())
