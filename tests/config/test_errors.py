"""Every kind of configuration mistake is reported with file, key path, value and line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from connector.config.loader import load_config, validate_config
from connector.config.problems import ConfigError

if TYPE_CHECKING:
    from conftest import ConfigCopy

Problems = Callable[[], list[str]]


def test_typo_in_a_key_is_rejected_with_a_suggestion(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/relay.yaml", "    page_size: 2000", "    page_sise: 2000")
    assert problems_of() == [
        "config/relay.yaml:19: connections.salesforce.page_sise: unknown key 'page_sise'; did you mean "
        "'page_size'? (allowed: kind, base_url, mapping, schedule, write_back, connect_timeout, read_timeout, "
        "max_attempts, read_lag_seconds, owners_cache_seconds, deletions_every_minutes, duplicates, run_deadline_minutes, "
        "api_version, credentials, objects, page_size, write_batch_size, organization_id, api_daily_limit, "
        "api_reserve_percent, api_budget_block)"
    ]


def test_wrong_type_names_the_value(shipped: ConfigCopy) -> None:
    shipped.edit("config/relay.yaml", "write_back: true", "write_back: sometimes")
    (problem,) = validate_config(shipped.config_dir, shipped.mappings_dir, env={})
    assert problem.file == "config/relay.yaml"
    assert problem.key_path == "connections.salesforce.write_back"
    assert problem.value == "sometimes"
    assert problem.line == 22
    assert "valid boolean" in problem.message and "'sometimes'" in problem.message


def test_batch_size_over_the_api_maximum(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/relay.yaml", "write_batch_size: 200", "write_batch_size: 500")
    shipped.edit("config/relay.yaml", "write_batch_size: 100", "write_batch_size: 250")
    assert problems_of() == [
        "config/relay.yaml:20: connections.salesforce.write_batch_size: write_batch_size 500 is over the "
        "Salesforce API maximum of 200 records per sObject Collections call",
        "config/relay.yaml:33: connections.hubspot.write_batch_size: write_batch_size 250 is over the "
        "HubSpot API maximum of 100 inputs per batch call",
    ]


def test_unknown_canonical_field(shipped: ConfigCopy) -> None:
    shipped.edit("mappings/hubspot.yaml", "{canonical: title, crm: jobtitle", "{canonical: job_title, crm: jobtitle")
    (problem,) = validate_config(shipped.config_dir, shipped.mappings_dir, env={})
    assert (problem.file, problem.key_path, problem.value) == (
        "mappings/hubspot.yaml", "objects.contacts.fields[4].canonical", "job_title")
    assert problem.message.startswith("'job_title' is not a canonical field of person; did you mean 'title'?")
    assert problem.line == 22


def test_bad_yaml_indentation_names_line_and_column(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/relay.yaml", "    page_size: 100 ", "      page_size: 100 ")
    (message,) = problems_of()
    assert message.startswith("config/relay.yaml:32: YAML syntax error at line 32, column 7:")
    assert "indentation" in message


def test_several_errors_in_several_files_are_all_reported(shipped: ConfigCopy) -> None:
    shipped.edit("config/relay.yaml", "write_batch_size: 200", "write_batch_size: 201")
    shipped.edit("config/relay.yaml", "schedule: {every_minutes: 15}", "schedule: {every_minutes: 15, cron: '* * * * *'}")
    shipped.edit("mappings/salesforce.yaml", "crm: Email, transform: [strip, lowercase]}",
                 "crm: Email, transform: [strip, lowercse]}")
    shipped.edit("mappings/hubspot.yaml", "direction: read, transform: [int]}", "direction: red, transform: [int]}")
    shipped.edit("config/rules/routing.yaml", "group: sdr_team", "group: sdrs")
    with pytest.raises(ConfigError) as caught:
        load_config(shipped.config_dir, shipped.mappings_dir, env={})
    found = {(p.file, p.key_path, str(p.value)) for p in caught.value.problems}
    assert found == {
        ("config/relay.yaml", "connections.salesforce.write_batch_size", "201"),
        ("config/relay.yaml", "connections.salesforce.schedule", "{'every_minutes': 15, 'cron': '* * * * *'}"),
        ("mappings/salesforce.yaml", "objects.Lead.fields[2].transform[1]", "lowercse"),
        ("mappings/hubspot.yaml", "objects.contacts.fields[8].direction", "red"),
        ("config/rules/routing.yaml", "rules[4].group", "sdrs"),
    }
    text = str(caught.value)
    assert text.startswith("5 configuration problems:")
    assert "unknown transform 'lowercse' (known: strip, lowercase" in text
    assert "give exactly one of every_minutes or cron" in text


def test_rules_problems_name_the_rule_file(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/rules/routing.yaml", "group: sdr_team", "group: sdrs")
    (message,) = problems_of()
    assert message.startswith("config/rules/routing.yaml:")
    assert ": rules[4].group: " in message and "'sdrs'" in message and "sdr_team" in message


def test_connection_object_without_a_mapping(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("mappings/salesforce.yaml", "  User:\n", "  UserX:\n")
    assert problems_of() == [
        "config/relay.yaml:18: connections.salesforce.objects[3]: 'User' has no mapping in "
        "mappings/salesforce.yaml (mapped: Lead, Contact, Account, UserX, Opportunity, Task)"
    ]


def test_connection_without_a_mapping_file(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.path("mappings/hubspot.yaml").unlink()
    assert problems_of() == [
        "config/relay.yaml:26: connections.hubspot.kind: no mapping file mappings/hubspot.yaml for this "
        "connection (known: salesforce)"
    ]


def test_duplicate_crm_field_is_flagged(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("mappings/salesforce.yaml", "{canonical: last_name, crm: LastName", "{canonical: last_name, crm: FirstName")
    assert problems_of() == [
        "mappings/salesforce.yaml:18: objects.Lead.fields[1].crm: CRM field 'FirstName' is already mapped at "
        "fields[0]; map each field once"
    ]


def test_duplicate_yaml_key_is_flagged(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/relay.yaml", "    write_back: true\n", "    write_back: true\n    write_back: false\n")
    assert problems_of() == [
        "config/relay.yaml:23: connections.salesforce.write_back: key 'write_back' appears twice; remove one of them"
    ]


def test_typed_field_needs_its_type_transform(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("mappings/hubspot.yaml", "crm: numemployees, direction: read, transform: [int]}",
                 "crm: numemployees, direction: read}")
    assert problems_of() == [
        "mappings/hubspot.yaml:26: objects.contacts.fields[8].transform: employees is a whole number (int); add the 'int' "
        "transform so CRM values are parsed"
    ]


def test_missing_required_key(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("mappings/hubspot.yaml", "    id_field: id\n    modified_field: updatedAt\n", "    modified_field: updatedAt\n")
    (message,) = problems_of()
    assert message.startswith("mappings/hubspot.yaml:") and "objects.owners.id_field: required key 'id_field' is missing" in message


def test_unset_environment_variable_without_default(shipped: ConfigCopy) -> None:
    shipped.edit("config/relay.yaml", "${HUBSPOT_ACCESS_TOKEN:-sandbox-token}", "${HUBSPOT_ACCESS_TOKEN}")
    (problem,) = validate_config(shipped.config_dir, shipped.mappings_dir, env={})
    assert problem.key_path == "connections.hubspot.credentials.access_token"
    assert "environment variable HUBSPOT_ACCESS_TOKEN is not set" in problem.message
    assert validate_config(shipped.config_dir, shipped.mappings_dir, env={"HUBSPOT_ACCESS_TOKEN": "x"}) == []


def test_secrets_are_not_echoed_in_problems(shipped: ConfigCopy) -> None:
    shipped.edit("config/relay.yaml", "access_token: ${HUBSPOT_ACCESS_TOKEN:-sandbox-token}", "access_token: [pat-secret]")
    (problem,) = validate_config(shipped.config_dir, shipped.mappings_dir, env={})
    assert problem.key_path == "connections.hubspot.credentials.access_token"
    assert "pat-secret" not in str(problem) and problem.value == "***"


def test_unknown_connection_kind(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/relay.yaml", "kind: hubspot", "kind: pipedrive")
    (message,) = problems_of()
    assert message.startswith("config/relay.yaml:25: connections.hubspot: ")
    assert "'pipedrive'" in message and "'hubspot', 'salesforce'" in message  # the registered CRM units


def test_bad_cron_expression(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/relay.yaml", "schedule: {every_minutes: 15}", "schedule: {cron: '*/15 25 * * *'}")
    assert problems_of() == [
        "config/relay.yaml:21: connections.salesforce.schedule.cron: cron hour field '25': 25 is outside 0-23"
    ]


def test_create_properties_only_for_hubspot(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("mappings/salesforce.yaml", "      - {canonical: idempotency_key, crm: Relay_Idempotency_Key__c, direction: write}\n",
                 "      - {canonical: idempotency_key, crm: Relay_Idempotency_Key__c, direction: write}\n"
                 "    create_properties:\n      - {name: relay_x, label: X, type: string, fieldType: number}\n")
    line = next(n for n, text in enumerate(shipped.path("mappings/salesforce.yaml").read_text().splitlines(), 1)
                if "relay_x" in text)
    assert sorted(problems_of()) == [
        f"mappings/salesforce.yaml:{line}: objects.Task.create_properties[0]: fieldType 'number' does not fit type "
        "'string' (use text or textarea)",
    ]


def test_missing_files_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    messages = [str(p) for p in validate_config("config", "mappings", env={})]
    assert "config/relay.yaml: file not found; Relay needs relay.yaml to know its connections" in messages
    assert "mappings: mappings directory not found" in messages
    assert "config/rules/scoring.yaml: file not found" in messages


def test_connection_names_must_be_simple(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/relay.yaml", "  hubspot:\n", "  HubSpot EU:\n")
    assert problems_of() == [
        "config/relay.yaml:25: connections.HubSpot EU: connection name 'HubSpot EU' must be lower-case letters, "
        "digits and underscores, starting with a letter",
        # ... and the form source that names it, reported with it rather than instead of it
        "config/relay.yaml:46: capture.sources.website.connection: 'hubspot' is not a connection in relay.yaml "
        "(known: HubSpot EU, salesforce)",
    ]


def test_problems_come_in_file_order(shipped: ConfigCopy) -> None:
    shipped.edit("config/rules/sla.yaml", "response_minutes: 5", "response_minutes: -5")
    shipped.edit("mappings/hubspot.yaml", "direction: read, transform: [float]}", "direction: red, transform: [float]}")
    shipped.edit("mappings/salesforce.yaml", "  User:\n", "  Users:\n")
    shipped.edit("config/relay.yaml", "  hubspot:\n", "  Hub:\n")
    found = [(p.file, p.key_path) for p in validate_config(shipped.config_dir, shipped.mappings_dir, env={})]
    assert found == [
        ("config/relay.yaml", "connections.salesforce.objects[3]"),
        ("config/relay.yaml", "connections.Hub"),
        ("config/relay.yaml", "capture.sources.website.connection"),
        ("mappings/hubspot.yaml", "objects.contacts.fields[9].direction"),
        ("config/rules/sla.yaml", "tiers[0].response_minutes"),
    ]


def test_top_level_must_be_a_mapping(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.path("mappings/extra.yaml").write_text("- contacts\n- companies\n", encoding="utf-8")
    assert problems_of() == ["mappings/extra.yaml:1: the file must hold a mapping of keys at its top level"]


def test_file_that_is_not_utf8(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.path("mappings/latin1.yaml").write_bytes("crm: hubspot\n# café\n".encode("latin-1"))
    assert problems_of() == ["mappings/latin1.yaml: the file is not UTF-8 text (byte 18); save it as UTF-8"]


def test_empty_file(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.path("config/rules/sla.yaml").write_text("# nothing here yet\n", encoding="utf-8")
    assert problems_of() == ["config/rules/sla.yaml: file is empty"]


def test_tab_indentation_is_explained(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.path("mappings/tabs.yaml").write_text("crm: hubspot\nobjects:\n\tcontacts: {}\n", encoding="utf-8")
    (message,) = problems_of()
    assert message.startswith("mappings/tabs.yaml:3: YAML syntax error at line 3, column 1:")
    assert message.endswith("this line is indented with a tab; YAML indentation must use spaces")


def test_missing_connection_kind(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/relay.yaml", "    kind: salesforce\n", "    knid: salesforce\n")
    assert problems_of() == [
        "config/relay.yaml:9: connections.salesforce: required key 'kind' is missing; it tells Relay what this is, "
        "so nothing else here can be checked yet"
    ]


def test_a_zero_is_shown_as_the_value_given(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/relay.yaml", "write_batch_size: 200", "write_batch_size: 0")
    (problem,) = problems_of()
    assert problem.startswith("config/relay.yaml:20: connections.salesforce.write_batch_size: ")
    assert problem.endswith("(got 0)")
