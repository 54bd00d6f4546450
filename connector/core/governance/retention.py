"""Retention: how long each class of data is kept, and what is done when its time is up (``retention.yaml``).

Seed 002 "Data Retention Policy": customers 7 years then archive, prospects 2 years then delete,
unsubscribed 5 years then suppress, employees 7 years after termination then archive.

A person is judged on all their records (the same person in both CRMs is one person):

* ``customer``: a record's lifecycle stage is a customer value (HubSpot ``lifecyclestage`` customer), or
  the account a record belongs to (``account_id``, or the account Relay matched it to) is a customer
  (its lifecycle stage or type, or a won deal);
* ``unsubscribed``: otherwise, a record opted out of email or shows an unsubscribed subscription status
  (kept as a suppression: deleting them would lose the opt-out);
* ``prospect``: everyone else.

Age runs from the person's last activity: the latest of the CRM's last activity date, the rep's
disposition date and the creation date of any of their records. (The CRM's last-modified time is not
used: Relay's own writes move it, so every lead it scores would stay young forever.) Employees (CRM
users no longer active) run from their last assignment in Relay's ledger: neither CRM records when a
user left, so that is the latest Relay knows them to have worked.

Pure: records, rules and ``now`` in, a :class:`RetentionVerdict` out.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from connector.core.governance.consent import unsubscribed_from
from connector.core.governance.rules import ConsentRules, RetentionRules
from connector.core.models import Account, Person

DAYS_PER_YEAR = 365.25
"""A retention year, in days (leap years included on average)."""


@dataclass(frozen=True, slots=True)
class RetentionVerdict:
    """What retention says of one person (or employee) at ``now``.

    Attributes:
        retention_class: ``customer``, ``prospect``, ``unsubscribed`` or ``employee``.
        action: What is done when the period is over: ``archive``, ``delete`` or ``suppress``.
        basis_at: The last activity the age runs from (None: nothing dated; the person is never due).
        due_at: When the period is over (None with ``basis_at``).
        due: Whether ``now`` is past ``due_at``.
        why: In words: the class and what made it, the date the age runs from, the period.
    """

    retention_class: str
    action: str
    basis_at: datetime | None
    due_at: datetime | None
    due: bool
    why: str


def age_days(basis_at: datetime | None, now: datetime) -> int | None:
    """Whole days from ``basis_at`` to ``now`` (None when there is no date)."""
    return None if basis_at is None else max(0, (now - basis_at).days)


def period_end(basis_at: datetime, years: int) -> datetime:
    """When a period of ``years`` retention years from ``basis_at`` is over."""
    return basis_at + timedelta(days=round(years * DAYS_PER_YEAR))


def _norm(value: object) -> str | None:
    return value.strip().casefold() if isinstance(value, str) and value.strip() else None


def is_customer_value(value: object, rules: RetentionRules) -> bool:
    """Whether a lifecycle stage or account type names a customer (``customer_values``, without case)."""
    found = _norm(value)
    return found is not None and found in {v.casefold() for v in rules.customer_values}


def account_key(connection: str, crm_id: str) -> str:
    """How accounts are named across connections: ``connection/crm_id``."""
    return f"{connection}/{crm_id}"


def customer_accounts(accounts: Sequence[Account], won_account_keys: Collection[str],
                      rules: RetentionRules) -> frozenset[str]:
    """The keys (:func:`account_key`) of the accounts that are customers: a customer stage or type, or a won deal."""
    found = set(won_account_keys)
    for account in accounts:
        if is_customer_value(account.lifecycle_stage, rules):
            found.add(account_key(account.ref.connection, account.ref.crm_id))
    return frozenset(found)


def _accounts_of(person: Person) -> list[str]:
    keys = []
    for crm_id in (person.account_id, person.relay_matched_account):
        if crm_id:
            keys.append(account_key(person.ref.connection, crm_id))
    return keys


def person_class(records: Sequence[Person], *, rules: RetentionRules, consent: ConsentRules,
                 customers: Collection[str] = frozenset()) -> tuple[str, str]:
    """The retention class of one person and what made it: ``(class, why)``.

    Args:
        records: The person's records.
        rules: retention.yaml.
        consent: consent.yaml (its ``unsubscribed_values``).
        customers: Keys of the customer accounts (:func:`customer_accounts`).
    """
    for person in records:
        if is_customer_value(person.lifecycle_stage, rules):
            return "customer", f"{person.ref} has lifecycle stage {person.lifecycle_stage}"
    for person in records:
        for key in _accounts_of(person):
            if key in customers:
                return "customer", f"{person.ref} belongs to customer account {key}"
    for person in records:
        if person.email_opt_out is True:
            return "unsubscribed", f"{person.ref} opted out of email"
        if unsubscribed_from(person.subscription_status, consent) is not None:
            return "unsubscribed", f"{person.ref} subscription status {person.subscription_status}"
    return "prospect", "no customer stage, customer account or opt-out"


def last_activity(records: Sequence[Person]) -> datetime | None:
    """The latest of the records' last activity, disposition and creation dates (None: none is dated)."""
    dates = [d for p in records for d in (p.last_activity_at, p.disposition_at, p.created_at) if d is not None]
    return max(dates) if dates else None


def _verdict(retention_class: str, why: str, basis_at: datetime | None, now: datetime,
             rules: RetentionRules, what: str) -> RetentionVerdict:
    period = rules.classes[retention_class]  # type: ignore[index]
    if basis_at is None:
        return RetentionVerdict(retention_class, period.action, None, None, False,
                                f"{retention_class} ({why}); no {what} date: kept")
    due_at = period_end(basis_at, period.years)
    due = now >= due_at
    return RetentionVerdict(
        retention_class, period.action, basis_at, due_at, due,
        f"{retention_class} ({why}); {what} {basis_at.date().isoformat()}, {period.years} years "
        f"{'passed' if due else 'pass'} on {due_at.date().isoformat()}: {period.action if due else 'kept'}")


def retention_of(records: Sequence[Person], now: datetime, *, rules: RetentionRules, consent: ConsentRules,
                 customers: Collection[str] = frozenset()) -> RetentionVerdict:
    """What retention says of one person at ``now`` (their records together).

    Raises:
        ValueError: ``now`` is naive, or there is no record.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (UTC recommended)")
    if not records:
        raise ValueError("a person has at least one record")
    retention_class, why = person_class(records, rules=rules, consent=consent, customers=customers)
    return _verdict(retention_class, why, last_activity(records), now, rules, "last activity")


def employee_retention(email: str, last_assigned_at: datetime | None, now: datetime, *,
                       rules: RetentionRules) -> RetentionVerdict:
    """What retention says of a former employee (a CRM user no longer active) at ``now``.

    Raises:
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (UTC recommended)")
    return _verdict("employee", f"{email} is no active CRM user", last_assigned_at, now, rules, "last assignment")
