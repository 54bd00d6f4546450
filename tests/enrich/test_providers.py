"""The HTTP JSON provider against mocked APIs (respx): every path an answer can take."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus

import httpx
import pytest
import respx

from connector.enrich.providers import HttpJsonProvider, TokenBucket, convert, retry_after_seconds
from connector.enrich.settings import ProviderSettings

from .conftest import FakeClock, company_provider, person_provider

INITECH = {
    "name": "Initech", "domain": "initech.example", "category": {"industry": "Software"},
    "metrics": {"employees": 850, "annualRevenue": 153000000}, "geo": {"countryCode": "US"}, "tech": ["aws"],
}
COMPANY = "https://company.example.com/v2/companies/find"


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


def provider(settings: ProviderSettings, clock: FakeClock) -> HttpJsonProvider:
    return HttpJsonProvider(settings, clock=clock, sleep=clock.sleep)


def test_a_found_company_is_mapped_to_typed_canonical_fields(api: respx.MockRouter, clock: FakeClock) -> None:
    route = api.get(COMPANY, params={"domain": "initech.example"}).respond(json=INITECH)

    answer = provider(company_provider(), clock).lookup("company", "initech.example")

    assert answer.outcome == "found"
    assert answer.values == {"company": "Initech", "industry": "Software", "employees": 850,
                             "annual_revenue": 153000000.0, "country": "US"}
    assert isinstance(answer.values["annual_revenue"], float) and answer.attempts == 1
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer sk_test"
    assert request.headers["Accept"] == "application/json"


def test_the_email_is_url_encoded_and_the_key_goes_in_its_own_header(api: respx.MockRouter, clock: FakeClock) -> None:
    route = api.get("https://person.example.com/v5/person/enrich").respond(
        json={"status": 200, "data": {"job_title": "VP of Sales", "mobile_phone": "+14155550100"}})

    answer = provider(person_provider(), clock).lookup("person", "ada+work@initech.example")

    assert answer.values == {"title": "VP of Sales", "phone": "+14155550100"}
    request = route.calls.last.request
    assert request.url.query == b"email=ada%2Bwork@initech.example"
    assert request.headers["X-Api-Key"] == "pdl_test" and "Authorization" not in request.headers


def test_a_post_provider_sends_its_body_template(api: respx.MockRouter, clock: FakeClock) -> None:
    settings = person_provider(url="https://person.example.com/v5/person/enrich", method="POST",
                               body={"email": "{email}", "min_likelihood": "6"})
    route = api.post("https://person.example.com/v5/person/enrich").respond(json={"data": {"job_title": "CTO"}})

    assert provider(settings, clock).lookup("person", "ada@initech.example").values == {"title": "CTO"}
    assert route.calls.last.request.read() == b'{"email":"ada@initech.example","min_likelihood":"6"}'


def test_404_is_not_found_and_may_be_cached(api: respx.MockRouter, clock: FakeClock) -> None:
    api.get(COMPANY).respond(HTTPStatus.NOT_FOUND, json={"error": {"type": "unknown_record", "message": "Unknown"}})

    answer = provider(company_provider(), clock).lookup("company", "nowhere.example")

    assert (answer.outcome, answer.cacheable, answer.attempts) == ("not_found", True, 1)
    assert answer.reason == "firmographics knows no company nowhere.example (HTTP 404)"


@pytest.mark.parametrize("body", [b"", b"null", b"{}", b'{"name": null, "metrics": {}}'])
def test_an_empty_answer_is_not_found(api: respx.MockRouter, clock: FakeClock, body: bytes) -> None:
    api.get(COMPANY).respond(200, content=body, headers={"Content-Type": "application/json"})

    answer = provider(company_provider(), clock).lookup("company", "quiet.example")

    assert (answer.outcome, answer.cacheable) == ("not_found", True)
    assert answer.reason in ("firmographics answered an empty body for company quiet.example",
                             "firmographics answered for company quiet.example without any mapped field")


def test_202_still_looking_is_not_found_and_not_cached(api: respx.MockRouter, clock: FakeClock) -> None:
    api.get(COMPANY).respond(HTTPStatus.ACCEPTED)

    answer = provider(company_provider(), clock).lookup("company", "new.example")

    assert (answer.outcome, answer.cacheable) == ("not_found", False)
    assert "still looking new.example up (HTTP 202)" in (answer.reason or "")


def test_429_waits_the_retry_after_it_was_given_then_succeeds(api: respx.MockRouter, clock: FakeClock) -> None:
    route = api.get(COMPANY).mock(side_effect=[
        httpx.Response(HTTPStatus.TOO_MANY_REQUESTS, headers={"Retry-After": "7"}, json={"error": "slow down"}),
        httpx.Response(200, json=INITECH),
    ])

    answer = provider(company_provider(), clock).lookup("company", "initech.example")

    assert (answer.outcome, answer.attempts, route.call_count) == ("found", 2, 2)
    assert 7.0 in clock.sleeps  # the wait the API asked for, not a backoff of its own


def test_a_retry_after_given_as_an_http_date_is_honoured(api: respx.MockRouter, clock: FakeClock) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    api.get(COMPANY).mock(side_effect=[
        httpx.Response(HTTPStatus.TOO_MANY_REQUESTS, headers={"Retry-After": later}),
        httpx.Response(200, json=INITECH),
    ])

    assert provider(company_provider(), clock).lookup("company", "initech.example").outcome == "found"
    assert any(15 <= s <= 20 for s in clock.sleeps), clock.sleeps


def test_a_retry_after_longer_than_allowed_fails_at_once_without_waiting(api: respx.MockRouter, clock: FakeClock) -> None:
    route = api.get(COMPANY).respond(HTTPStatus.TOO_MANY_REQUESTS, headers={"Retry-After": "3600"})

    answer = provider(company_provider(), clock).lookup("company", "initech.example")

    assert (answer.outcome, answer.cacheable, route.call_count) == ("failed", False, 1)
    assert answer.reason == ("rate limited (HTTP 429): the provider asked to wait 3600 s, more than "
                             "max_retry_after_seconds (30)")
    assert sum(clock.sleeps) < 1


def test_429_every_time_fails_after_the_attempts(api: respx.MockRouter, clock: FakeClock) -> None:
    route = api.get(COMPANY).respond(HTTPStatus.TOO_MANY_REQUESTS, headers={"Retry-After": "2"})

    answer = provider(company_provider(max_attempts=4), clock).lookup("company", "initech.example")

    assert (answer.outcome, route.call_count) == ("failed", 4)
    assert answer.reason == "rate limited (HTTP 429) after 4 attempts"
    assert clock.sleeps.count(2.0) == 3


def test_a_timeout_every_time_fails_with_the_attempts_and_the_timeout(api: respx.MockRouter, clock: FakeClock) -> None:
    route = api.get(COMPANY).mock(side_effect=httpx.ReadTimeout("timed out"))

    answer = provider(company_provider(timeout_seconds=5), clock).lookup("company", "initech.example")

    assert (answer.outcome, answer.attempts, route.call_count) == ("failed", 3, 3)
    assert answer.reason == "timeout after 3 attempts (5 s each)"
    backoffs = [s for s in clock.sleeps if s > 0]
    assert len(backoffs) == 2 and 0.25 <= backoffs[0] <= 0.5 and 0.5 <= backoffs[1] <= 1.0  # doubling, jittered


def test_a_timeout_then_an_answer_is_found(api: respx.MockRouter, clock: FakeClock) -> None:
    api.get(COMPANY).mock(side_effect=[httpx.ConnectTimeout("no"), httpx.Response(200, json=INITECH)])

    answer = provider(company_provider(), clock).lookup("company", "initech.example")

    assert (answer.outcome, answer.attempts) == ("found", 2)


def test_5xx_then_success_is_found(api: respx.MockRouter, clock: FakeClock) -> None:
    route = api.get(COMPANY).mock(side_effect=[httpx.Response(503), httpx.Response(502), httpx.Response(200, json=INITECH)])

    answer = provider(company_provider(), clock).lookup("company", "initech.example")

    assert (answer.outcome, answer.attempts, route.call_count) == ("found", 3, 3)
    assert answer.values["company"] == "Initech"


def test_5xx_every_time_fails_naming_the_status(api: respx.MockRouter, clock: FakeClock) -> None:
    api.get(COMPANY).respond(503)

    answer = provider(company_provider(), clock).lookup("company", "initech.example")

    assert answer.reason == "HTTP 503 after 3 attempts" and not answer.cacheable


def test_a_dropped_connection_is_retried_then_named(api: respx.MockRouter, clock: FakeClock) -> None:
    api.get(COMPANY).mock(side_effect=httpx.ConnectError("Connection refused"))

    answer = provider(company_provider(max_attempts=2), clock).lookup("company", "initech.example")

    assert answer.reason == "connection failed (ConnectError: Connection refused) after 2 attempts"


@pytest.mark.parametrize(("status", "reason"), [
    (401, "authentication refused (HTTP 401) by company.example.com: check Authorization "
          "(auth_value of provider firmographics)"),
    (403, "authentication refused (HTTP 403) by company.example.com: check Authorization "
          "(auth_value of provider firmographics)"),
    (422, "HTTP 422 from company.example.com: domain is required"),
])
def test_a_refusal_is_not_retried(api: respx.MockRouter, clock: FakeClock, status: int, reason: str) -> None:
    route = api.get(COMPANY).respond(status, text="domain is required")

    answer = provider(company_provider(), clock).lookup("company", "initech.example")

    assert (answer.outcome, answer.reason, route.call_count) == ("failed", reason, 1)


def test_a_body_that_is_not_json_fails_as_malformed(api: respx.MockRouter, clock: FakeClock) -> None:
    route = api.get(COMPANY).respond(200, text="<!DOCTYPE html><html><h1>Down for maintenance</h1></html>")

    answer = provider(company_provider(), clock).lookup("company", "initech.example")

    assert answer.outcome == "failed" and route.call_count == 1
    assert answer.reason is not None and answer.reason.startswith("malformed JSON: not JSON (")
    assert "the body starts '<!DOCTYPE html><html><h1>Down for maintenance</h1></html>'" in answer.reason


def test_a_truncated_body_fails_as_malformed(api: respx.MockRouter, clock: FakeClock) -> None:
    api.get(COMPANY).respond(200, content=b'{"name": "Initech", "metrics": {"empl', headers={"Content-Type": "application/json"})

    answer = provider(company_provider(), clock).lookup("company", "initech.example")

    assert answer.reason is not None and answer.reason.startswith("malformed JSON: not JSON (Unterminated string")


@pytest.mark.parametrize(("body", "reason"), [
    ({"name": "Initech", "metrics": [850]}, "malformed JSON at $.metrics: expected an object, got a list of 1"),
    ({"name": "Initech", "metrics": {"employees": "lots"}}, "malformed JSON at $.metrics.employees: expected a number, got 'lots'"),
    ({"name": "Initech", "metrics": {"employees": 85.5}}, "malformed JSON at $.metrics.employees: expected a whole number, got 85.5"),
    ({"name": {"first": "Init"}}, "malformed JSON at $.name: expected a single value, got an object"),
    ([INITECH], "malformed JSON at $: expected an object, got list"),
])
def test_an_answer_of_the_wrong_shape_names_where(api: respx.MockRouter, clock: FakeClock, body: object, reason: str) -> None:
    api.get(COMPANY).respond(200, json=body)

    answer = provider(company_provider(), clock).lookup("company", "initech.example")

    assert (answer.outcome, answer.reason) == ("failed", reason)


def test_an_error_object_in_a_200_answer_fails_with_its_message(api: respx.MockRouter, clock: FakeClock) -> None:
    api.get(COMPANY).respond(200, json={"error": {"type": "api_error", "message": "lookup failed upstream"}})

    answer = provider(company_provider(), clock).lookup("company", "initech.example")

    assert answer.reason == "firmographics answered HTTP 200 with an error at $.error: lookup failed upstream"


def test_numbers_given_as_text_are_read(api: respx.MockRouter, clock: FakeClock) -> None:
    api.get(COMPANY).respond(200, json={"name": " Initech  Inc. ", "metrics": {"employees": "1,200", "annualRevenue": "2.5e6"}})

    values = provider(company_provider(), clock).lookup("company", "initech.example").values

    assert values == {"company": "Initech Inc.", "employees": 1200, "annual_revenue": 2500000.0}


def test_the_first_of_several_paths_to_one_field_with_a_value_wins(api: respx.MockRouter, clock: FakeClock) -> None:
    settings = company_provider(fields={"$.legalName": "company", "$.name": "company"})
    api.get(COMPANY).respond(200, json={"legalName": None, "name": "Initech"})

    assert provider(settings, clock).lookup("company", "initech.example").values == {"company": "Initech"}


def test_an_outage_pauses_the_provider_so_later_lookups_fail_at_once(api: respx.MockRouter, clock: FakeClock) -> None:
    route = api.get(COMPANY).respond(503)
    source = provider(company_provider(failures_before_pause=2, pause_seconds=60, max_attempts=2), clock)

    first = source.lookup("company", "a.example")
    second = source.lookup("company", "b.example")
    paused = source.lookup("company", "c.example")

    assert [first.reason, second.reason] == ["HTTP 503 after 2 attempts"] * 2
    assert route.call_count == 4 and paused.attempts == 0
    assert paused.reason is not None and paused.reason.startswith("provider firmographics is paused for 6")
    assert paused.reason.endswith("after 2 failed lookups in a row (last: HTTP 503 after 2 attempts)")
    clock.now += 61
    route.respond(200, json=INITECH)
    assert source.lookup("company", "c.example").outcome == "found"


def test_the_token_bucket_spaces_requests_at_the_configured_rate(api: respx.MockRouter, clock: FakeClock) -> None:
    api.get(COMPANY).respond(200, json=INITECH)
    source = provider(company_provider(rate_limit_per_second=4, burst=2), clock)

    for _ in range(6):
        source.lookup("company", "initech.example")

    assert clock.sleeps == [0.25, 0.25, 0.25, 0.25]  # two at once (the burst), then one every 1/4 s
    assert source.requests == 6


def test_a_token_bucket_refills_while_idle_up_to_its_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, 3, clock=clock, sleep=clock.sleep)
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire() == 0.5
    clock.now += 100
    assert [bucket.acquire() for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]


def test_a_lookup_of_the_other_kind_is_refused_without_a_call(api: respx.MockRouter, clock: FakeClock) -> None:
    answer = provider(company_provider(), clock).lookup("person", "ada@initech.example")

    assert answer.reason == "provider firmographics answers company lookups, not person"
    assert not api.calls


def test_retry_after_parsing() -> None:
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Mon, 07 Dec 2026 09:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Mon, 07 Dec 2026 08:00:00 GMT", now) == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


def test_conversion_to_each_field_type() -> None:
    assert convert("  ", "str", "$.a") is None and convert(42, "str", "$.a") == "42"
    assert convert("true", "bool", "$.a") is True
    assert convert(12.0, "int", "$.a") == 12
    with pytest.raises(ValueError, match=r"malformed JSON at \$.a: expected a finite number, got 'nan'"):
        convert("nan", "float", "$.a")
    with pytest.raises(ValueError, match="expected text, got a boolean"):
        convert(True, "str", "$.a")
