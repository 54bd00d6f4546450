"""Links to Salesforce records in Lightning Experience, as a rep opens them (alerts name them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote


def record_url(settings: Any, object_name: str, crm_id: str, options: Mapping[str, str]) -> str | None:
    """``{instance}/lightning/r/{Object}/{id}/view`` (e.g. ``.../lightning/r/Lead/00Q.../view``).

    Args:
        settings: The connection's settings (a ``SalesforceConnection``: ``base_url`` is the instance URL).
        object_name: The sObject (``Lead``, ``Contact``).
        crm_id: The record's id.
        options: The connection's ``links`` in alerts.yaml: ``instance_url`` overrides the
            instance (e.g. the org's My Domain when the API is reached through a proxy).

    Returns:
        The URL, or None when there is no instance URL.
    """
    instance = str(options.get("instance_url") or getattr(settings, "base_url", "") or "").strip().rstrip("/")
    if not instance or not object_name or not crm_id:
        return None
    return f"{instance}/lightning/r/{quote(object_name, safe='')}/{quote(crm_id, safe='')}/view"
