"""Hygiene: normalise a person's fields and report data-quality findings.

Seed 002 "Lead Enrichment": required fields validation, standardise country/state,
format phone numbers, clean company names, normalise job titles. Nothing here raises
on bad data: every problem becomes a ``Finding`` and the original value is kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from connector.core._cache import value_cache
from connector.core._company import clean_company, company_key, recase
from connector.core._email import clean_email, is_free_mail, is_valid_email
from connector.core._geo import STATE_COUNTRIES, country_code, state_code
from connector.core._phone import normalise_phone
from connector.core._titles import clean_title, function_of, seniority_of
from connector.core.models import Finding, HygieneResult, JobFunction, Person, Seniority

# Seed 002 "Data Entry Standards": First Name, Last Name, Email, Company are required.
REQUIRED_PERSON_FIELDS: tuple[str, ...] = ("first_name", "last_name", "email", "company")

_TEXT_FIELDS = ("city", "lead_source", "status", "industry", "website")
_NAME_FIELDS = ("first_name", "last_name")
_NON_NEGATIVE_FIELDS = ("employees", "annual_revenue", "page_views", "email_clicks",
                        "form_submissions", "content_downloads", "pricing_page_visits")
_SPACES_RE = re.compile(r"\s+")

# Every normalisation below is a pure function of one field value (and the country, for
# phones and states), so each is cached per distinct value: names, companies, titles,
# countries and phone numbers repeat across records and across runs, and parsing a phone
# number or matching the title patterns costs far more than a cache lookup.


def _collapse(text: str) -> str:
    return _SPACES_RE.sub(" ", text).strip()


@value_cache
def _text(raw: str) -> str:
    """A free-text value (city, lead source, website...) with its whitespace collapsed."""
    return _collapse(raw)


@value_cache
def _email(raw: str) -> tuple[str, str | None]:
    """The cleaned email and its domain (``None`` when the address is not valid)."""
    email = clean_email(raw)
    return email, (email.split("@")[1] if is_valid_email(email) else None)


@value_cache
def _country(raw: str) -> tuple[str, str | None]:
    """The value to store and the ISO code (``None``: unknown, the trimmed value is kept)."""
    code = country_code(raw)
    return (code, code) if code is not None else (_collapse(raw), None)


@value_cache
def _state(raw: str, country: str | None) -> tuple[str, str | None]:
    """The trimmed state and its subdivision code in ``country`` (``None`` when unknown)."""
    kept = _collapse(raw)
    return kept, state_code(kept, country)


@value_cache
def _phone(raw: str, country: str | None) -> tuple[str, str | None]:
    """The trimmed number and its E.164 form (``None`` when not a valid number).

    Parsing and validating with ``phonenumbers`` is the most expensive step of hygiene
    (``connector.core._phone`` takes exact shortcuts through it).
    """
    kept = _collapse(raw)
    return kept, normalise_phone(kept, country)


@value_cache
def _company(raw: str) -> tuple[str, str | None]:
    """The cleaned company name and its matching key."""
    cleaned = clean_company(raw)
    return cleaned, company_key(cleaned)


@value_cache
def _name(raw: str) -> str:
    return recase(_collapse(raw), keep_short_caps=False)


@value_cache
def _title(title: str | None) -> tuple[str | None, Seniority, JobFunction]:
    """The cleaned title (blank titles kept as they are), its seniority and its function."""
    cleaned = clean_title(title) if title is not None and title.strip() else title
    return cleaned, seniority_of(cleaned), function_of(cleaned)


def _updated(person: Person, changes: dict[str, Any]) -> Person:
    """``person.model_copy(update=changes)``: the same copy, without its generic steps.

    ``model_copy`` runs a Python-level copy of every private part before the update
    (about 1.6 us); a canonical ``Person`` has none (``extra="forbid"``, no private
    attributes), so its dict and fields set are all there is to copy. Anything else
    (a subclass with private attributes, extra values) takes ``model_copy``.
    """
    if person.__pydantic_extra__ is not None or person.__pydantic_private__ is not None:
        return person.model_copy(update=changes)
    cls = type(person)
    copied = cls.__new__(cls)
    fields = person.__dict__.copy()
    fields.update(changes)
    fields_set = set(person.__pydantic_fields_set__)
    fields_set.update(changes)
    _set_slot(copied, "__dict__", fields)
    _set_slot(copied, "__pydantic_extra__", None)
    _set_slot(copied, "__pydantic_fields_set__", fields_set)
    _set_slot(copied, "__pydantic_private__", None)
    return copied


_set_slot = object.__setattr__


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
    changes: dict[str, Any] = {}  # only the values that differ from the record's

    for field in required_fields:
        value = getattr(person, field, None)
        if value is None or (isinstance(value, str) and not value.strip()):
            findings.append(Finding(ref, field, "missing_required", f"{field} is required but empty"))

    # email
    domain: str | None = None
    raw = person.email
    if raw is not None and raw.strip():
        email, domain = _email(raw)
        if email != raw:
            changes["email"] = email
        if domain is None:
            findings.append(Finding(ref, "email", "invalid_email", f"'{email}' is not a valid email address",
                                    email))

    # country first: phone and state depend on it
    country: str | None = None
    raw = person.country
    if raw is not None and raw.strip():
        kept, country = _country(raw)
        if kept != raw:
            changes["country"] = kept
        if country is None:
            findings.append(Finding(ref, "country", "unknown_country", f"'{kept}' is not a known country", kept))

    raw = person.state
    if raw is not None and raw.strip():
        kept, code = _state(raw, country)
        value = code if code is not None else kept
        if value != raw:
            changes["state"] = value
        if code is None and country in STATE_COUNTRIES:
            findings.append(Finding(ref, "state", "unknown_state",
                                    f"'{kept}' is not a state/province of {country}", kept))

    raw = person.phone
    if raw is not None and raw.strip():
        kept, e164 = _phone(raw, country)
        value = e164 if e164 is not None else kept
        if value != raw:
            changes["phone"] = value
        if e164 is None:
            where = f" for country {country}" if country else " (no country to read it in)"
            findings.append(Finding(ref, "phone", "invalid_phone",
                                    f"'{kept}' is not a valid phone number{where}", kept))

    matching_key: str | None = None  # of the company; a blank name has none
    raw = person.company
    if raw is not None and raw.strip():
        value, matching_key = _company(raw)
        if value != raw:
            changes["company"] = value
    # The fields below are read as attributes, in the order of ``_NAME_FIELDS``,
    # ``_TEXT_FIELDS`` and ``_NON_NEGATIVE_FIELDS`` (cheaper than ``getattr`` by name).
    for field, raw in zip(_NAME_FIELDS, (person.first_name, person.last_name), strict=True):
        if raw is not None and raw.strip():
            value = _name(raw)
            if value != raw:
                changes[field] = value
    title, seniority, function = _title(person.title)
    if title != person.title:
        changes["title"] = title
    for field, raw in zip(_TEXT_FIELDS, (person.city, person.lead_source, person.status, person.industry,
                                         person.website), strict=True):
        if isinstance(raw, str) and raw.strip():
            value = _text(raw)
            if value != raw:
                changes[field] = value

    for field, value in zip(_NON_NEGATIVE_FIELDS, (
            person.employees, person.annual_revenue, person.page_views, person.email_clicks,
            person.form_submissions, person.content_downloads, person.pricing_page_visits), strict=True):
        if value is not None and value < 0:
            findings.append(Finding(ref, field, "negative_value", f"{field} cannot be negative", str(value)))

    cleaned = _updated(person, changes) if changes else person
    return HygieneResult(
        person=cleaned,
        changes=changes,
        findings=tuple(findings),
        email_domain=domain,
        free_mail=is_free_mail(domain),
        company_key=matching_key,
        seniority=seniority,
        function=function,
    )
