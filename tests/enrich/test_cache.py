"""The enrichment cache in Relay's store, on SQLite and PostgreSQL: kept answers, TTLs, versions, purge."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from connector.enrich.cache import (
    CachedAnswer,
    CacheKey,
    MemoryEnrichmentCache,
    SqlEnrichmentCache,
    is_fresh,
)
from connector.enrich.waterfall import enrich
from connector.store import migrate
from connector.store.errors import InvalidStoreValue
from connector.store.models import Base

from .conftest import NOW, ScriptedProvider, Store, company_provider, enrichment, lead

KEY: CacheKey = ("firmographics", "company", "initech.example")


def key(domain: str) -> CacheKey:
    return ("firmographics", "company", domain)


def _answer(version: str, *, days_old: float = 0, outcome: str = "found", key: str = "initech.example") -> CachedAnswer:
    values = {"company": "Initech", "employees": 850, "annual_revenue": 1.5e8} if outcome == "found" else {}
    return CachedAnswer("firmographics", "company", key, version, outcome,  # type: ignore[arg-type]
                        NOW - timedelta(days=days_old), values)


def test_the_migration_creates_the_table_the_model_describes(store: Store) -> None:
    engine = store.sessions.kw["bind"]
    assert "enrichment_cache" in inspect(engine).get_table_names()
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    assert [d for d in diff if "enrichment_cache" in repr(d)] == []


def test_the_migration_downgrades_and_upgrades_again(store: Store) -> None:
    engine = store.sessions.kw["bind"]
    with engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), "0009_api_budget")
    assert "enrichment_cache" not in inspect(engine).get_table_names()
    migrate.upgrade(engine)
    assert "enrichment_cache" in inspect(engine).get_table_names()


def test_answers_round_trip_and_a_second_put_replaces_the_first(store: Store) -> None:
    cache = SqlEnrichmentCache(store.sessions)
    version = company_provider().version()
    cache.put_many([_answer(version, days_old=40), _answer(version, outcome="not_found", key="nowhere.example")])
    cache.put_many([_answer(version)])

    kept = cache.get_many([KEY, key("nowhere.example"), ("other", "company", "x.example")])

    assert set(kept) == {KEY, key("nowhere.example")}
    assert kept[KEY].fetched_at == NOW and kept[KEY].fetched_at.tzinfo is not None
    assert kept[KEY].values == {"company": "Initech", "employees": 850, "annual_revenue": 1.5e8}
    assert kept[key("nowhere.example")].outcome == "not_found"
    with store.sessions.begin() as session:
        assert session.execute(text("SELECT COUNT(*) FROM enrichment_cache")).scalar_one() == 2


def test_many_keys_are_read_in_chunks(store: Store) -> None:
    cache = SqlEnrichmentCache(store.sessions)
    version = company_provider().version()
    cache.put_many([_answer(version, key=f"c{i}.example") for i in range(1203)])

    kept = cache.get_many([key(f"c{i}.example") for i in range(0, 1300)])

    assert len(kept) == 1203


def test_the_database_refuses_a_failure_or_an_unknown_kind(store: Store) -> None:
    with pytest.raises(IntegrityError), store.sessions.begin() as session:
        session.execute(text("INSERT INTO enrichment_cache (provider, kind, lookup_key, version, outcome, answer, "
                             "fetched_at) VALUES ('p', 'company', 'k', 'v', 'failed', '{}', :at)"), {"at": NOW})
    with pytest.raises(IntegrityError), store.sessions.begin() as session:
        session.execute(text("INSERT INTO enrichment_cache (provider, kind, lookup_key, version, outcome, answer, "
                             "fetched_at) VALUES ('p', 'deal', 'k', 'v', 'found', '{}', :at)"), {"at": NOW})


def test_the_cache_refuses_what_it_must_not_keep_naming_the_answer(store: Store) -> None:
    cache = SqlEnrichmentCache(store.sessions)
    failed = CachedAnswer("firmographics", "company", "initech.example", "v", "failed", NOW)  # type: ignore[arg-type]
    with pytest.raises(InvalidStoreValue, match=r"firmographics/company/initech\.example: outcome 'failed'"):
        cache.put_many([failed])
    naive = CachedAnswer("firmographics", "company", "initech.example", "v", "found", NOW.replace(tzinfo=None))
    with pytest.raises(InvalidStoreValue, match="naive datetime"):
        cache.put_many([naive])


def test_purge_forgets_old_answers(store: Store) -> None:
    cache = SqlEnrichmentCache(store.sessions)
    version = company_provider().version()
    cache.put_many([_answer(version, days_old=100, key="old.example"), _answer(version, key="new.example")])

    assert cache.purge(NOW - timedelta(days=90)) == 1
    assert set(cache.get_many([key("old.example"), key("new.example")])) == {key("new.example")}


def test_a_fresh_answer_is_a_hit_and_an_expired_one_is_fetched_again(store: Store) -> None:
    cache = SqlEnrichmentCache(store.sessions)
    settings = enrichment(company_provider(cache_ttl_days=30))
    provider = ScriptedProvider("firmographics", "company", {"initech.example": {"company": "Initech", "employees": 900}})
    cache.put_many([_answer(settings.providers[0].version(), days_old=10)])

    [hit] = enrich([lead(email="ada@initech.example")], settings, {"firmographics": provider}, cache, NOW)
    assert provider.asked == [] and hit.field_updates()["employees"] == 850
    assert hit.lookups[0].source == "cache"

    later = NOW + timedelta(days=25)  # 35 days after the answer: older than its 30-day TTL
    [refetched] = enrich([lead(email="ada@initech.example")], settings, {"firmographics": provider}, cache, later)
    assert provider.asked == ["initech.example"] and refetched.field_updates()["employees"] == 900
    assert refetched.lookups[0].source == "provider"
    assert cache.get_many([KEY])[KEY].fetched_at == later


def test_a_changed_mapping_is_not_served_from_answers_mapped_the_old_way(store: Store) -> None:
    cache = SqlEnrichmentCache(store.sessions)
    old = company_provider()
    cache.put_many([_answer(old.version())])
    new = company_provider(fields={"$.name": "company", "$.metrics.employees": "employees", "$.geo.city": "city"})
    provider = ScriptedProvider("firmographics", "company", {"initech.example": {"company": "Initech", "city": "Austin"}})

    [result] = enrich([lead(email="ada@initech.example")], enrichment(new), {"firmographics": provider}, cache, NOW)

    assert old.version() != new.version() and provider.asked == ["initech.example"]
    assert result.field_updates()["city"] == "Austin"


def test_not_found_lives_its_own_ttl_and_zero_never_reuses() -> None:
    provider = company_provider(cache_ttl_days=30, not_found_ttl_days=7)
    missing = _answer(provider.version(), days_old=8, outcome="not_found")
    assert not is_fresh(missing, provider, NOW)
    assert is_fresh(_answer(provider.version(), days_old=6, outcome="not_found"), provider, NOW)
    assert is_fresh(_answer(provider.version(), days_old=8), provider, NOW)
    assert not is_fresh(_answer(provider.version()), company_provider(cache_ttl_days=0), NOW)


def test_an_unreadable_cache_degrades_to_asking_the_provider() -> None:
    class Down(MemoryEnrichmentCache):
        def get_many(self, keys: Collection[CacheKey]) -> dict[CacheKey, CachedAnswer]:
            raise ConnectionError("store unreachable")

    provider = ScriptedProvider("firmographics", "company", {"initech.example": {"company": "Initech"}})
    [result] = enrich([lead(email="ada@initech.example")], enrichment(company_provider()), {"firmographics": provider},
                      Down(), NOW)

    assert result.field_updates() == {"company": "Initech"} and provider.asked == ["initech.example"]
