"""What the sandbox enrichment server knows: companies by domain, people by email.

Built deterministically from the seed data the sandbox CRMs load, so the CRMs' companies and
people are found: a company is known under every work-email domain and account domain of the seed
(free-mail domains are not companies), with the values its records agree on most (accounts and
HubSpot companies first); a person is known under every address of their ground-truth cluster,
with the values of all of that person's records together (so a lead missing its title is enriched
from the same person's HubSpot contact). What the records leave empty is generated from a hash of
the seed and the key (founded year, technologies; a title when no record has one). Same seed, same
directory.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from crm_sandbox.seed import SeedData
from crm_sandbox.seed.messiness import FREE_MAIL_DOMAINS

_ADDRESS = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_HOST = re.compile(r"^(?:[a-z]+://)?(?:www\.)?([^/:?#\s]+)")
_FREE = frozenset({*FREE_MAIL_DOMAINS, "googlemail.com"})

SECTORS = {
    "Technology": "Information Technology", "Software": "Information Technology",
    "Telecommunications": "Communication Services", "Media": "Communication Services",
    "Financial Services": "Financials", "Insurance": "Financials", "Real Estate": "Real Estate",
    "Healthcare": "Health Care", "Manufacturing": "Industrials", "Construction": "Industrials",
    "Transportation": "Industrials", "Professional Services": "Industrials", "Energy": "Energy",
    "Retail": "Consumer Discretionary", "Hospitality": "Consumer Discretionary", "Education": "Consumer Discretionary",
    "Non-Profit": "Non-Profit",
}
TECHNOLOGIES = ("salesforce", "hubspot", "google_workspace", "microsoft_365", "slack", "zendesk", "stripe",
                "aws", "marketo", "intercom", "segment", "snowflake")
TITLES = ("Marketing Manager", "Sales Director", "VP of Sales", "Operations Manager", "Head of IT",
          "Account Executive", "Software Engineer", "Chief Financial Officer", "Customer Success Manager",
          "Procurement Manager")


@dataclass
class CompanyProfile:
    """One company as the server describes it."""

    domain: str
    name: str
    industry: str | None
    employees: int | None
    annual_revenue: int | None
    country_code: str | None
    state_code: str | None
    city: str | None
    founded_year: int
    tech: list[str] = field(default_factory=list)


@dataclass
class PersonProfile:
    """One person as the server describes them."""

    email: str
    first_name: str | None
    last_name: str | None
    title: str | None
    phone: str | None
    company_name: str | None
    company_domain: str | None
    company_industry: str | None
    company_employees: int | None
    city: str | None
    country: str | None
    state: str | None
    emails: list[str] = field(default_factory=list)


@dataclass
class Directory:
    """Companies by domain and people by email (lower case)."""

    companies: dict[str, CompanyProfile] = field(default_factory=dict)
    people: dict[str, PersonProfile] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The directory as JSON (the state file)."""
        return {"companies": {k: asdict(v) for k, v in sorted(self.companies.items())},
                "people": {k: asdict(v) for k, v in sorted(self.people.items())}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Directory:
        """A directory from :meth:`as_json`."""
        return cls({k: CompanyProfile(**v) for k, v in data.get("companies", {}).items()},
                   {k: PersonProfile(**v) for k, v in data.get("people", {}).items()})


def address(raw: Any) -> str | None:
    """The first email address in a CRM value, lower case."""
    if not isinstance(raw, str):
        return None
    found = _ADDRESS.search(raw)
    return found.group(0).lower().strip(".") if found else None


def host(raw: Any) -> str | None:
    """The host of a website or domain value, lower case, without ``www.``."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    found = _HOST.match(raw.strip().lower())
    return found.group(1).rstrip(".") if found and "." in found.group(1) else None


def hash_int(*parts: Any) -> int:
    """A stable integer from ``parts`` (not Python's salted ``hash``)."""
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode("utf-8")).digest()[:8], "big")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _number(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(str(value).replace(",", ""))
    except ValueError:
        return None
    return int(number) if number == number and number >= 0 else None


def _mode(values: Iterable[Any], prefer: Any = None) -> Any:
    """The most common non-empty value (first seen on ties), preferring those ``prefer`` accepts."""
    present = [v for v in values if v is not None]
    if prefer is not None and any(prefer(v) for v in present):
        present = [v for v in present if prefer(v)]
    if not present:
        return None
    counts = Counter(present)
    best = max(counts.values())
    return next(v for v in present if counts[v] == best)


def _code(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 3 and value.isupper()


class _Facts:
    """Values gathered for one key, in the order the records were read."""

    def __init__(self) -> None:
        self.values: dict[str, list[Any]] = {}

    def add(self, **values: Any) -> None:
        for name, value in values.items():
            self.values.setdefault(name, []).append(value)

    def get(self, name: str) -> list[Any]:
        return self.values.get(name, [])


def build_directory(seed_data: SeedData | None) -> Directory:
    """The directory of ``seed_data`` (empty without seed data)."""
    if seed_data is None:
        return Directory()
    companies = _companies(seed_data)
    return Directory(companies, _people(seed_data, companies))


def _companies(seed_data: SeedData) -> dict[str, CompanyProfile]:
    facts: dict[str, _Facts] = {}

    def gather(domain: str | None, **values: Any) -> None:
        if domain and domain not in _FREE:
            facts.setdefault(domain, _Facts()).add(**values)

    for account in seed_data.salesforce.get("Account", []):
        gather(host(account.get("Domain__c")) or host(account.get("Website")), name=_text(account.get("Name")),
               industry=_text(account.get("Industry")), employees=_number(account.get("NumberOfEmployees")),
               revenue=_number(account.get("AnnualRevenue")), country=_text(account.get("BillingCountry")),
               state=_text(account.get("BillingState")), city=_text(account.get("BillingCity")))
    for company in seed_data.hubspot.get("companies", []):
        p = company.get("properties", {})
        gather(host(p.get("domain")) or host(p.get("website")), name=_text(p.get("name")),
               industry=_text(p.get("industry")), employees=_number(p.get("numberofemployees")),
               revenue=_number(p.get("annualrevenue")), country=_text(p.get("country")),
               state=_text(p.get("state")), city=_text(p.get("city")))
    for record in _person_records(seed_data):
        email = address(record["email"])
        gather(email.rsplit("@", 1)[1] if email else host(record["website"]), name=record["company"],
               industry=record["industry"], employees=record["employees"], revenue=None,
               country=record["country"], state=record["state"], city=record["city"])
    profiles: dict[str, CompanyProfile] = {}
    for domain, found in sorted(facts.items()):
        name = _mode(found.get("name")) or domain.split(".")[0].capitalize()
        employees = _mode(found.get("employees"))
        revenue = _mode(found.get("revenue"))
        if revenue is None and employees is not None:
            revenue = round(employees * (60_000 + hash_int(seed_data.seed, domain, "revenue") % 260_000), -3)
        tech_count = 2 + hash_int(seed_data.seed, domain, "tech") % 4
        start = hash_int(seed_data.seed, domain, "stack") % len(TECHNOLOGIES)
        profiles[domain] = CompanyProfile(
            domain=domain, name=name, industry=_mode(found.get("industry")), employees=employees,
            annual_revenue=revenue, country_code=_mode(found.get("country"), _code),
            state_code=_mode(found.get("state"), _code), city=_mode(found.get("city")),
            founded_year=1950 + hash_int(seed_data.seed, domain, "founded") % 74,
            tech=[TECHNOLOGIES[(start + i) % len(TECHNOLOGIES)] for i in range(tech_count)])
    return profiles


def _person_records(seed_data: SeedData) -> list[dict[str, Any]]:
    """Every person record of both CRMs in one shape, with its ground-truth key."""
    records = []
    for lead in seed_data.salesforce.get("Lead", []):
        records.append(_person(("salesforce", "Lead", lead["Id"]), lead.get("Email"), lead.get("FirstName"),
                               lead.get("LastName"), lead.get("Title"), lead.get("Phone"), lead.get("Company"),
                               lead.get("Website"), lead.get("Industry"), lead.get("NumberOfEmployees"),
                               lead.get("Country"), lead.get("State"), lead.get("City")))
    for contact in seed_data.salesforce.get("Contact", []):
        records.append(_person(("salesforce", "Contact", contact["Id"]), contact.get("Email"),
                               contact.get("FirstName"), contact.get("LastName"), contact.get("Title"),
                               contact.get("Phone"), None, None, None, None, contact.get("MailingCountry"),
                               contact.get("MailingState"), contact.get("MailingCity")))
    for contact in seed_data.hubspot.get("contacts", []):
        p = contact.get("properties", {})
        records.append(_person(("hubspot", "contacts", contact["id"]), p.get("email"), p.get("firstname"),
                               p.get("lastname"), p.get("jobtitle"), p.get("phone"), p.get("company"),
                               p.get("website"), p.get("industry"), p.get("numemployees"), p.get("country"),
                               p.get("state"), p.get("city")))
    return records


def _person(key: tuple[str, str, str], email: Any, first: Any, last: Any, title: Any, phone: Any, company: Any,
            website: Any, industry: Any, employees: Any, country: Any, state: Any, city: Any) -> dict[str, Any]:
    return {"key": key, "email": email, "first": _text(first), "last": _text(last), "title": _text(title),
            "phone": _text(phone), "company": _text(company), "website": website, "industry": _text(industry),
            "employees": _number(employees), "country": _text(country), "state": _text(state), "city": _text(city)}


def _people(seed_data: SeedData, companies: dict[str, CompanyProfile]) -> dict[str, PersonProfile]:
    cluster_of = seed_data.truth.person_of()
    clusters: dict[str, list[dict[str, Any]]] = {}
    for record in _person_records(seed_data):
        cluster = cluster_of.get(record["key"], "/".join(record["key"]))
        clusters.setdefault(cluster, []).append(record)
    people: dict[str, PersonProfile] = {}
    for cluster_id, records in clusters.items():
        emails = sorted({e for e in (address(r["email"]) for r in records) if e})
        if not emails:
            continue
        work = [e for e in emails if e.rsplit("@", 1)[1] not in _FREE]
        domain = work[0].rsplit("@", 1)[1] if work else None
        company = companies.get(domain) if domain else None
        title = _mode(r["title"] for r in records) or TITLES[hash_int(seed_data.seed, cluster_id, "title") % len(TITLES)]
        phone = _mode((r["phone"] for r in records), lambda v: isinstance(v, str) and v.startswith("+"))
        for email in emails:
            people[email] = PersonProfile(
                email=email, first_name=_mode(r["first"] for r in records), last_name=_mode(r["last"] for r in records),
                title=title, phone=phone,
                company_name=company.name if company else _mode(r["company"] for r in records),
                company_domain=domain, company_industry=company.industry if company else None,
                company_employees=company.employees if company else None,
                city=_mode(r["city"] for r in records), country=_mode((r["country"] for r in records), _code),
                state=_mode((r["state"] for r in records), _code), emails=emails)
    return people
