"""The canonical fields of each entity, with their types (the shared contract).

People, accounts and owners are the decision core's models (``connector.core.models``): the
catalogue is read from them, so a field the core gains is mappable at once. Tasks are what
Relay writes (``connector.pipeline.writeback``), listed here.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel

from connector.core.governance.models import Deal
from connector.core.models import Account, Owner, Person

Entity = Literal["person", "account", "owner", "deal", "task"]
FieldType = Literal["str", "int", "float", "bool", "date", "datetime"]

_NOT_MAPPED = frozenset({"kind", "ref", "connection", "criteria", "qualification", "approvals", "owner_email"})
"""Model fields Relay fills itself: which CRM and record a model is, and the person's kind."""

VOLATILE_FIELDS = frozenset({"updated_at", "stage_entered_at"})
"""Canonical fields that Relay's own writes change (the CRM's last-modified time; the time a deal
entered its stage, which moves when Relay sets an enforced gate's stage back). They are kept out
of stored snapshots, so a record Relay wrote reads back unchanged: it is not counted as changed
and, in an incremental sync, not decided again."""


def _field_type(annotation: Any) -> FieldType:
    kinds = {t for t in get_args(annotation) if t is not type(None)} or {annotation}
    if AwareDatetime in kinds or datetime in kinds:
        return "datetime"
    for python, name in ((bool, "bool"), (int, "int"), (float, "float"), (date, "date"), (str, "str")):
        if python in kinds:
            return name  # type: ignore[return-value]
    raise TypeError(f"canonical field type {annotation!r} has no name in FieldType")


def _catalogue(model: type[BaseModel]) -> dict[str, FieldType]:
    """The canonical fields of a core model, in declaration order, with their types."""
    return {name: _field_type(info.annotation) for name, info in model.model_fields.items() if name not in _NOT_MAPPED}


CANONICAL_FIELDS: dict[str, dict[str, FieldType]] = {
    "person": _catalogue(Person),
    "account": _catalogue(Account),
    "owner": _catalogue(Owner),
    "deal": _catalogue(Deal),
    "task": {
        "subject": "str",
        "description": "str",
        "due_at": "datetime",
        "owner_id": "str",
        "priority": "str",
        "status": "str",
        "person_id": "str",
        "related_id": "str",
        "idempotency_key": "str",
    },
}
"""Entity -> canonical field -> type. ``task.person_id`` is the related person's CRM id; ``task.related_id``
the related record that is not a person (a deal: Salesforce ``WhatId``)."""


OPEN_ENTITIES = frozenset({"deal"})
"""Entities whose mappings may name canonical fields of their own: a deal's exit criteria, checklists,
handoff form and approval fields are whatever the stage, approval and handoff rules name (``relay config
validate`` checks each rule's field against the mapping). Their type comes from their transforms."""


def field_type(entity: str, name: str) -> FieldType | None:
    """The type of a canonical field, or ``None`` when the entity has no such field."""
    return CANONICAL_FIELDS.get(entity, {}).get(name)

RELAY_PERSON_FIELDS: dict[str, FieldType] = {
    name: kind for name, kind in CANONICAL_FIELDS["person"].items() if name.startswith("relay_")
}
"""Fields Relay writes back on people (and reads, to skip writes that change nothing)."""
