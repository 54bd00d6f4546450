"""Models of ``mappings/*.yaml``: how each CRM object's fields map to canonical fields."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from connector.config._base import ConfigModel
from connector.config.canonical import CANONICAL_FIELDS, OPEN_ENTITIES, Entity, field_type
from connector.crms import UnknownCrm, crm_kinds, crm_unit

CrmKind = str
"""A registered CRM unit's kind (``connector.crms``: ``salesforce``, ``hubspot``...)."""
PersonKind = Literal["lead", "contact"]
Direction = Literal["read", "write", "both"]

SIMPLE_TRANSFORMS: dict[str, str] = {
    "strip": "remove surrounding whitespace",
    "lowercase": "lower-case text (emails, domains)",
    "uppercase": "upper-case text",
    "e164_phone": "phone number in E.164 (+14155550100); numbers without + are read as US",
    "iso_country": "country as ISO 3166-1 alpha-2 (US, GB); accepts names and alpha-3",
    "iso_state": "state/province as its ISO 3166-2 code without the country (CA, ON); accepts names",
    "date": "calendar date; written as YYYY-MM-DD",
    "datetime": "timezone-aware UTC datetime; written as ISO-8601 with Z (milliseconds)",
    "int": "whole number",
    "float": "decimal number",
    "bool": "true/false",
    "negate": "invert a boolean (e.g. HubSpot owner 'archived' -> canonical 'active')",
}
"""Transforms written as a bare name, with what they do."""
PARAMETERISED_TRANSFORMS = ("picklist", "e164_phone")
TYPE_TRANSFORMS: dict[str, str] = {"int": "int", "float": "float", "bool": "bool", "date": "date", "datetime": "datetime"}
"""Transforms that fix a field's type: transform name -> canonical type it yields."""


