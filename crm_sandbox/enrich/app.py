"""The enrichment server's HTTP side: two provider shapes over one directory.

* ``GET /v1/companies/find?domain=acme.example``, header ``Authorization: Bearer <key>``, answers a
  company in the shape of Clearbit's Company API (``name``, ``legalName``, ``domain``,
  ``category.industry``, ``metrics.employees``, ``metrics.annualRevenue``, ``geo.countryCode``...);
  ``404 {"error": {"type": "unknown_record", ...}}`` for an unknown domain, ``401`` for a wrong key,
  ``422`` without ``domain``.
* ``GET /v2/person?email=jane@acme.example`` (or ``POST /v2/person`` with ``{"email": ...}``), header
  ``X-Api-Key: <key>``, answers ``{"status": 200, "likelihood": n, "data": {...}}`` in the shape of a
  person-enrichment API (``first_name``, ``job_title``, ``job_company_name``, ``mobile_phone``,
  ``location_locality``...); ``404 {"status": 404, "error": {"type": "not_found", ...}}``, ``401``,
  ``400`` without ``email``.

A share ``not_found_rate`` of the keys is unknown on purpose (the same keys for the same seed), as
every provider's coverage has holes. Faults and the call ledger are the sandbox middleware's.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_sandbox.common import AnswerFaults, call_counter
from crm_sandbox.enrich.directory import (
    SECTORS,
    CompanyProfile,
    Directory,
    PersonProfile,
    address,
    hash_int,
    host,
)

COMPANY_PATH = "/v1/companies/find"
PERSON_PATH = "/v2/person"


@dataclass
class ServerSettings:
    """What the server checks, changeable while it runs.

    Attributes:
        api_key: The key both endpoints accept.
        not_found_rate: Share of keys answered 404 although known (0 to 1).
        seed: Chooses which keys those are.
    """

    api_key: str
    not_found_rate: float = 0.0
    seed: int = 0

    def hides(self, key: str) -> bool:
        """Whether ``key`` is one of the keys answered 404 on purpose."""
        if self.not_found_rate <= 0:
            return False
        return hash_int(self.seed, key, "miss") % 10_000 < self.not_found_rate * 10_000


class EnrichAnswers(AnswerFaults):
    """The enrichment API's spoiled answers: its error object with status 200."""

    server_name = "Enrichment API"

    def error_200(self) -> Any:
        return {"error": {"type": "api_error", "message": "the lookup failed upstream (injected fault)"}}


def _company_error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def _person_error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"status": status, "error": {"type": kind, "message": message}}, status_code=status)


def company_json(company: CompanyProfile) -> dict[str, Any]:
    """A company in the Clearbit-like shape."""
    employees = company.employees
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, company.domain)),
        "name": company.name,
        "legalName": company.name,
        "domain": company.domain,
        "domainAliases": [],
        "category": {"sector": SECTORS.get(company.industry or ""), "industry": company.industry},
        "foundedYear": company.founded_year,
        "geo": {"city": company.city, "state": None, "stateCode": company.state_code, "country": None,
                "countryCode": company.country_code},
        "metrics": {"employees": employees, "employeesRange": _size_range(employees),
                    "annualRevenue": company.annual_revenue},
        "tech": list(company.tech),
        "type": "private",
        "indexedAt": "2026-01-01T00:00:00.000Z",
    }


def person_json(person: PersonProfile, likelihood: int) -> dict[str, Any]:
    """A person in the person-enrichment shape (``status``, ``likelihood``, ``data``)."""
    full = " ".join(part for part in (person.first_name, person.last_name) if part) or None
    return {
        "status": 200,
        "likelihood": likelihood,
        "data": {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "mailto:" + person.email)),
            "full_name": full.lower() if full else None,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "job_title": person.title,
            "job_company_name": person.company_name,
            "job_company_website": person.company_domain,
            "job_company_industry": person.company_industry,
            "job_company_size": _size_range(person.company_employees),
            "mobile_phone": person.phone,
            "location_locality": person.city,
            "location_region": person.state,
            "location_country": person.country,
            "emails": [{"address": email, "type": None} for email in person.emails],
        },
    }


def _size_range(employees: int | None) -> str | None:
    if employees is None:
        return None
    for low, high in ((1, 10), (11, 50), (51, 200), (201, 500), (501, 1000), (1001, 5000), (5001, 10000)):
        if employees <= high:
            return f"{low}-{high}"
    return "10001+"


def build_app(directory: Directory, settings: ServerSettings) -> Starlette:
    """The routes (the caller wraps them in the sandbox middleware: ledger and faults)."""

    async def company(request: Request) -> Response:
        counter = call_counter(request.scope)
        counter.kind = "company"
        if request.headers.get("authorization", "") != f"Bearer {settings.api_key}":
            return _company_error(HTTPStatus.UNAUTHORIZED, "auth_required",
                                  "Invalid API key: send Authorization: Bearer <key>")
        domain = host(request.query_params.get("domain"))
        if domain is None:
            return _company_error(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_params", "domain is required")
        found = directory.companies.get(domain)
        if found is None or settings.hides(domain):
            return _company_error(HTTPStatus.NOT_FOUND, "unknown_record", f"Unknown domain: {domain}")
        counter.read = 1
        return JSONResponse(company_json(found))

    async def person(request: Request) -> Response:
        counter = call_counter(request.scope)
        counter.kind = "person"
        if request.headers.get("x-api-key", "") != settings.api_key:
            return _person_error(HTTPStatus.UNAUTHORIZED, "authentication_error",
                                 "Invalid or missing API key: send X-Api-Key")
        raw: Any = request.query_params.get("email")
        if request.method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError):
                return _person_error(HTTPStatus.BAD_REQUEST, "invalid_request_error", "The body is not JSON")
            raw = body.get("email") if isinstance(body, dict) else None
        email = address(raw)
        if email is None:
            return _person_error(HTTPStatus.BAD_REQUEST, "invalid_request_error", "email is required")
        found = directory.people.get(email)
        if found is None or settings.hides(email):
            return _person_error(HTTPStatus.NOT_FOUND, "not_found", "No records were found matching your request")
        counter.read = 1
        return JSONResponse(person_json(found, 6 + hash_int(settings.seed, email, "likelihood") % 5))

    return Starlette(routes=[
        Route(COMPANY_PATH, company, methods=["GET"]),
        Route(PERSON_PATH, person, methods=["GET", "POST"]),
    ])
