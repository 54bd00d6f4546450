"""Hygiene: normalise a person's fields and report data-quality findings.

Seed 002 "Lead Enrichment": required fields validation, standardise country/state,
format phone numbers, clean company names, normalise job titles. Nothing here raises
on bad data: every problem becomes a ``Finding`` and the original value is kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import phonenumbers

from connector.core._company import clean_company, company_key, recase
from connector.core._email import clean_email, email_domain, is_free_mail, is_valid_email
from connector.core._geo import STATE_COUNTRIES, country_code, state_code
from connector.core._titles import clean_title, function_of, seniority_of
from connector.core.models import Finding, HygieneResult, Person

# Seed 002 "Data Entry Standards": First Name, Last Name, Email, Company are required.
REQUIRED_PERSON_FIELDS: tuple[str, ...] = ("first_name", "last_name", "email", "company")

_TEXT_FIELDS = ("city", "lead_source", "status", "industry", "website")


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def normalise_phone(raw: str, country: str | None) -> str | None:
    """Return ``raw`` in E.164 (``+14155551234``), or ``None`` when it is not valid.

    Args:
        raw: The phone number as typed.
        country: ISO alpha-2 country used as the region for national numbers.
    """
    try:
        number = phonenumbers.parse(raw, country if country else None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def clean_person(
    person: Person, required_fields: Sequence[str] = REQUIRED_PERSON_FIELDS
) -> HygieneResult:
    """Normalise a person's fields and collect findings.

    Email is stripped and lower-cased (dots kept), phone formatted as E.164 using the
    record's country as region, country/state mapped to ISO codes, company and name
    casing fixed, title whitespace collapsed. Invalid values are kept as they were
    (trimmed) with a finding. Applying it to its own output changes nothing.

    Args:
        person: The canonical person from the mapping layer.
        required_fields: Fields that must be filled in; each missing one is a finding.

    Returns:
        The cleaned person, the changed fields, findings and derived attributes.
    """
    ref = person.ref
    findings: list[Finding] = []
    updates: dict[str, Any] = {}

    def finding(field: str, code: str, message: str, value: Any) -> None:
        findings.append(
            Finding(ref=ref, field=field, code=code, message=message,
                    value=None if value is None else str(value))
        )

    for field in required_fields:
        if _blank(getattr(person, field, None)):
            finding(field, "missing_required", f"{field} is required but empty", None)

    # email
    domain: str | None = None
    if person.email is not None and not _blank(person.email):
        email = clean_email(person.email)
        updates["email"] = email
        if is_valid_email(email):
            domain = email_domain(email)
        else:
            finding("email", "invalid_email", f"'{email}' is not a valid email address", email)

    # country first: phone and state depend on it
    country: str | None = None
    if person.country is not None and not _blank(person.country):
        country = country_code(person.country)
        if country is None:
            kept = _collapse(person.country)
            updates["country"] = kept
            finding("country", "unknown_country", f"'{kept}' is not a known country", kept)
        else:
            updates["country"] = country

    if person.state is not None and not _blank(person.state):
        kept = _collapse(person.state)
        code = state_code(kept, country)
        updates["state"] = code if code is not None else kept
        if code is None and country in STATE_COUNTRIES:
            finding("state", "unknown_state", f"'{kept}' is not a state/province of {country}", kept)

    if person.phone is not None and not _blank(person.phone):
        kept = _collapse(person.phone)
        e164 = normalise_phone(kept, country)
        updates["phone"] = e164 if e164 is not None else kept
        if e164 is None:
            where = f" for country {country}" if country else " (no country to read it in)"
            finding("phone", "invalid_phone", f"'{kept}' is not a valid phone number{where}", kept)

    if person.company is not None and not _blank(person.company):
        updates["company"] = clean_company(person.company)
    for field in ("first_name", "last_name"):
        value = getattr(person, field)
        if value is not None and not _blank(value):
            updates[field] = recase(_collapse(value), keep_short_caps=False)
    if person.title is not None and not _blank(person.title):
        updates["title"] = clean_title(person.title)
    for field in _TEXT_FIELDS:
        value = getattr(person, field)
        if isinstance(value, str) and not _blank(value):
            updates[field] = _collapse(value)

    for field in ("employees", "annual_revenue", "page_views", "email_clicks",
                  "form_submissions", "content_downloads", "pricing_page_visits"):
        value = getattr(person, field)
        if value is not None and value < 0:
            finding(field, "negative_value", f"{field} cannot be negative", value)

    changes = {k: v for k, v in updates.items() if getattr(person, k) != v}
    cleaned = person.model_copy(update=changes) if changes else person
    return HygieneResult(
        person=cleaned,
        changes=changes,
        findings=tuple(findings),
        email_domain=domain,
        free_mail=is_free_mail(domain),
        company_key=company_key(cleaned.company),
        seniority=seniority_of(cleaned.title),
        function=function_of(cleaned.title),
    )