@dataclass(frozen=True)
class TransformSpec:
    """One step of a field's transform chain, as parsed from the mapping file.

    Attributes:
        name: Registry name of the transform (``lowercase``, ``picklist``...).
        options: Its parameters (``map``/``default`` for picklist, ``default_region`` for phones).
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_yaml(self) -> str | dict[str, Any]:
        """The form the mapping file uses for this step."""
        return {self.name: dict(self.options)} if self.options else self.name


def _parse_transform(value: Any) -> TransformSpec:
    if isinstance(value, TransformSpec):
        return value
    known = ", ".join([*SIMPLE_TRANSFORMS, "picklist"])
    if isinstance(value, str):
        if value in SIMPLE_TRANSFORMS:
            return TransformSpec(value)
        if value == "picklist":
            raise ValueError("picklist needs a map, e.g. {picklist: {map: {'Web': web}, default: other}}")
        raise ValueError(f"unknown transform {value!r} (known: {known})")
    if isinstance(value, dict) and len(value) == 1:
        ((name, options),) = value.items()
        if name == "picklist":
            return TransformSpec("picklist", _picklist_options(options))
        if name == "e164_phone":
            return TransformSpec("e164_phone", _phone_options(options))
        if name in SIMPLE_TRANSFORMS:
            raise ValueError(f"transform {name!r} takes no options; write it as a plain name")
        raise ValueError(f"unknown transform {name!r} (known: {known})")
    raise ValueError(
        f"a transform is a name like 'lowercase' or one-key mapping like {{picklist: {{map: ...}}}}, not {value!r}"
    )


def _picklist_options(options: Any) -> dict[str, Any]:
    if not isinstance(options, dict) or "map" not in options:
        raise ValueError("picklist needs a map of CRM value -> canonical value, e.g. {map: {'Web': web}}")
    extra = set(options) - {"map", "default"}
    if extra:
        raise ValueError(f"picklist has unknown option(s) {sorted(extra)} (allowed: map, default)")
    mapping = options["map"]
    if not isinstance(mapping, dict) or not mapping:
        raise ValueError("picklist map must be a non-empty mapping of CRM value -> canonical value")
    for crm_value, canonical in mapping.items():
        if isinstance(crm_value, (dict, list)) or isinstance(canonical, (dict, list)):
            raise ValueError(f"picklist map entries must be plain values, not {crm_value!r}: {canonical!r}")
    result: dict[str, Any] = {"map": dict(mapping)}
    if "default" in options:
        result["default"] = options["default"]
    return result


def _phone_options(options: Any) -> dict[str, Any]:
    if not isinstance(options, dict) or set(options) != {"default_region"}:
        raise ValueError("e164_phone takes one option, default_region, e.g. {e164_phone: {default_region: GB}}")
    region = str(options["default_region"]).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"default_region {options['default_region']!r} is not a two-letter country code phonenumbers knows")
    return {"default_region": region}


_TRANSFORM_JSON_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "enum": list(SIMPLE_TRANSFORMS), "description": "A transform without options."},
        {
            "type": "object",
            "description": "Map CRM picklist values to canonical values.",
            "properties": {
                "picklist": {
                    "type": "object",
                    "properties": {
                        "map": {"type": "object", "minProperties": 1, "description": "CRM value -> canonical value."},
                        "default": {"description": "Canonical value for CRM values not in the map."},
                    },
                    "required": ["map"],
                    "additionalProperties": False,
                }
            },
            "required": ["picklist"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "description": "Phone numbers to E.164, reading numbers without + as from this country.",
            "properties": {
                "e164_phone": {
                    "type": "object",
                    "properties": {"default_region": {"type": "string", "pattern": "^[A-Za-z]{2}$"}},
                    "required": ["default_region"],
                    "additionalProperties": False,
                }
            },
            "required": ["e164_phone"],
            "additionalProperties": False,
        },
    ]
}

Transform = Annotated[
    TransformSpec,
    PlainValidator(_parse_transform),
    PlainSerializer(lambda spec: spec.to_yaml()),
    WithJsonSchema(_TRANSFORM_JSON_SCHEMA),
]


class FieldMapping(ConfigModel):
    """One CRM field mapped to one canonical field."""

    canonical: str = Field(description="Canonical field name (see the entity's field list).")
    crm: str = Field(min_length=1, description="The CRM's field (API name / property name).")
    direction: Direction = Field(default="both", description="read: CRM -> Relay; write: Relay -> CRM; both.")
    transform: list[Transform] = Field(
        default_factory=list, description="Applied in order when reading, in reverse when writing."
    )

    @property
    def reads(self) -> bool:
        """True when this field is read from the CRM."""
        return self.direction in ("read", "both")

    @property
    def writes(self) -> bool:
        """True when Relay writes this field to the CRM."""
        return self.direction in ("write", "both")


class HubSpotPropertySpec(ConfigModel):
    """A HubSpot property Relay creates through the properties API (group ``relay``)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Internal property name.")
    label: str = Field(min_length=1, description="Label shown in HubSpot.")
    type: Literal["string", "number", "date", "datetime", "bool", "enumeration"]
    fieldType: Literal["text", "textarea", "number", "date", "booleancheckbox", "select", "radio"]
    groupName: Literal["relay"] = "relay"
    description: str = ""
    hasUniqueValue: bool = Field(default=False, description="HubSpot enforces unique values (usable as idProperty).")

    @model_validator(mode="after")
    def _field_type_fits_type(self) -> HubSpotPropertySpec:
        allowed = {
            "string": {"text", "textarea"},
            "number": {"number"},
            "date": {"date"},
            "datetime": {"date"},
            "bool": {"booleancheckbox"},
            "enumeration": {"select", "radio", "booleancheckbox"},
        }[self.type]
        if self.fieldType not in allowed:
            raise ValueError(
                f"fieldType {self.fieldType!r} does not fit type {self.type!r} (use {' or '.join(sorted(allowed))})"
            )
        return self


