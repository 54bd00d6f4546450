"""Retention as a pure function: each person's class, the date their age runs from, and when they are due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.core.governance.retention import (
    DAYS_PER_YEAR,
    account_key,
    customer_accounts,
    employee_retention,
    last_activity,
    period_end,
    person_class,
    retention_of,
)
from connector.core.governance.rules import ConsentRules, RetentionPeriod, RetentionRules
from connector.core.models import Account, Person

from .helpers import lead, ref

RULES = RetentionRules()
CONSENT = ConsentRules()
NOW = datetime(2031, 6, 1, tzinfo=UTC)


def at(years: float) -> datetime:
    """``years`` retention years before NOW."""
    return NOW - timedelta(days=years * DAYS_PER_YEAR)


def test_the_shipped_periods_are_the_sops() -> None:
    assert {name: (p.years, p.action) for name, p in RULES.classes.items()} == {
        "customer": (7, "archive"), "prospect": (2, "delete"), "unsubscribed": (5, "suppress"),
        "employee": (7, "archive")}


def test_classes() -> None:
    assert person_class([lead(1)], rules=RULES, consent=CONSENT) == (
        "prospect", "no customer stage, customer account or opt-out")
    customer = lead(2, connection="hubspot", object="contacts", lifecycle_stage="Customer")
    assert person_class([lead(1), customer], rules=RULES, consent=CONSENT)[0] == "customer"
    assert person_class([lead(1, email_opt_out=True)], rules=RULES, consent=CONSENT) == (
        "unsubscribed", "salesforce/Lead/1 opted out of email")
    assert person_class([lead(1, subscription_status="NOT_SUBSCRIBED")], rules=RULES, consent=CONSENT)[0] == \
        "unsubscribed"
    assert person_class([lead(1, subscription_status="unsubscribed: One to One")], rules=RULES, consent=CONSENT) == (
        "unsubscribed", "salesforce/Lead/1 subscription status unsubscribed: One to One")
    # A customer who unsubscribed from email stays a customer (7 years, archive).
    assert person_class([lead(1, email_opt_out=True, lifecycle_stage="customer")], rules=RULES,
                        consent=CONSENT)[0] == "customer"
    assert person_class([lead(1, lifecycle_stage="opportunity")], rules=RULES, consent=CONSENT)[0] == "prospect"


def test_a_customer_account_makes_its_people_customers() -> None:
    accounts = [Account(ref=ref("A1", obj="Account"), lifecycle_stage="Customer - Direct"),
                Account(ref=ref("A2", obj="Account"), lifecycle_stage="Prospect"),
                Account(ref=ref("A3", obj="Account"))]
    customers = customer_accounts(accounts, {account_key("salesforce", "A3")}, RULES)
    assert customers == {"salesforce/A1", "salesforce/A3"}  # A3: a won deal
    contact = lead(1, kind="contact", object="Contact", account_id="A1")
    assert person_class([contact], rules=RULES, consent=CONSENT, customers=customers) == (
        "customer", "salesforce/Contact/1 belongs to customer account salesforce/A1")
    matched = lead(2, relay_matched_account="A3")
    assert person_class([matched], rules=RULES, consent=CONSENT, customers=customers)[0] == "customer"
    other_crm = lead(3, connection="hubspot", object="contacts", relay_matched_account="A1")
    assert person_class([other_crm], rules=RULES, consent=CONSENT, customers=customers)[0] == "prospect"
    assert person_class([lead(4, account_id="A2")], rules=RULES, consent=CONSENT, customers=customers)[0] == \
        "prospect"


def test_age_runs_from_the_latest_activity_of_any_record() -> None:
    old = lead(1, created_at=at(6), last_activity_at=at(4))
    newer = lead(2, connection="hubspot", object="contacts", created_at=at(5), disposition_at=at(1))
    assert last_activity([old]) == at(4)
    assert last_activity([old, newer]) == at(1)
    assert last_activity([lead(3)]) is None
    # The last modification does not count (Relay's own writes move it).
    assert last_activity([lead(4, created_at=at(3), updated_at=at(0))]) == at(3)


def test_verdicts() -> None:
    prospect = retention_of([lead(1, created_at=at(3))], NOW, rules=RULES, consent=CONSENT)
    assert (prospect.retention_class, prospect.action, prospect.due) == ("prospect", "delete", True)
    assert prospect.due_at == period_end(at(3), 2)
    assert prospect.why.startswith("prospect (no customer stage, customer account or opt-out); last activity ")
    young = retention_of([lead(1, created_at=at(1))], NOW, rules=RULES, consent=CONSENT)
    assert not young.due and young.why.endswith(": kept")
    undated = retention_of([lead(1)], NOW, rules=RULES, consent=CONSENT)
    assert not undated.due and undated.basis_at is None and undated.why.endswith("no last activity date: kept")
    unsubscribed = retention_of([lead(1, email_opt_out=True, created_at=at(4.9))], NOW, rules=RULES, consent=CONSENT)
    assert (unsubscribed.action, unsubscribed.due) == ("suppress", False)
    assert retention_of([lead(1, email_opt_out=True, created_at=at(5.1))], NOW, rules=RULES, consent=CONSENT).due
    customer = retention_of([lead(1, lifecycle_stage="customer", created_at=at(6.9))], NOW, rules=RULES,
                            consent=CONSENT)
    assert (customer.action, customer.due) == ("archive", False)
    employee = employee_retention("sha256:x", at(7.5), NOW, rules=RULES)
    assert (employee.retention_class, employee.action, employee.due) == ("employee", "archive", True)
    assert not employee_retention("sha256:x", None, NOW, rules=RULES).due


def test_bad_calls_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        retention_of([lead(1)], datetime(2031, 1, 1), rules=RULES, consent=CONSENT)
    with pytest.raises(ValueError, match="at least one record"):
        retention_of([], NOW, rules=RULES, consent=CONSENT)


@settings(max_examples=200, deadline=None)
@given(days=st.integers(min_value=0, max_value=20 * 366), years=st.integers(min_value=1, max_value=10),
       action=st.sampled_from(["archive", "delete", "suppress"]))
def test_due_exactly_when_the_period_is_over(days: int, years: int, action: str) -> None:
    rules = RetentionRules(classes={**RULES.classes, "prospect": RetentionPeriod(years=years, action=action)})  # type: ignore[arg-type]
    basis = NOW - timedelta(days=days)
    verdict = retention_of([lead(1, created_at=basis)], NOW, rules=rules, consent=CONSENT)
    assert verdict.action == action and verdict.basis_at == basis
    assert verdict.due is (days >= round(years * DAYS_PER_YEAR))
    assert verdict.due_at == basis + timedelta(days=round(years * DAYS_PER_YEAR))


people = st.lists(st.builds(
    lambda i, opt, stage, days: lead(i, email_opt_out=opt, lifecycle_stage=stage,
                                     created_at=NOW - timedelta(days=days)),
    st.integers(1, 50), st.sampled_from([None, True, False]), st.sampled_from([None, "lead", "customer"]),
    st.integers(0, 5000)), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(records=people)
def test_the_class_follows_precedence_customer_then_unsubscribed_then_prospect(records: list[Person]) -> None:
    verdict = retention_of(records, NOW, rules=RULES, consent=CONSENT)
    if any(p.lifecycle_stage == "customer" for p in records):
        assert verdict.retention_class == "customer"
    elif any(p.email_opt_out for p in records):
        assert verdict.retention_class == "unsubscribed"
    else:
        assert verdict.retention_class == "prospect"
    assert verdict.basis_at == max(p.created_at for p in records if p.created_at is not None)
