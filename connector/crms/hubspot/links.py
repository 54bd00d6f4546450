"""Links to HubSpot records, as a rep opens them in the browser (alerts name them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

APP_URL = "https://app.hubspot.com"

OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "tickets": "0-5"}
"""HubSpot's object type ids, as record URLs spell them."""


def record_url(settings: Any, object_name: str, crm_id: str, options: Mapping[str, str]) -> str | None:
    """``https://app.hubspot.com/contacts/{portal}/record/0-1/{id}`` for a contact (likewise companies, deals).

    Args:
        settings: The connection's settings (a ``HubSpotConnection``; its ``portal_id`` if it has one).
        object_name: The HubSpot object (``contacts``).
        crm_id: The record's id.
        options: The connection's ``links`` in alerts.yaml: ``portal_id`` (the hub id) when the
            connection settings hold none.

    Returns:
        The URL, or None when the portal id is unknown or the object has no record page.
    """
    portal = str(getattr(settings, "portal_id", None) or options.get("portal_id") or "").strip()
    type_id = OBJECT_TYPE_IDS.get(object_name)
    if not portal or type_id is None or not crm_id:
        return None
    return f"{APP_URL}/contacts/{quote(portal, safe='')}/record/{type_id}/{quote(crm_id, safe='')}"
