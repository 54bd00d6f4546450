"""The consent gate: which actions a person's consent state allows (``consent.yaml``).

Seed 001 item 47.2 "Enforce consent flags before SDR outreach", seed 004 "Pause follow-up when
consent ... is not valid", seed 002 "GDPR Compliance: Consent tracking" and "Do Not Contact ->
Suppress". A person is in zero or more consent states, read from what the CRMs record:

* ``email_opt_out``: opted out of email (Salesforce ``HasOptedOutOfEmail``, HubSpot ``hs_email_optout``);
* ``do_not_call``: Salesforce ``DoNotCall``;
* ``no_lawful_basis``: the person needs a lawful basis (``lawful_basis.required_in``) and none of the
  values the CRM records (HubSpot ``hs_legal_basis``) is one;
* ``unsubscribed``: a subscription status that means unsubscribed (``unsubscribed_values``; HubSpot's unit
  reads ``unsubscribed: One to One`` when the contact opted out of a type ``subscription_types`` names);
* ``do_not_contact``: a suppressing disposition (dispositions.yaml ``Do Not Contact``) on the record.

The person gets the actions every one of their states allows (``outreach_tasks``, ``enrichment``,
``alerts_with_personal_data``, ``routing``); an outreach task also needs an outreach channel the
states leave open and the person can be reached on (email needs an address, phone a number). A
person known by several records (the same person in both CRMs) is judged on them all: an opt-out
on one record is the person's.

Pure: records and rules in, a :class:`ConsentStatus` out. Records are read by attribute or key
(a ``Person``, or a snapshot's canonical values), so this module imports no record model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.core.governance.rules import (
    CONSENT_ACTIONS,
    CONSENT_STATES,
    ConsentRules,
    DispositionRules,
)

STATE_WORDS: dict[str, str] = {
    "email_opt_out": "opted out of email",
    "do_not_call": "do not call",
    "no_lawful_basis": "no lawful basis recorded",
    "unsubscribed": "unsubscribed",
    "do_not_contact": "Do Not Contact",
}
"""How messages name each consent state."""

_DASHES = re.compile(r"[\u2010-\u2015\u2212]")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class ConsentStatus:
    """What a person's consent state allows.

    Attributes:
        states: The consent states the person is in, in ``CONSENT_STATES`` order.
        allowed: The actions every state allows (``CONSENT_ACTIONS`` when there is no state), less
            ``outreach_tasks`` when no outreach channel is left to reach the person on.
        channels: The outreach channels left open that the person can be reached on.
        closed: The outreach channels a state closes.
        no_channel: Outreach is refused only because no channel is left (the states themselves allow it).
        unsubscribed_from: What the person unsubscribed from, where their subscription status names it
            (``unsubscribed: One to One``): the ``unsubscribed`` state's words say it.
    """

    states: tuple[str, ...] = ()
    allowed: tuple[str, ...] = CONSENT_ACTIONS
    channels: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    no_channel: bool = False
    unsubscribed_from: tuple[str, ...] = ()

    def allows(self, action: str) -> bool:
        """Whether ``action`` (one of ``CONSENT_ACTIONS``) may be done for this person."""
        if action not in CONSENT_ACTIONS:
            raise ValueError(f"unknown consent action {action!r} (known: {', '.join(CONSENT_ACTIONS)})")
        return action in self.allowed

    @property
    def restricted(self) -> bool:
        """Whether any consent state applies (an unrestricted person is decided as before)."""
        return bool(self.states)

    def words(self) -> str:
        """The states in words: ``opted out of email, do not call``, ``unsubscribed from One to One``."""
        return ", ".join(self._word(s) for s in self.states) or "no consent restriction"

    def _word(self, state: str) -> str:
        if state == "unsubscribed" and self.unsubscribed_from:
            return f"unsubscribed from {', '.join(self.unsubscribed_from)}"
        return STATE_WORDS[state]

    def because(self, action: str) -> str:
        """Why ``action`` is refused, in words (empty when it is allowed)."""
        if self.allows(action):
            return ""
        if action == "outreach_tasks" and self.no_channel:
            return f"{self.words()}; no open channel to reach them ({' and '.join(self.closed)} closed)"
        return self.words()

    def note(self) -> str | None:
        """What a follow-up task says about consent (``Consent: opted out of email: reach by phone only``), or None."""
        if not self.closed or not self.allows("outreach_tasks"):
            return None
        return f"Consent: {self.words()}: reach by {' or '.join(self.channels)} only"

    def as_json(self) -> dict[str, Any]:
        """The status as the audit log keeps it."""
        found: dict[str, Any] = {"states": list(self.states), "allowed": list(self.allowed),
                                 "channels": list(self.channels), "closed": list(self.closed),
                                 "no_channel": self.no_channel}
        if self.unsubscribed_from:
            found["unsubscribed_from"] = list(self.unsubscribed_from)
        return found


UNRESTRICTED = ConsentStatus()


def _get(record: Any, name: str) -> Any:
    if isinstance(record, Mapping):
        return record.get(name)
    return getattr(record, name, None)


def _norm(text: str) -> str:
    return _SPACES.sub(" ", _DASHES.sub("-", text)).strip().casefold()


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _has_lawful_basis(value: Any, accepted: frozenset[str]) -> bool:
    if _blank(value):
        return False
    return any(_norm(part) in accepted for part in str(value).split(";") if part.strip())


def _needs_basis(record: Any, rules: ConsentRules) -> bool:
    required = rules.lawful_basis.required_in
    if not required:
        return False
    if "*" in required:
        return True
    country = _get(record, "country")
    return isinstance(country, str) and country.strip().upper() in required


def unsubscribed_from(value: Any, rules: ConsentRules) -> str | None:
    """What a ``subscription_status`` value says the person unsubscribed from; None when it is no unsubscription.

    A value among ``unsubscribed_values`` (without case) is an unsubscription from nothing named (``""``);
    so is one whose part before its first ``:`` is, and the rest names what from (``unsubscribed: One to
    One`` -> ``One to One``, as HubSpot's unit reads a contact's subscription types).

    Example:
        >>> rules = ConsentRules()
        >>> unsubscribed_from("Unsubscribed: One to One", rules), unsubscribed_from("NOT_SUBSCRIBED", rules)
        ('One to One', '')
        >>> unsubscribed_from("subscribed", rules) is None
        True
    """
    if not isinstance(value, str) or not value.strip():
        return None
    wanted = {v.strip().casefold() for v in rules.unsubscribed_values}
    text = value.strip()
    if text.casefold() in wanted:
        return ""
    head, colon, rest = text.partition(":")
    if colon and head.strip().casefold() in wanted:
        return rest.strip()
    return None


def record_states(record: Any, rules: ConsentRules, dispositions: DispositionRules | None = None) -> set[str]:
    """The consent states one record shows (a ``Person`` or a snapshot's canonical values)."""
    states: set[str] = set()
    if _get(record, "email_opt_out") is True:
        states.add("email_opt_out")
    if _get(record, "do_not_call") is True:
        states.add("do_not_call")
    if unsubscribed_from(_get(record, "subscription_status"), rules) is not None:
        states.add("unsubscribed")
    if _needs_basis(record, rules):
        accepted = frozenset(_norm(v) for v in rules.lawful_basis.accepted)
        if not _has_lawful_basis(_get(record, "legal_basis"), accepted):
            states.add("no_lawful_basis")
    if dispositions is not None:
        value = _get(record, dispositions.field)
        found = dispositions.dispositions.get(value.strip()) if isinstance(value, str) else None
        if found is not None and found.action == "suppress":
            states.add("do_not_contact")
    return states


def consent_of(records: Sequence[Any] | Any, rules: ConsentRules, dispositions: DispositionRules | None = None,
               *, extra_states: Sequence[str] = ()) -> ConsentStatus:
    """What the consent state of one person allows.

    Args:
        records: The person's records (``Person`` models or canonical values), or one record.
        rules: consent.yaml.
        dispositions: dispositions.yaml (its suppressing values are the ``do_not_contact`` state); None: not read.
        extra_states: States known from elsewhere (e.g. ``do_not_contact`` from Relay's disposition ledger).

    Returns:
        The person's states and what they allow; :data:`UNRESTRICTED` when no state applies.

    Raises:
        ValueError: an unknown state in ``extra_states``.
    """
    many = list(records) if isinstance(records, Sequence) and not isinstance(records, (str, Mapping)) else [records]
    states: set[str] = set()
    for record in many:
        states |= record_states(record, rules, dispositions)
    for state in extra_states:
        if state not in CONSENT_STATES:
            raise ValueError(f"unknown consent state {state!r} (known: {', '.join(CONSENT_STATES)})")
        states.add(state)
    if not states:
        return UNRESTRICTED
    ordered = tuple(s for s in CONSENT_STATES if s in states)
    allowed = [a for a in CONSENT_ACTIONS if all(a in rules.state(s).allows for s in ordered)]
    closed = tuple(c for c in rules.outreach_channels if any(c in rules.state(s).closes for s in ordered))
    reachable = {"email": any(not _blank(_get(r, "email")) for r in many),
                 "phone": any(not _blank(_get(r, "phone")) for r in many)}
    channels = tuple(c for c in rules.outreach_channels if c not in closed and reachable.get(c, True))
    no_channel = "outreach_tasks" in allowed and bool(closed) and not channels
    if no_channel:
        allowed.remove("outreach_tasks")  # nothing left to reach them on
    named = (unsubscribed_from(_get(r, "subscription_status"), rules) for r in many)
    whence = tuple(dict.fromkeys(text for text in named if text))
    return ConsentStatus(states=ordered, allowed=tuple(allowed), channels=channels, closed=closed,
                         no_channel=no_channel, unsubscribed_from=whence)
