"""HubSpot's email subscription types: which ones a contact opted out of, read as ``subscription_status``.

HubSpot keeps a contact's status per email subscription type in its communication preferences and
shows each opt-out on the contact as a read-only property ``hs_email_optout_<subscription id>``
(labelled "Opted out of email: <type name>"; ``"true"`` when opted out, empty otherwise), read and
searched like any property. consent.yaml names the types that count (``subscription_types.hubspot``)
the way admins know them: by name. So the adapter

1. lists the portal's types once per run (``GET /communication-preferences/v3/definitions``, kept in
   the process's cache as long as the owners) and looks the names up (:func:`resolve`: without case
   or spacing; a name several business units share stands for all of them);
2. asks those properties wherever the contacts mapping reads :data:`OPT_OUTS` (the mapping's stand-in
   for "the opt-out properties of consent.yaml's types");
3. gives each record one value under :data:`OPT_OUTS` (:func:`opt_out_status`):
   ``unsubscribed: One to One`` when the contact opted out of a type, None otherwise, which the consent
   gate reads as the ``unsubscribed`` state (consent.yaml ``unsubscribed_values``), naming the type.

The value is read-only: HubSpot refuses writes to these properties, and the mapping reads it only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

OPT_OUTS = "hs_email_optout_*"
"""The CRM field a contacts mapping reads ``subscription_status`` from: not a property, the adapter's
summary of the ``hs_email_optout_<id>`` properties of consent.yaml's subscription types."""
OPT_OUT_PREFIX = "hs_email_optout_"
"""The per-type opt-out properties: ``hs_email_optout_<subscription id>``."""
UNSUBSCRIBED = "unsubscribed"
"""What :func:`opt_out_status` says of an opted-out contact (one of consent.yaml's shipped ``unsubscribed_values``)."""
SCOPE = "communication_preferences.read"
"""The private-app scope the definitions endpoint needs."""


def _key(name: str) -> str:
    return " ".join(str(name).split()).casefold()


@dataclass(frozen=True)
class Resolved:
    """consent.yaml's subscription type names looked up among a portal's types.

    Attributes:
        properties: ``hs_email_optout_<id>`` -> the type's name (as the portal spells it), in the order
            consent.yaml names the types.
        unknown: The names the portal has no type of.
        known: The names of the portal's types (for the message naming the unknown ones).
    """

    properties: Mapping[str, str]
    unknown: tuple[str, ...] = ()
    known: tuple[str, ...] = ()


def resolve(names: Sequence[str], definitions: Sequence[Mapping[str, Any]]) -> Resolved:
    """Which opt-out properties stand for ``names``, given the portal's subscription definitions.

    Args:
        names: consent.yaml ``subscription_types.hubspot``.
        definitions: ``subscriptionDefinitions`` of the definitions endpoint (``id``, ``name``...).
            Archived types (``isActive: false``) count too: their opt-outs still stand.

    Example:
        >>> types = [{"id": "7", "name": "One to One"}, {"id": "9", "name": "Marketing Information"}]
        >>> found = resolve(["one to  one", "Sales Email"], types)
        >>> dict(found.properties), found.unknown
        ({'hs_email_optout_7': 'One to One'}, ('Sales Email',))
    """
    by_name: dict[str, list[tuple[str, str]]] = {}
    known: list[str] = []
    for definition in definitions:
        type_id, name = definition.get("id"), definition.get("name")
        if type_id in (None, "") or not isinstance(name, str) or not name.strip():
            continue
        by_name.setdefault(_key(name), []).append((str(type_id), name.strip()))
        if name.strip() not in known:
            known.append(name.strip())
    properties: dict[str, str] = {}
    unknown: list[str] = []
    for wanted in names:
        found = by_name.get(_key(wanted))
        if not found:
            unknown.append(wanted)
            continue
        for type_id, name in found:
            properties.setdefault(f"{OPT_OUT_PREFIX}{type_id}", name)
    return Resolved(properties, tuple(unknown), tuple(known))


def opt_out_status(record: Mapping[str, Any], properties: Mapping[str, str]) -> str | None:
    """``unsubscribed: <type>[, <type>...]`` when the (flat) contact opted out of any of ``properties``' types.

    Example:
        >>> opt_out_status({"hs_email_optout_7": "true"}, {"hs_email_optout_7": "One to One"})
        'unsubscribed: One to One'
        >>> opt_out_status({"hs_email_optout_7": ""}, {"hs_email_optout_7": "One to One"}) is None
        True
    """
    names = list(dict.fromkeys(name for prop, name in properties.items()
                               if str(record.get(prop) or "").strip().lower() == "true"))
    return f"{UNSUBSCRIBED}: {', '.join(names)}" if names else None


def definitions_of(answer: Any) -> list[dict[str, Any]]:
    """The ``subscriptionDefinitions`` list of a definitions answer (ValueError naming what came instead)."""
    found = answer.get("subscriptionDefinitions") if isinstance(answer, dict) else None
    if not isinstance(found, list) or not all(isinstance(d, dict) for d in found):
        raise ValueError(f"no subscriptionDefinitions list in {str(answer)[:200]}")
    return [dict(d) for d in found]
