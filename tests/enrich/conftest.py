"""Fixtures of the enrichment tests: provider settings, people, a fake clock, a store per backend."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from connector.core.models import Person, RecordRef
from connector.enrich.providers import ProviderAnswer
from connector.enrich.settings import EnrichmentFile, LookupKind, ProviderSettings
from connector.store import migrate
from connector.store.db import create_engine_for, session_factory
from tests.support.databases import fresh_postgres_schema

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
COMPANY_URL = "https://company.example.com/v2/companies/find?domain={domain}"
PERSON_URL = "https://person.example.com/v5/person/enrich?email={email}"


def company_provider(name: str = "firmographics", **overrides: Any) -> ProviderSettings:
    """A Clearbit-shaped company provider."""
    values: dict[str, Any] = {
        "name": name, "lookup": "company", "url": COMPANY_URL, "auth_value": "Bearer sk_test",
        "error_path": "$.error", "backoff_seconds": 0.5,
        "fields": {"$.name": "company", "$.category.industry": "industry", "$.metrics.employees": "employees",
                   "$.metrics.annualRevenue": "annual_revenue", "$.geo.countryCode": "country"},
    }
    values.update(overrides)
    return ProviderSettings.model_validate(values)


def person_provider(name: str = "person_data", **overrides: Any) -> ProviderSettings:
    """A person provider answering ``{"status", "data": {...}}``."""
    values: dict[str, Any] = {
        "name": name, "lookup": "person", "url": PERSON_URL, "auth_header": "X-Api-Key", "auth_value": "pdl_test",
        "fields": {"$.data.job_title": "title", "$.data.mobile_phone": "phone",
                   "$.data.job_company_industry": "industry", "$.data.job_company_name": "company"},
    }
    values.update(overrides)
    return ProviderSettings.model_validate(values)


def enrichment(*providers: ProviderSettings, **overrides: Any) -> EnrichmentFile:
    """An enabled enrichment.yaml with these providers."""
    values: dict[str, Any] = {"enabled": True, "providers": [p.model_dump() for p in providers]}
    for provider, dumped in zip(providers, values["providers"], strict=True):
        dumped["auth_value"] = provider.auth_value.get_secret_value()
    values.update(overrides)
    return EnrichmentFile.model_validate(values)


def lead(crm_id: str = "00Q1", **fields: Any) -> Person:
    """A Salesforce lead with these canonical fields."""
    return Person(kind="lead", ref=RecordRef(connection="salesforce", object="Lead", crm_id=crm_id), **fields)


@dataclass
class FakeClock:
    """Monotonic seconds that only move when something sleeps."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class ScriptedProvider:
    """A provider that answers from a dict and counts what it was asked (the Provider port's fake)."""

    name: str
    kind: LookupKind
    known: dict[str, dict[str, Any]] = field(default_factory=dict)
    failing: dict[str, str] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def lookup(self, kind: LookupKind, key: str) -> ProviderAnswer:
        self.asked.append(key)
        if key in self.failing:
            return ProviderAnswer(self.name, kind, key, "failed", reason=self.failing[key], attempts=3, cacheable=False)
        if key not in self.known:
            return ProviderAnswer(self.name, kind, key, "not_found", reason=f"{self.name} knows no {kind} {key} (HTTP 404)",
                                  attempts=1)
        return ProviderAnswer(self.name, kind, key, "found", self.known[key], attempts=1)


@dataclass
class Store:
    """A migrated store of one backend."""

    backend: str
    sessions: sessionmaker[Session]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A freshly migrated store, once on SQLite and once on PostgreSQL (when RELAY_TEST_POSTGRES_URL is set)."""
    if request.param == "sqlite":
        engine = create_engine_for(f"sqlite:///{tmp_path / 'relay.db'}")
        migrate.upgrade(engine)
        try:
            yield Store("sqlite", session_factory(engine))
        finally:
            engine.dispose()
        return
    with fresh_postgres_schema() as url:
        engine = create_engine_for(url)
        migrate.upgrade(engine)
        try:
            yield Store("postgresql", session_factory(engine))
        finally:
            engine.dispose()
