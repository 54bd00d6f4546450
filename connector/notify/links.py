"""The link to a lead's record in its CRM, built by the CRM's own unit.

Each unit under ``connector/crms/<kind>/`` knows its CRM's record pages: a ``record_url``
on the unit when it declares one, else the function of the same name in its ``links``
module. Nothing here names a CRM.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from connector.crms import UnknownCrm, crm_unit

RecordUrl = Callable[[Any, str, str, Mapping[str, str]], "str | None"]


def _builder(kind: str) -> RecordUrl | None:
    try:
        unit = crm_unit(kind)
    except UnknownCrm:
        return None
    declared = getattr(unit, "record_url", None)
    if callable(declared):
        return declared
    try:
        module = importlib.import_module(f"connector.crms.{kind}.links")
    except ModuleNotFoundError:
        return None
    found = getattr(module, "record_url", None)
    return found if callable(found) else None


def record_url(settings: Any, object_name: str, crm_id: str, options: Mapping[str, str] | None = None) -> str | None:
    """The browser link to one record of the connection with ``settings`` (None when the unit cannot build one).

    Args:
        settings: The connection's settings (its ``kind`` picks the unit).
        object_name: The CRM object (``Lead``, ``contacts``).
        crm_id: The record's id.
        options: The connection's entry under ``links`` in alerts.yaml (e.g. HubSpot's ``portal_id``).
    """
    builder = _builder(str(getattr(settings, "kind", "")))
    if builder is None:
        return None
    return builder(settings, object_name, crm_id, dict(options or {}))
