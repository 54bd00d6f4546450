"""The shipped providers against the sandbox enrichment server over real HTTP (port 0), faults included."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.config.loader import _load_enrichment
from connector.config.problems import ConfigProblem
from connector.core.models import Person, RecordRef
from connector.enrich.cache import SqlEnrichmentCache
from connector.enrich.providers import HttpJsonProvider, open_providers
from connector.enrich.settings import EnrichmentFile
from connector.enrich.waterfall import enrich, summarize
from connector.store import migrate
from connector.store.db import create_engine_for, session_factory
from crm_sandbox.common import FaultSettings
from crm_sandbox.enrich import SANDBOX, EnrichSandbox
from crm_sandbox.enrich.directory import build_directory
from crm_sandbox.registry import get
from crm_sandbox.seed import SeedData, generate

from .conftest import NOW, FakeClock

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seed() -> SeedData:
    return generate(seed=11, leads=150)


@pytest.fixture
def server(seed: SeedData) -> Iterator[EnrichSandbox]:
    sandbox = EnrichSandbox(seed)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def shipped(server: EnrichSandbox, **changes: Any) -> EnrichmentFile:
    """The shipped enrichment.yaml with the environment the sandbox exports (and provider changes)."""
    problems: list[ConfigProblem] = []
    settings = _load_enrichment(REPO / "config/rules/enrichment.yaml", server.client_settings().env, problems)
    assert problems == [] and settings is not None and settings.enabled
    if not changes:
        return settings
    data = settings.model_dump()
    for provider, original in zip(data["providers"], settings.providers, strict=True):
        provider.update({"auth_value": original.auth_value.get_secret_value(), **changes})
    return EnrichmentFile.model_validate(data)


def ledger(server: EnrichSandbox, calls: int) -> list[tuple[int, str | None]]:
    """(status, fault) of the calls the server recorded, once it recorded ``calls`` of them.

    The middleware records a call after its answer is sent, so a client can read the answer first.
    """
    deadline = time.monotonic() + 5
    while len(server.ledger.entries()) < calls and time.monotonic() < deadline:
        time.sleep(0.01)
    return [(entry.status, entry.fault) for entry in server.ledger.entries()]


def company(server: EnrichSandbox, clock: FakeClock, **changes: Any) -> HttpJsonProvider:
    return HttpJsonProvider(shipped(server, **changes).providers[0], clock=clock, sleep=clock.sleep)


def person(server: EnrichSandbox, clock: FakeClock, **changes: Any) -> HttpJsonProvider:
    return HttpJsonProvider(shipped(server, **changes).providers[1], clock=clock, sleep=clock.sleep)


def test_a_crm_account_is_found_with_the_values_the_server_holds(server: EnrichSandbox, seed: SeedData,
                                                                 clock: FakeClock) -> None:
    account = next(a for a in seed.salesforce["Account"] if a["Domain__c"] == "initech.example")

    answer = company(server, clock).lookup("company", "initech.example")

    profile = server.directory.companies["initech.example"]
    assert answer.outcome == "found"
    assert answer.values == {key: value for key, value in {
        "company": profile.name, "website": "initech.example", "industry": account["Industry"],
        "employees": account["NumberOfEmployees"], "annual_revenue": float(profile.annual_revenue or 0),
        "country": account["BillingCountry"], "state": account["BillingState"], "city": profile.city}.items()
        if value is not None}
    assert ledger(server, 1) == [(200, None)] and server.ledger.totals()["by_kind"] == {"company": 1}


def test_every_account_domain_of_both_crms_is_known(server: EnrichSandbox, seed: SeedData) -> None:
    domains = {a["Domain__c"] for a in seed.salesforce["Account"] if a["Domain__c"]} | {
        c["properties"]["domain"] for c in seed.hubspot["companies"] if c["properties"].get("domain")}
    assert domains <= set(server.directory.companies)
    assert not {"gmail.com", "yahoo.com", "hotmail.com", "outlook.com"} & set(server.directory.companies)
    assert json.dumps(build_directory(seed).as_json()) == json.dumps(server.directory.as_json())  # deterministic


def test_a_lead_missing_its_title_gets_the_title_of_the_same_persons_other_record(
    server: EnrichSandbox, seed: SeedData, clock: FakeClock,
) -> None:
    person_of = seed.truth.person_of()
    titled = {person_of[("hubspot", "contacts", c["id"])]: c["properties"]["jobtitle"] for c in seed.hubspot["contacts"]
              if c["properties"].get("jobtitle")}
    email, title = next((lead["Email"].lower(), titled[cluster]) for lead in seed.salesforce["Lead"]
                        if not lead["Title"] and lead["Email"]
                        and (cluster := person_of[("salesforce", "Lead", lead["Id"])]) in titled)

    answer = person(server, clock).lookup("person", email)

    assert answer.outcome == "found" and answer.values["title"] == title


def test_an_unknown_key_is_not_found_and_a_wrong_key_is_refused(server: EnrichSandbox, clock: FakeClock) -> None:
    assert company(server, clock).lookup("company", "nowhere.example").reason == (
        "firmographics knows no company nowhere.example (HTTP 404)")
    assert person(server, clock).lookup("person", "nobody@nowhere.example").outcome == "not_found"
    refused = company(server, clock, auth_value="Bearer wrong").lookup("company", "initech.example")
    assert refused.reason == (f"authentication refused (HTTP 401) by {server.url.removeprefix('http://')}: check "
                              "Authorization (auth_value of provider firmographics)")


def test_a_429_with_retry_after_is_waited_out_and_retried(server: EnrichSandbox, clock: FakeClock) -> None:
    server.faults.configure(FaultSettings(script=["rate_limit"], retry_after=4))

    answer = company(server, clock).lookup("company", "initech.example")

    assert (answer.outcome, answer.attempts) == ("found", 2)
    assert 4.0 in clock.sleeps
    assert ledger(server, 2) == [(429, "rate_limit"), (200, None)]


def test_503_twice_then_an_answer_and_503_every_time(server: EnrichSandbox, clock: FakeClock) -> None:
    server.faults.configure(FaultSettings(script=["server_error", "server_error"]))
    assert company(server, clock).lookup("company", "initech.example").attempts == 3

    server.faults.configure(FaultSettings(server_error=1.0))
    answer = person(server, clock).lookup("person", "nobody@initech.example")
    assert (answer.outcome, answer.reason) == ("failed", "HTTP 503 after 3 attempts")


@pytest.mark.parametrize(("fault", "reason"), [
    ("invalid_json", "malformed JSON: not JSON ("),
    ("html", "malformed JSON: not JSON ("),
    ("truncated", "malformed JSON: not JSON ("),
    ("error_200", "firmographics answered HTTP 200 with an error at $.error: the lookup failed upstream (injected fault)"),
])
def test_a_malformed_answer_fails_the_lookup_with_the_reason(server: EnrichSandbox, clock: FakeClock, fault: str,
                                                             reason: str) -> None:
    server.faults.configure(FaultSettings(script=[fault]))

    answer = company(server, clock).lookup("company", "initech.example")

    assert answer.outcome == "failed" and (answer.reason or "").startswith(reason), answer.reason
    assert ledger(server, 1)[0] == (200, fault)


def test_a_slow_server_times_out_after_the_attempts(server: EnrichSandbox, clock: FakeClock) -> None:
    server.faults.configure(FaultSettings(slow=1.0, slow_ms=[2000, 2000]))

    answer = company(server, clock, timeout_seconds=0.2).lookup("company", "initech.example")

    assert answer.reason == "timeout after 3 attempts (0.2 s each)"


def test_the_not_found_rate_hides_the_same_keys_every_time(seed: SeedData, clock: FakeClock) -> None:
    sandbox = SANDBOX.start(seed, not_found_rate=0.5)
    try:
        assert isinstance(sandbox, EnrichSandbox)
        source = company(sandbox, clock)
        domains = sorted(sandbox.directory.companies)[:40]
        first = [source.lookup("company", d).outcome for d in domains]
        again = [source.lookup("company", d).outcome for d in domains]
        assert first == again and 8 <= first.count("not_found") <= 32
        sandbox.not_found_rate = 1.0
        assert source.lookup("company", domains[first.index("found")]).outcome == "not_found"
    finally:
        sandbox.stop()


def test_the_waterfall_enriches_seed_people_then_serves_the_second_run_from_the_store(
    server: EnrichSandbox, seed: SeedData, tmp_path: Path, clock: FakeClock,
) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'relay.db'}")
    migrate.upgrade(engine)
    cache = SqlEnrichmentCache(session_factory(engine))
    settings = shipped(server)
    people = [Person(kind="lead", ref=RecordRef(connection="salesforce", object="Lead", crm_id=lead["Id"]),
                     email=lead["Email"], title=lead["Title"], company=lead["Company"], industry=lead["Industry"],
                     email_opt_out=lead["HasOptedOutOfEmail"]) for lead in seed.salesforce["Lead"]]
    providers = open_providers(settings, clock=clock, sleep=clock.sleep)  # 10 requests/s, on a fake clock
    try:
        first = enrich(people, settings, providers, cache, NOW)
        calls = len(ledger(server, sum(summarize(first).provider_calls.values())))
        second = enrich(people, settings, providers, cache, NOW)
    finally:
        for provider in providers.values():
            provider.close()
        engine.dispose()

    summary = summarize(first)
    assert summary.enriched >= len(people) * 0.6, summary
    assert calls == sum(summary.provider_calls.values()) and server.ledger.totals()["calls"] == calls
    assert [r.field_updates() for r in second] == [r.field_updates() for r in first]
    assert summarize(second).provider_calls == {} and summarize(second).cache_hits == summary.provider_calls
    gmail = [r for r, p in zip(first, people, strict=True) if p.email and p.email.endswith("@gmail.com")]
    assert gmail and all(r.manual_research and "free-mail domain gmail.com: manual research" in r.reasons()
                         for r in gmail)
    opted_out = [r for r, p in zip(first, people, strict=True) if p.email_opt_out]
    assert opted_out and all(r.values == () and r.reasons()[0].startswith("no consent") for r in opted_out)
    stamped = next(r for r in first if r.enriched).values[0]
    assert stamped.provider in ("firmographics", "person_data") and stamped.fetched_at == NOW


def test_the_kind_is_registered_with_its_port_options_and_state_file(seed: SeedData, tmp_path: Path) -> None:
    assert get("enrich") is SANDBOX and SANDBOX.default_port == 8726
    assert [o.name for o in SANDBOX.options] == ["api_key", "not_found_rate"]
    state = tmp_path / "enrich.json"
    sandbox = SANDBOX.start(seed, state_file=state, api_key="k2")
    try:
        settings = sandbox.client_settings()
        assert settings.env == {"RELAY_ENRICH_ENABLED": "true", "RELAY_ENRICH_URL": sandbox.url,
                                "RELAY_ENRICH_API_KEY": "k2"}
        reply = httpx.get(f"{sandbox.url}/v2/person", params={"email": "x@initech.example"}, headers={"X-Api-Key": "k2"})
        assert reply.status_code == 404 and reply.json()["error"]["type"] == "not_found"
        assert httpx.get(f"{sandbox.url}/__sandbox/ledger").json()["server"] == "enrich"
    finally:
        sandbox.stop()
    saved = json.loads(state.read_text(encoding="utf-8"))
    saved["companies"]["initech.example"]["name"] = "Initech (edited)"
    state.write_text(json.dumps(saved), encoding="utf-8")
    reloaded = EnrichSandbox(None, state_file=state)
    assert reloaded.directory.companies["initech.example"].name == "Initech (edited)"
    with pytest.raises(ValueError, match="not_found_rate must be between 0 and 1, got 2"):
        EnrichSandbox(seed, not_found_rate=2)
