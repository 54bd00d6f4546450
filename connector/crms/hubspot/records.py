"""HubSpot's record shape: ``{id, archived, createdAt, updatedAt, properties: {...}}``.

Relay's adapters hand the pipeline flat, CRM-native records; this is how a HubSpot v3
record becomes one (the adapter applies it to every record it reads).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RECORD_FIELDS = frozenset({"id", "createdAt", "updatedAt", "archived", "archivedAt"})
"""Fields of every record that are not properties (``flatten`` puts them beside the properties)."""


def flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """A v3 record as one flat dict: id, archived, createdAt, updatedAt (archivedAt) + properties.

    A record without an id stays without one (never the text ``"None"``), so the pipeline
    quarantines it as a record with no id.
    """
    flat: dict[str, Any] = {key: record[key] for key in ("id", "archived", "createdAt", "updatedAt", "archivedAt") if key in record}
    properties = record.get("properties")
    if isinstance(properties, dict):
        flat.update(properties)
    record_id = record.get("id")
    if record_id is None or str(record_id).strip() == "":
        flat.pop("id", None)
    else:
        flat["id"] = str(record_id)
    return flat
