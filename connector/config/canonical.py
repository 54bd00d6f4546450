"""The canonical fields of each entity, with their types (the shared contract)."""

from __future__ import annotations

from typing import Literal

Entity = Literal["person", "account", "owner", "task"]
FieldType = Literal["str", "int", "float", "bool", "date", "datetime"]

RELAY_PERSON_FIELDS: dict[str, FieldType] = {
    "relay_score": "int",
    "relay_score_category": "str",
    "relay_routing_reason": "str",
    "relay_sla_due": "datetime",
    "relay_matched_account": "str",
    "relay_id": "str",
}
"""Fields Relay writes back on people (and reads, to skip writes that change nothing)."""

CANONICAL_FIELDS: dict[str, dict[str, FieldType]] = {
    "person": {
        "first_name": "str",
        "last_name": "str",
        "email": "str",
        "phone": "str",
        "title": "str",
        "company": "str",
        "website": "str",
        "industry": "str",
        "employees": "int",
        "annual_revenue": "float",
        "country": "str",
        "state": "str",
        "city": "str",
        "lead_source": "str",
        "status": "str",
        "owner_id": "str",
        "created_at": "datetime",
        "updated_at": "datetime",
        "is_converted": "bool",
        "email_opt_out": "bool",
        "page_views": "int",
        "email_clicks": "int",
        "form_submissions": "int",
        "content_downloads": "int",
        "pricing_page_visits": "int",
        "webinar_attended": "bool",
        "demo_requested": "bool",
        **RELAY_PERSON_FIELDS,
    },
    "account": {
        "name": "str",
        "domain": "str",
        "website": "str",
        "industry": "str",
        "employees": "int",
        "annual_revenue": "float",
        "country": "str",
        "state": "str",
        "owner_id": "str",
        "relay_id": "str",
    },
    "owner": {
        "id": "str",
        "email": "str",
        "first_name": "str",
        "last_name": "str",
        "active": "bool",
    },
    "task": {
        "subject": "str",
        "description": "str",
        "due_at": "datetime",
        "owner_id": "str",
        "priority": "str",
        "status": "str",
        "person_id": "str",
        "idempotency_key": "str",
    },
}
"""Entity -> canonical field -> type. ``task.person_id`` is the related person's CRM id."""


def field_type(entity: str, name: str) -> FieldType | None:
    """The type of a canonical field, or ``None`` when the entity has no such field."""
    return CANONICAL_FIELDS.get(entity, {}).get(name)
