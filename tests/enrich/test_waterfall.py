"""The waterfall: who is asked about whom, which values are appended, and why the rest is not."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connector.enrich.cache import CachedAnswer, MemoryEnrichmentCache
from connector.enrich.providers import ProviderAnswer
from connector.enrich.settings import LookupKind
from connector.enrich.waterfall import enrich, summarize

from .conftest import NOW, ScriptedProvider, company_provider, enrichment, lead, person_provider

INITECH = {"company": "Initech", "industry": "Software", "employees": 850}
ADA = {"title": "VP of Sales", "phone": "+14155550100", "industry": "Computer Software", "company": "Initech LLC"}


def providers(**extra: ScriptedProvider) -> dict[str, ScriptedProvider]:
    found = {
        "firmographics": ScriptedProvider("firmographics", "company", {"initech.example": dict(INITECH)}),
        "person_data": ScriptedProvider("person_data", "person", {"ada@initech.example": dict(ADA)}),
    }
    found.update(extra)
    return found


def test_company_then_person_data_fill_the_empty_fields_with_provenance() -> None:
    settings = enrichment(company_provider(), person_provider())
    ada = lead(email="Ada@Initech.example", first_name="Ada", company="initech")

    [result] = enrich([ada], settings, providers(), MemoryEnrichmentCache(), NOW)

    assert result.person == ada.ref and result.enriched and not result.manual_research
    assert result.field_updates() == {"industry": "Software", "employees": 850, "title": "VP of Sales",
                                      "phone": "+14155550100"}  # company was set: a rep's value is kept
    by_field = {v.field: v for v in result.values}
    assert (by_field["industry"].provider, by_field["industry"].key, by_field["industry"].fetched_at) == (
        "firmographics", "initech.example", NOW)
    assert by_field["title"].stamp() == "person_data 2026-12-07" and by_field["title"].previous is None
    assert result.provenance()["employees"] == {"provider": "firmographics", "key": "initech.example",
                                                "fetched_at": "2026-12-07T09:00:00+00:00"}
    assert result.apply(ada).title == "VP of Sales" and result.apply(ada).company == "initech"
    assert result.skipped == ()


def test_overwrite_replaces_different_values_and_records_what_they_were() -> None:
    settings = enrichment(company_provider(), overwrite=True)
    ada = lead(email="ada@initech.example", company="Initrode", industry="SOFTWARE", employees=10)

    [result] = enrich([ada], settings, providers(), MemoryEnrichmentCache(), NOW)

    # industry differs only in case: not a change worth writing (hygiene owns case)
    assert result.field_updates() == {"company": "Initech", "employees": 850}
    assert {v.field: v.previous for v in result.values} == {"company": "Initrode", "employees": 10}


def test_without_overwrite_nothing_set_is_touched_and_a_complete_person_costs_no_call() -> None:
    settings = enrichment(company_provider())
    sources = providers()
    full = lead(email="ada@initech.example", company="X", industry="Y", employees=1, annual_revenue=2.0, country="US")

    [result] = enrich([full], settings, sources, MemoryEnrichmentCache(), NOW)

    assert result.values == () and sources["firmographics"].asked == []
    assert result.reasons() == ["nothing to fill: every field the providers map is already set"]


def test_waterfall_stops_at_the_first_provider_of_a_kind_that_finds_fill_gaps_goes_on() -> None:
    second = ScriptedProvider("backup", "company", {"initech.example": {"employees": 900, "annual_revenue": 1e8}})
    settings_file = [company_provider(), company_provider("backup")]
    ada = lead(email="ada@initech.example")

    sources = providers(backup=second)
    [waterfall] = enrich([ada], enrichment(*settings_file, mode="waterfall"), sources, MemoryEnrichmentCache(), NOW)
    assert second.asked == [] and "annual_revenue" not in waterfall.field_updates()

    sources = providers(backup=second)
    [gaps] = enrich([ada], enrichment(*settings_file, mode="fill_gaps"), sources, MemoryEnrichmentCache(), NOW)
    assert second.asked == ["initech.example"]
    assert gaps.field_updates()["employees"] == 850  # the first provider in order wins per field
    assert {v.field: v.provider for v in gaps.values}["annual_revenue"] == "backup"


def test_waterfall_asks_the_next_provider_when_the_first_finds_nothing_or_fails() -> None:
    first = ScriptedProvider("firmographics", "company", failing={"initech.example": "timeout after 3 attempts (5 s each)"})
    second = ScriptedProvider("backup", "company", {"initech.example": dict(INITECH)})
    settings = enrichment(company_provider(), company_provider("backup"))

    [result] = enrich([lead(email="ada@initech.example")], settings, {"firmographics": first, "backup": second},
                      MemoryEnrichmentCache(), NOW)

    assert {v.provider for v in result.values} == {"backup"}
    assert result.reasons() == ["provider firmographics failed: timeout after 3 attempts (5 s each)"]


def test_a_free_mail_lead_is_never_sent_to_company_lookups_and_goes_to_manual_research() -> None:
    sources = providers()
    settings = enrichment(company_provider(), person_provider())
    gmail = lead(email="ada.lovelace@gmail.com", website="https://www.initech.example")

    [result] = enrich([gmail], settings, sources, MemoryEnrichmentCache(), NOW)

    assert sources["firmographics"].asked == [] and result.manual_research
    assert result.reasons()[0] == "free-mail domain gmail.com: manual research"
    assert sources["person_data"].asked == ["ada.lovelace@gmail.com"]  # a person lookup may take a personal address


def test_a_disposable_address_is_sent_nowhere() -> None:
    sources = providers()
    [result] = enrich([lead(email="ada@mailinator.com")], enrichment(company_provider(), person_provider()), sources,
                      MemoryEnrichmentCache(), NOW)

    assert sources["firmographics"].asked == sources["person_data"].asked == []
    assert result.reasons() == ["disposable email domain mailinator.com: not sent to any provider"]


def test_the_company_is_looked_up_by_the_registered_domain_or_else_the_website() -> None:
    sources = providers()
    people = [lead("1", email="ada@eu.initech.example"), lead("2", website="https://www.initech.example/about"),
              lead("3")]

    results = enrich(people, enrichment(company_provider()), sources, MemoryEnrichmentCache(), NOW)

    assert sources["firmographics"].asked == ["initech.example"]  # once for both people
    assert [r.enriched for r in results] == [True, True, False]
    assert results[2].reasons() == ["no work email or website to look the company up by"]


def test_no_consent_means_no_lookup_at_all() -> None:
    sources = providers()
    settings = enrichment(company_provider(), person_provider())
    people = [lead("1", email="ada@initech.example", email_opt_out=True),
              lead("2", email="bob@initech.example", email_opt_out=False),
              lead("3", email="cy@initech.example")]

    results = enrich(people, settings, sources, MemoryEnrichmentCache(), NOW)

    assert results[0].values == () and results[0].reasons() == [
        "no consent: email_opt_out is true (enrichment needs false or empty)"]
    assert results[1].enriched and results[2].enriched
    assert "ada@initech.example" not in sources["person_data"].asked


def test_a_custom_consent_rule_on_another_field() -> None:
    settings = enrichment(company_provider(), consent={"require": {"lead_source": ["Web", "Event"]}})
    people = [lead("1", email="ada@initech.example", lead_source="Purchased List"),
              lead("2", email="bob@initech.example", lead_source="Web")]

    results = enrich(people, settings, providers(), MemoryEnrichmentCache(), NOW)

    assert results[0].reasons() == ['no consent: lead_source is "Purchased List" (enrichment needs "Web" or "Event")']
    assert results[1].enriched


def test_people_sharing_a_domain_cost_one_lookup_and_one_cache_entry() -> None:
    sources = providers()
    cache = MemoryEnrichmentCache()
    people = [lead(str(i), email=f"person{i}@initech.example") for i in range(25)]

    results = enrich(people, enrichment(company_provider()), sources, cache, NOW)

    assert sources["firmographics"].asked == ["initech.example"] and len(cache) == 1
    assert all(r.field_updates()["company"] == "Initech" for r in results)
    assert summarize(results).provider_calls == {"firmographics": 1}


def test_a_provider_that_raises_is_a_failed_lookup_not_a_failed_batch() -> None:
    class Broken:
        name = "firmographics"

        def lookup(self, kind: LookupKind, key: str) -> ProviderAnswer:
            raise RuntimeError("socket closed")

    [result] = enrich([lead(email="ada@initech.example")], enrichment(company_provider()), {"firmographics": Broken()},
                      MemoryEnrichmentCache(), NOW)

    assert result.values == () and result.reasons() == ["provider firmographics failed: RuntimeError: socket closed"]


def test_failures_are_not_cached_and_a_missing_provider_is_named() -> None:
    cache = MemoryEnrichmentCache()
    failing = ScriptedProvider("firmographics", "company", failing={"initech.example": "HTTP 503 after 3 attempts"})

    enrich([lead(email="ada@initech.example")], enrichment(company_provider()), {"firmographics": failing}, cache, NOW)
    assert len(cache) == 0

    [result] = enrich([lead(email="ada@initech.example")], enrichment(company_provider()), {}, cache, NOW)
    assert result.reasons() == ["provider firmographics is not available"]


def test_a_cached_answer_is_reused_while_fresh_and_asked_again_once_stale() -> None:
    settings = enrichment(company_provider(cache_ttl_days=30))
    version = settings.providers[0].version()
    cached = CachedAnswer("firmographics", "company", "initech.example", version, "found", NOW - timedelta(days=29),
                          {"company": "Initech (cached)"})
    cache = MemoryEnrichmentCache([cached])
    sources = providers()

    [fresh] = enrich([lead(email="ada@initech.example")], settings, sources, cache, NOW)
    assert sources["firmographics"].asked == [] and fresh.field_updates() == {"company": "Initech (cached)"}
    assert fresh.values[0].fetched_at == NOW - timedelta(days=29)  # provenance keeps the answer's own date
    assert [(lk.source, lk.outcome) for lk in fresh.lookups] == [("cache", "found")]

    [stale] = enrich([lead(email="ada@initech.example")], settings, sources, cache, NOW + timedelta(days=2))
    assert sources["firmographics"].asked == ["initech.example"] and stale.field_updates()["company"] == "Initech"
    assert cache.get_many([("firmographics", "company", "initech.example")])[
        ("firmographics", "company", "initech.example")].fetched_at == NOW + timedelta(days=2)


def test_disabled_enrichment_asks_nobody() -> None:
    sources = providers()
    [result] = enrich([lead(email="ada@initech.example")], enrichment(company_provider(), enabled=False), sources,
                      MemoryEnrichmentCache(), NOW)

    assert result.reasons() == ["enrichment is disabled (enrichment.yaml enabled: false)"]
    assert sources["firmographics"].asked == []


def test_the_summary_counts_coverage_skips_and_cache_hits() -> None:
    settings = enrichment(company_provider(), person_provider())
    cache = MemoryEnrichmentCache()
    people: list[Any] = [lead("1", email="ada@initech.example"), lead("2", email="x@gmail.com"),
                         lead("3", email="z@unknown.example", email_opt_out=True)]
    enrich(people[:1], settings, providers(), cache, NOW)

    summary = summarize(enrich(people, settings, providers(), cache, NOW))

    assert (summary.people, summary.enriched, summary.manual_research) == (3, 1, 1)
    assert summary.coverage == 1 / 3
    assert summary.skipped == {"free_mail": 1, "not_found": 1, "no_consent": 1}
    assert summary.cache_hits == {"firmographics": 1, "person_data": 1}
    assert summary.provider_calls == {"person_data": 1}
    assert summary.values["title"] == 1
