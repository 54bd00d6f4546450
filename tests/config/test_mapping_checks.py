"""Mapping files: transform specs, types and HubSpot property specs are checked."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from connector.config.mappings import MappingFile, check_mapping_file


def mapping(fields: list[dict[str, Any]], crm: str = "hubspot", entity: str = "person", **extra: Any) -> dict[str, Any]:
    return {"crm": crm, "objects": {"contacts": {"entity": entity, "id_field": "id", "fields": fields, **extra}}}


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        (["lowercse"], "unknown transform 'lowercse' (known: strip, lowercase, uppercase, e164_phone"),
        (["picklist"], "picklist needs a map"),
        ([{"picklist": {"map": {}}}], "picklist map must be a non-empty mapping"),
        ([{"picklist": {"map": {"A": "a"}, "fallback": "x"}}], "picklist has unknown option(s) ['fallback']"),
        ([{"e164_phone": {"default_region": "XX"}}], "default_region 'XX' is not a two-letter country code"),
        ([{"strip": {"chars": " "}}], "transform 'strip' takes no options"),
        ([{"lowercase": None, "strip": None}], "a transform is a name like 'lowercase'"),
    ],
)
def test_bad_transform_specs(transform: list[Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MappingFile.model_validate(mapping([{"canonical": "email", "crm": "email", "transform": transform}]))
    assert message in str(caught.value)


def test_good_transform_specs_parse() -> None:
    parsed = MappingFile.model_validate(mapping([
        {"canonical": "phone", "crm": "phone", "transform": ["strip", {"e164_phone": {"default_region": "gb"}}]},
        {"canonical": "status", "crm": "hs_lead_status", "transform": [{"picklist": {"map": {"NEW": "New"}, "default": "Other"}}]},
    ]))
    fields = parsed.objects["contacts"].fields
    assert [(t.name, dict(t.options)) for t in fields[0].transform] == [("strip", {}), ("e164_phone", {"default_region": "GB"})]
    assert fields[1].transform[0].options == {"map": {"NEW": "New"}, "default": "Other"}
    assert parsed.objects["contacts"].crm == "hubspot" and parsed.objects["contacts"].name == "contacts"
    assert check_mapping_file(parsed) == []


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"canonical": "email", "crm": "email", "transform": ["int"]}, "email is text; transform 'int' would change its type"),
        ({"canonical": "page_views", "crm": "views", "transform": ["float"]},
         "page_views is a whole number (int); add the 'int' transform"),
        ({"canonical": "created_at", "crm": "createdate", "transform": ["datetime", "date"]},
         "created_at is a datetime; remove transform 'date'"),
        ({"canonical": "relay_sla_due", "crm": "due", "direction": "read", "transform": ["date"]},
         "relay_sla_due is a datetime; add the 'datetime' transform"),
    ],
)
def test_type_transform_problems(field: dict[str, Any], message: str) -> None:
    problems = check_mapping_file(MappingFile.model_validate(mapping([field])))
    assert len(problems) == 1
    assert problems[0][0] == ("objects", "contacts", "fields", 0, "transform")
    assert problems[0][2].startswith(message)


def test_a_canonical_field_is_read_from_one_crm_field_only() -> None:
    problems = check_mapping_file(MappingFile.model_validate(mapping([
        {"canonical": "updated_at", "crm": "lastmodifieddate", "transform": ["datetime"]},
        {"canonical": "updated_at", "crm": "hs_lastmodifieddate", "transform": ["datetime"]},
    ])))
    assert problems == [(("objects", "contacts", "fields", 1, "canonical"), "updated_at",
                         "canonical field 'updated_at' is already read from fields[0] (lastmodifieddate); "
                         "read it from one CRM field only")]


def test_a_field_may_be_read_from_one_place_and_written_to_two() -> None:
    parsed = MappingFile.model_validate(mapping([
        {"canonical": "relay_score", "crm": "relay_score", "transform": ["int"]},
        {"canonical": "relay_score", "crm": "legacy_score", "direction": "write", "transform": ["int"]},
    ]))
    assert check_mapping_file(parsed) == []


def test_hubspot_property_specs() -> None:
    base = {"canonical": "relay_id", "crm": "relay_id"}
    with pytest.raises(ValidationError, match="fieldType 'number' does not fit type 'string'"):
        MappingFile.model_validate(mapping([base], create_properties=[
            {"name": "relay_id", "label": "Relay id", "type": "string", "fieldType": "number"}]))
    with pytest.raises(ValidationError, match="groupName"):
        MappingFile.model_validate(mapping([base], create_properties=[
            {"name": "relay_id", "label": "Relay id", "type": "string", "fieldType": "text", "groupName": "contactinformation"}]))
    parsed = MappingFile.model_validate(mapping([base], create_properties=[
        {"name": "relay_id", "label": "Relay id", "type": "string", "fieldType": "text"},
        {"name": "relay_unused", "label": "Unused", "type": "number", "fieldType": "number"}]))
    assert [(path[-2:], message) for path, _, message in check_mapping_file(parsed)] == [
        ((1, "name"), "property 'relay_unused' is created but no field maps it; add it under fields or remove it")]
    assert parsed.objects["contacts"].create_properties[0].model_dump(exclude_defaults=False) == {
        "name": "relay_id", "label": "Relay id", "type": "string", "fieldType": "text", "groupName": "relay",
        "description": "", "hasUniqueValue": False}
