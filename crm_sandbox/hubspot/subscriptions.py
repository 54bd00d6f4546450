"""The sandbox portal's email subscription types (communication preferences) and their contact properties.

HubSpot keeps a contact's status per email subscription type (``SUBSCRIBED``, ``NOT_SUBSCRIBED``) and
shows each opt-out on the contact as a read-only property ``hs_email_optout_<subscription id>``
("Opted out of email: <type name>", ``"true"`` once the contact opted out). The types are listed by
``GET /communication-preferences/v3/definitions`` (scope ``communication_preferences.read``); statuses
change through ``POST /communication-preferences/v3/unsubscribe`` and ``/subscribe`` (scope
``communication_preferences.write``), never by writing the property.

Sources: HubSpot's communication preferences v3 reference (definitions, status, subscribe,
unsubscribe) and the ``SubscriptionDefinition`` / ``PublicSubscriptionStatus`` models of
hubspot-api-client 12 (required keys: id, name, description, isActive, isDefault, isInternal,
createdAt, updatedAt; ``status`` and ``sourceOfStatus`` enumerations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OPT_OUT_PREFIX = "hs_email_optout_"
"""The per-type opt-out property of contacts: ``hs_email_optout_<subscription id>``."""
READ_SCOPE = "communication_preferences.read"
WRITE_SCOPE = "communication_preferences.write"
SUBSCRIBED = "SUBSCRIBED"
NOT_SUBSCRIBED = "NOT_SUBSCRIBED"
LEGAL_BASES = (
    "LEGITIMATE_INTEREST_PQL", "LEGITIMATE_INTEREST_CLIENT", "PERFORMANCE_OF_CONTRACT", "CONSENT_WITH_NOTICE",
    "NON_GDPR", "PROCESS_AND_STORE", "LEGITIMATE_INTEREST_OTHER",
)
"""The ``legalBasis`` values a status update may give."""
_CREATED = "2019-08-06T02:41:52.000Z"


@dataclass(frozen=True)
class SubscriptionType:
    """One email subscription type of the portal (a ``SubscriptionDefinition``)."""

    id: str
    name: str
    description: str
    purpose: str
    is_default: bool
    is_internal: bool
    is_active: bool = True

    @property
    def property_name(self) -> str:
        """The contact property that shows an opt-out of this type."""
        return f"{OPT_OUT_PREFIX}{self.id}"

    def as_json(self) -> dict[str, Any]:
        """The type as the definitions endpoint lists it."""
        return {
            "id": self.id, "name": self.name, "description": self.description, "purpose": self.purpose,
            "communicationMethod": "Email", "isActive": self.is_active, "isDefault": self.is_default,
            "isInternal": self.is_internal, "createdAt": _CREATED, "updatedAt": _CREATED,
        }


SUBSCRIPTION_TYPES: tuple[SubscriptionType, ...] = (
    SubscriptionType("7880016", "Marketing Information", "Marketing offers and updates.", "Marketing",
                     is_default=True, is_internal=False),
    SubscriptionType("7880017", "One to One", "One to One emails", "Sales", is_default=True, is_internal=True),
    SubscriptionType("7880018", "Customer Service Communication",
                     "Feedback requests and service updates from our support team.", "Customer Service",
                     is_default=False, is_internal=False),
)
"""The portal's email subscription types (stable ids: seeds and tests name them)."""
ONE_TO_ONE = SUBSCRIPTION_TYPES[1]
"""HubSpot's type of a rep's one-to-one sales email (every portal has it)."""


def subscription_type(type_id: str) -> SubscriptionType | None:
    """The type of id ``type_id``, if the portal has one."""
    return next((t for t in SUBSCRIPTION_TYPES if t.id == str(type_id)), None)


def opt_out_properties() -> list[tuple[str, str]]:
    """``(property name, label)`` of every type's opt-out property, as the properties API lists them."""
    return [(t.property_name, f"Opted out of email: {t.name}") for t in SUBSCRIPTION_TYPES]


def status_json(kind: SubscriptionType, status: str, source: str = "SUBSCRIPTION_STATUS",
                legal_basis: str | None = None, explanation: str | None = None) -> dict[str, Any]:
    """One ``PublicSubscriptionStatus``: the type, the status and where it comes from."""
    body: dict[str, Any] = {"id": kind.id, "name": kind.name, "description": kind.description, "status": status,
                            "sourceOfStatus": source}
    if legal_basis:
        body["legalBasis"] = legal_basis
    if explanation:
        body["legalBasisExplanation"] = explanation
    return body
