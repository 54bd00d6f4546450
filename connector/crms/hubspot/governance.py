"""What deal governance reads and writes in HubSpot: property history, deal pipelines, lead conversion.

Pure functions over HubSpot's answers; :class:`~connector.crms.hubspot.adapter.HubSpotAdapter`
makes the calls.

* Property history: a batch read with ``propertiesWithHistory`` answers, per record, each
  property's values newest first (``ValueWithTimestamp``: ``value``, ``timestamp``,
  ``sourceType``, ``sourceId``, ``sourceLabel``, ``updatedByUserId``). Example (a deal moved once
  in the CRM by a user, created by a private app)::

      {"id": "18401814138", "properties": {...},
       "propertiesWithHistory": {"dealstage": [
           {"value": "qualifiedtobuy", "timestamp": "2025-01-09T10:00:00.000Z", "sourceType": "CRM_UI",
            "sourceId": "userId:7001", "updatedByUserId": 7001},
           {"value": "appointmentscheduled", "timestamp": "2025-01-02T10:00:00.000Z",
            "sourceType": "INTEGRATION", "sourceId": "5670736"}]}}

  Such a batch read takes at most 50 inputs (HubSpot answers 400 "The maximum number of inputs
  supported in a batch request for property histories is 50"); properties the object lacks are
  ignored.
* Pipelines (``GET /crm/v3/pipelines/deals``): a deal's ``pipeline`` and ``dealstage`` are ids
  (``default`` / ``appointmentscheduled``; generated numbers in added pipelines).
* Conversion: a deal made for a contact carries ``relay_conversion_key``, a unique property
  whose value names the contact and the deal's name, so a retry finds the deal it made.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from connector.adapters._paging import UNEXPECTED_ANSWER
from connector.adapters.base import FieldSpec, HistoryValue
from connector.adapters.errors import ConfigurationError, FatalError
from connector.crms.hubspot.paging import parse_hubspot_datetime

HISTORY_BATCH_LIMIT = 50
"""Inputs per batch read that asks ``propertiesWithHistory`` (HubSpot refuses more than 50)."""

CONVERSION_KEY = FieldSpec(
    name="relay_conversion_key",
    label="Relay conversion key",
    type="string",
    field_type="text",
    description="Set by Relay on a deal it created for a qualified contact: the contact and the deal's name. "
                "Lets Relay find that deal again instead of creating a second one.",
    has_unique_value=True,
)
"""The deal property that makes a conversion idempotent (created through ``ensure_fields``)."""

LIFECYCLE_STAGE = "lifecyclestage"
OPPORTUNITY = "opportunity"
HUBSPOT_LIFECYCLE_ORDER = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                           "customer", "evangelist", "other")
"""HubSpot's default lifecycle stages in order (used when the portal's property lists no options)."""
DEFAULT_PIPELINE = "default"
PRIMARY_COMPANY = "contact_to_company"
"""The v3 association type of a contact's primary company (the others are ``contact_to_company_unlabeled``)."""


def conversion_key(contact_id: str, opportunity_name: str) -> str:
    """The ``relay_conversion_key`` of the deal made for ``contact_id`` called ``opportunity_name``.

    Example:
        >>> conversion_key("101", "Acme - New Business")
        'contact-101-c226ad92ff704085'
    """
    digest = hashlib.sha256(opportunity_name.strip().encode("utf-8")).hexdigest()[:16]
    return f"contact-{contact_id}-{digest}"


def history_values(row: Mapping[str, Any], fields: Sequence[str], context: str) -> list[HistoryValue]:
    """The values ``fields`` held on one record of a batch read answer, oldest first.

    Each property's entries come newest first; they are turned round (entries of one timestamp
    keep HubSpot's order among them) and the fields merged by time, the fields' order breaking
    ties. ``value`` ``""`` (HubSpot's cleared value) becomes None; ``by`` is ``updatedByUserId``
    when HubSpot names a user, else ``sourceId`` (an app id, ``userId:...``), else None. A
    property the answer does not list has no history (HubSpot ignores unknown names).

    Raises:
        FatalError: the answer's history is not HubSpot's shape or a timestamp is unreadable
            (``UNEXPECTED_ANSWER``, naming the record, the property and the value).
    """
    record = str(row.get("id"))
    raw = row.get("propertiesWithHistory")
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        raise FatalError(f"HubSpot answered record {record} with propertiesWithHistory that is not an object: "
                         f"{str(raw)[:200]}", crm="hubspot", code=UNEXPECTED_ANSWER, context=context)
    values: list[HistoryValue] = []
    for name in dict.fromkeys(fields):
        entries = raw.get(name)
        if entries is None:
            continue
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
            raise FatalError(f"HubSpot answered record {record} with a history of {name} that is not a list of "
                             f"values: {str(entries)[:200]}", crm="hubspot", code=UNEXPECTED_ANSWER, context=context)
        values.extend(_history_value(record, name, entry, context) for entry in reversed(entries))
    return sorted(values, key=lambda value: value.at)