class ObjectMapping(ConfigModel):
    """How one CRM object (Lead, contacts...) maps to one canonical entity."""

    entity: Entity = Field(description="Canonical entity: person, account, owner, deal or task.")
    id_field: str = Field(description="The CRM's record id field (Salesforce Id, HubSpot id).")
    modified_field: str | None = Field(
        default=None, description="Last-modified field used as the incremental cursor (SystemModstamp, hs_lastmodifieddate)."
    )
    deleted_field: str | None = Field(default=None, description="Deleted/archived flag (IsDeleted, archived).")
    fields: list[FieldMapping] = Field(min_length=1)
    create_properties: list[HubSpotPropertySpec] = Field(
        default_factory=list, description="HubSpot only: properties Relay creates (group relay) before writing."
    )
    history: list[str] = Field(
        default_factory=list,
        description="Deal objects: canonical fields whose past values Relay reads with the record (the stage "
        "history: Salesforce OpportunityHistory, HubSpot propertiesWithHistory).",
    )
    person_kind: PersonKind | None = Field(
        default=None,
        description="For a person object: whether its people are leads or contacts of an account "
        "(default: what the CRM unit says of this object, e.g. Salesforce Lead -> lead, Contact -> contact; "
        "HubSpot contacts -> lead).",
    )

    _crm: CrmKind | None = PrivateAttr(default=None)
    _name: str | None = PrivateAttr(default=None)

    def bind(self, crm: CrmKind, name: str) -> ObjectMapping:
        """Record which CRM and object this mapping is for (done by ``MappingFile``)."""
        self._crm = crm
        self._name = name
        return self

    @property
    def crm(self) -> CrmKind:
        """The CRM this mapping belongs to."""
        if self._crm is None:
            raise RuntimeError("ObjectMapping is not bound to a CRM; load it through MappingFile")
        return self._crm

    @property
    def name(self) -> str:
        """The CRM object name (``Lead``, ``contacts``)."""
        return self._name or "?"

    @property
    def people_are(self) -> PersonKind:
        """Whether this person object holds leads or contacts (``person_kind``, else the CRM unit's default)."""
        if self.person_kind is not None:
            return self.person_kind
        kind = crm_unit(self.crm).person_kinds.get(self.name)
        if kind is None:
            raise ValueError(f"{self.crm} {self.name}: say whether its people are leads or contacts "
                             "(person_kind: lead or contact)")
        return kind

    def read_fields(self) -> Iterator[FieldMapping]:
        """Fields read from the CRM, in file order."""
        return (f for f in self.fields if f.reads)

    def write_fields(self) -> Iterator[FieldMapping]:
        """Fields Relay may write to the CRM, in file order."""
        return (f for f in self.fields if f.writes)

    def history_fields(self) -> dict[str, str]:
        """CRM field -> canonical name of the fields whose history Relay reads (``history``)."""
        by_canonical = {f.canonical: f.crm for f in self.read_fields()}
        return {by_canonical[name]: name for name in self.history if name in by_canonical}

    def crm_fields_to_read(self) -> list[str]:
        """Every CRM field a sync must fetch: id, modified, deleted and the read fields."""
        names = [self.id_field, self.modified_field, self.deleted_field, *(f.crm for f in self.read_fields())]
        return list(dict.fromkeys(n for n in names if n))


class MappingFile(ConfigModel):
    """One ``mappings/<crm>.yaml`` file."""

    crm: CrmKind = Field(description="Which CRM these objects belong to (a registered CRM unit's kind).",
                         json_schema_extra={"enum": list[Any](crm_kinds())})
    objects: dict[str, ObjectMapping] = Field(min_length=1, description="CRM object name -> mapping.")

    @field_validator("crm")
    @classmethod
    def _crm_is_registered(cls, value: str) -> str:
        try:
            crm_unit(value)
        except UnknownCrm as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _bind_objects(self) -> MappingFile:
        for name, mapping in self.objects.items():
            mapping.bind(self.crm, name)
        return self