def _history_value(record: str, name: str, entry: Mapping[str, Any], context: str) -> HistoryValue:
    stamp = entry.get("timestamp")
    try:
        at = parse_hubspot_datetime(stamp)
    except ValueError:
        at = None
    if at is None:
        raise FatalError(f"HubSpot answered record {record} with a value of {name} whose timestamp is unreadable: "
                         f"{stamp!r}", crm="hubspot", code=UNEXPECTED_ANSWER, context=context)
    value = entry.get("value")
    user = entry.get("updatedByUserId")
    source = entry.get("sourceId")
    by = str(user) if user not in (None, "") else (str(source) if source not in (None, "") else None)
    return HistoryValue(field=name, value=None if value in (None, "") else str(value), at=at, by=by)


def primary_company(contact: Mapping[str, Any]) -> str | None:
    """The id of a contact's primary company in a v3 answer read with ``associations=companies``; None if none.

    Example:
        >>> primary_company({"id": "7", "associations": {"companies": {"results": [
        ...     {"id": "12", "type": "contact_to_company_unlabeled"}, {"id": "12", "type": "contact_to_company"}]}}})
        '12'
    """
    associations = contact.get("associations")
    companies = associations.get("companies") if isinstance(associations, Mapping) else None
    results = companies.get("results") if isinstance(companies, Mapping) else None
    for link in results if isinstance(results, list) else []:
        if isinstance(link, Mapping) and link.get("type") == PRIMARY_COMPANY and link.get("id") not in (None, ""):
            return str(link["id"])
    return None


def moves_forward(definition: Mapping[str, Any] | None, current: str | None, target: str = OPPORTUNITY) -> bool:
    """Whether setting ``lifecyclestage`` from ``current`` to ``target`` moves it forward.

    HubSpot moves a lifecycle stage only forward through an API write (a later stage is
    kept); the order is the property's options by ``displayOrder`` (custom stages included).
    An empty stage moves to anything; a stage the order does not know is left alone.

    Example:
        >>> moves_forward(None, "lead"), moves_forward(None, "customer"), moves_forward(None, "")
        (True, False, True)
    """
    if current in (None, ""):
        return True
    order = _lifecycle_order(definition)
    if current not in order or target not in order:
        return False
    return order.index(current) < order.index(target)


def _lifecycle_order(definition: Mapping[str, Any] | None) -> list[str]:
    options = definition.get("options") if isinstance(definition, Mapping) else None
    listed = [o for o in options if isinstance(o, Mapping) and o.get("value")] if isinstance(options, list) else []
    if not listed:
        return list(HUBSPOT_LIFECYCLE_ORDER)
    ranked = sorted(enumerate(listed), key=lambda pair: (_order(pair[1].get("displayOrder")), pair[0]))
    return [str(option["value"]) for _, option in ranked]


def _order(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1 << 30


def deal_stage(pipelines: Sequence[Mapping[str, Any]], pipeline: str | None, stage: str | None,
               context: str) -> tuple[str, str]:
    """``(pipeline id, stage id)`` for a new deal: ``pipeline`` (default ``default``) and ``stage`` by id or label.

    Without ``stage`` the pipeline's first stage (lowest ``displayOrder``) is taken.

    Raises:
        ConfigurationError: the portal has no such pipeline, or the pipeline no such stage
            (the message lists what there is).
    """
    wanted = (pipeline or DEFAULT_PIPELINE).strip()
    live = [p for p in pipelines if not p.get("archived")]
    found = _by_id_or_label(live, wanted)
    if found is None:
        known = ", ".join(f"{p.get('id')} ({p.get('label')})" for p in live) or "none"
        raise ConfigurationError(f"{context}: HubSpot has no deal pipeline {wanted!r} (pipelines: {known})",
                                 crm="hubspot", code="INVALID_PIPELINE", context=context)
    stages = sorted((s for s in found.get("stages") or [] if isinstance(s, Mapping) and not s.get("archived")),
                    key=lambda s: _order(s.get("displayOrder")))
    pipeline_id = str(found.get("id"))
    if stage in (None, ""):
        if not stages:
            raise ConfigurationError(f"{context}: deal pipeline {pipeline_id} has no stages", crm="hubspot",
                                     code="INVALID_PIPELINE", context=context)
        return pipeline_id, str(stages[0].get("id"))
    chosen = _by_id_or_label(stages, str(stage).strip())
    if chosen is None:
        known = ", ".join(f"{s.get('id')} ({s.get('label')})" for s in stages) or "none"
        raise ConfigurationError(f"{context}: deal pipeline {pipeline_id} has no stage {stage!r} (stages: {known})",
                                 crm="hubspot", code="INVALID_DEAL_STAGE", context=context)
    return pipeline_id, str(chosen.get("id"))


def _by_id_or_label(items: Sequence[Mapping[str, Any]], wanted: str) -> Mapping[str, Any] | None:
    for item in items:
        if str(item.get("id")) == wanted:
            return item
    labelled = [item for item in items if str(item.get("label") or "").strip().casefold() == wanted.casefold()]
    return labelled[0] if len(labelled) == 1 else None