def check_mapping_file(mapping_file: MappingFile) -> list[tuple[tuple[str | int, ...], Any, str]]:
    """Checks across fields that a single model cannot express.

    Unknown canonical fields, typed canonical fields without a matching type transform,
    duplicate CRM fields, two CRM fields read into one canonical field, HubSpot property
    specs in a Salesforce file and created properties that no field uses.

    Args:
        mapping_file: A validated mapping file.

    Returns:
        ``(key path, value, message)`` for every problem, in file order.
    """
    problems: list[tuple[tuple[str | int, ...], Any, str]] = []
    for object_name, mapping in mapping_file.objects.items():
        base: tuple[str | int, ...] = ("objects", object_name)
        known = CANONICAL_FIELDS[mapping.entity]
        crm_seen: dict[tuple[str, bool], int] = {}
        canonical_read: dict[str, int] = {}
        for index, fm in enumerate(mapping.fields):
            where = (*base, "fields", index)
            expected = field_type(mapping.entity, fm.canonical)
            if expected is None and mapping.entity in OPEN_ENTITIES:
                problems.extend(_open_field_problems(where, fm))
            elif expected is None:
                close = difflib.get_close_matches(fm.canonical, list(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(((*where, "canonical"), fm.canonical,
                                 f"{fm.canonical!r} is not a canonical field of {mapping.entity}{hint} "
                                 f"(known: {', '.join(known)})"))
            else:
                problems.extend(_type_problems(where, fm, expected))
            for reading, active in ((True, fm.reads), (False, fm.writes)):
                if not active:
                    continue
                first = crm_seen.setdefault((fm.crm, reading), index)
                if first != index:
                    problems.append(((*where, "crm"), fm.crm,
                                     f"CRM field {fm.crm!r} is already mapped at fields[{first}]; map each field once"))
                    break
            if fm.reads:
                first = canonical_read.setdefault(fm.canonical, index)
                if first != index:
                    problems.append(((*where, "canonical"), fm.canonical,
                                     f"canonical field {fm.canonical!r} is already read from fields[{first}] "
                                     f"({mapping.fields[first].crm}); read it from one CRM field only"))
        problems.extend(_property_problems(mapping_file.crm, base, mapping))
        problems.extend(_history_problems(base, mapping, set(canonical_read)))
    return problems


def _history_problems(base: tuple[str | int, ...], mapping: ObjectMapping,
                      read: set[str]) -> list[tuple[tuple[str | int, ...], Any, str]]:
    if mapping.history and mapping.entity != "deal":
        return [((*base, "history"), mapping.history,
                 f"history is read for deal objects only; {mapping.name} maps to {mapping.entity}")]
    return [((*base, "history", i), name, f"history names {name!r}, which no field of {mapping.name} reads; "
             "map it under fields first") for i, name in enumerate(mapping.history) if name not in read]


def _type_problems(where: tuple[str | int, ...], fm: FieldMapping, expected: str) -> list[tuple[tuple[str | int, ...], Any, str]]:
    names = [t.name for t in fm.transform]
    typed = [n for n in names if n in TYPE_TRANSFORMS]
    if expected in ("str",):
        if typed:
            return [((*where, "transform"), typed[0],
                     f"{fm.canonical} is text; transform {typed[0]!r} would change its type")]
        return []
    allowed = {expected}
    if expected == "datetime" and fm.direction == "write":
        allowed.add("date")  # e.g. Salesforce Task.ActivityDate holds only the due date
    what = _TYPE_WORDS[expected]
    if not any(n in allowed for n in typed):
        return [((*where, "transform"), names,
                 f"{fm.canonical} is {what}; add the {expected!r} transform so CRM values are parsed")]
    wrong = [n for n in typed if n not in allowed]
    if wrong:
        return [((*where, "transform"), wrong[0], f"{fm.canonical} is {what}; remove transform {wrong[0]!r}")]
    return []


_CANONICAL_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _open_field_problems(where: tuple[str | int, ...], fm: FieldMapping) -> list[tuple[tuple[str | int, ...], Any, str]]:
    """A field of an entity's own (a deal's criterion): a snake_case name and at most one type transform."""
    problems: list[tuple[tuple[str | int, ...], Any, str]] = []
    if not _CANONICAL_NAME.match(fm.canonical):
        problems.append(((*where, "canonical"), fm.canonical,
                         f"{fm.canonical!r} is not a canonical field name: use lower_snake_case, as the rules name it"))
    typed = [t.name for t in fm.transform if t.name in TYPE_TRANSFORMS]
    if len(typed) > 1:
        problems.append(((*where, "transform"), typed, f"{fm.canonical} has two type transforms ({', '.join(typed)}); keep one"))
    return problems


_TYPE_WORDS = {
    "int": "a whole number (int)",
    "float": "a number (float)",
    "bool": "true/false (bool)",
    "date": "a date",
    "datetime": "a datetime",
}


def _property_problems(crm: str, base: tuple[str | int, ...], mapping: ObjectMapping) -> list[tuple[tuple[str | int, ...], Any, str]]:
    problems: list[tuple[tuple[str | int, ...], Any, str]] = []
    unit = crm_unit(crm)
    if mapping.entity == "person" and mapping.person_kind is None and mapping.name not in unit.person_kinds:
        problems.append(((*base, "person_kind"), None,
                         f"say whether {mapping.name}'s people are leads or contacts (person_kind: lead or contact)"))
    if mapping.person_kind is not None and mapping.entity != "person":
        problems.append(((*base, "person_kind"), mapping.person_kind,
                         f"person_kind is for person objects; {mapping.name} maps to {mapping.entity}"))
    if mapping.create_properties and not unit.creates_fields:
        problems.append(((*base, "create_properties"), [p.name for p in mapping.create_properties],
                         f"{unit.label} custom {unit.field_noun(2)} are not created through its API; "
                         "create them in the CRM and map them"))
        return problems
    mapped = {f.crm for f in mapping.fields}
    seen: set[str] = set()
    for index, prop in enumerate(mapping.create_properties):
        if prop.name in seen:
            problems.append(((*base, "create_properties", index, "name"), prop.name, f"property {prop.name!r} is listed twice"))
        seen.add(prop.name)
        if prop.name not in mapped:
            problems.append(((*base, "create_properties", index, "name"), prop.name,
                             f"property {prop.name!r} is created but no field maps it; add it under fields or remove it"))
    return problems
