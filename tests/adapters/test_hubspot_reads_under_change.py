"""HubSpot reads while the portal keeps changing, and answers that are not what the API promises.

Over real HTTP against the sandbox portal (through a rewriting proxy, :mod:`._tamper`, for
answers the sandbox cannot give), plus a property test against a live in-memory search.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.adapters._paging import PagingStuckError
from connector.adapters.base import Cursor
from connector.adapters.errors import FatalError, RetriableError
from connector.adapters.retry import RetryPolicy
from connector.crms import crm_unit
from connector.crms.hubspot.adapter import HubSpotAdapter
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.seed import SeedData

from ._sandbox_helpers import (
    CONTACT_FIELDS,
    ManualClock,
    Waits,
    contacts_checkpoint,
    new_contacts,
    record_ids,
)
from ._tamper import Tamper, serve

FIELDS = CONTACT_FIELDS
TOKEN = {"Authorization": "Bearer sandbox-token"}





def edit(url: str, contact_id: str, firstname: str) -> None:
    """A rep edits a contact in HubSpot (the portal's REST API, not Relay's adapter)."""
    answer = requests.patch(f"{url}/crm/v3/objects/contacts/{contact_id}", json={"properties": {"firstname": firstname}},
                            headers=TOKEN, timeout=10)
    answer.raise_for_status()


@pytest.fixture
def tampered(seed: SeedData, clock: ManualClock) -> Iterator[tuple[Tamper, str]]:
    sandbox = HubSpotSandbox(seed, clock=clock.ms, search_per_second=10_000, ten_second_limit=100_000)
    tamper, server = serve(sandbox.app)
    try:
        yield tamper, server.url
    finally:
        server.stop()


@pytest.fixture
def proxied(tampered: tuple[Tamper, str], policy: RetryPolicy, clock: ManualClock) -> HubSpotAdapter:
    return HubSpotAdapter("hubspot", tampered[1], "sandbox-token", retry=policy, search_overlap=timedelta(0),
                          searches_per_second=10_000, clock=clock, read_lag=timedelta(0))


# --- defect 1: a change made during a read is never lost ----------------------------------------


@pytest.mark.parametrize("batch", [7, 10, 25])
def test_edits_during_a_search_read_are_all_delivered(
    hubspot: HubSpotAdapter, hs_url: str, clock: ManualClock, batch: int
) -> None:
    before = contacts_checkpoint(hubspot)
    created: list[str] = []
    for n in range(4):  # four timestamps, `batch` contacts each: ties inside and across pages
        clock.advance(seconds=1)
        created += [str(r.crm_id) for r in hubspot.write(new_contacts(batch, f"b{n}-"))]

    reading = hubspot.read("contacts", FIELDS, before, page_size=10)
    first = next(reading)
    contact_a = first.records[0]["id"]  # read already
    contact_b = next(i for i in reversed(created) if i not in record_ids([first]))  # not read yet
    clock.advance(seconds=1)
    edit(hs_url, contact_a, "edited after its page was read")
    clock.advance(milliseconds=50)
    edit(hs_url, contact_b, "edited before its page was read")
    pages = [first, *reading]

    cursors = [p.cursor for p in pages]
    assert all(c is not None for c in cursors) and cursors == sorted(c for c in cursors if c is not None)
    last = cursors[-1]
    assert last is not None
    again = {r["id"]: r["firstname"] for p in hubspot.read("contacts", FIELDS, Cursor.from_json(last.to_json()),
                                                           page_size=10) for r in p.records}
    assert again.get(contact_a) == "edited after its page was read"
    assert again.get(contact_b) == "edited before its page was read"
    missing = set(created) - set(record_ids(pages)) - set(again)
    assert missing == set(), f"never delivered: {sorted(missing)}"


def test_a_full_read_clamps_its_checkpoint_to_its_start(hubspot: HubSpotAdapter, hs_url: str,
                                                        clock: ManualClock) -> None:
    started = clock()
    reading = hubspot.read("contacts", FIELDS, None, page_size=10)
    first = next(reading)
    clock.advance(seconds=2)
    edit(hs_url, first.records[0]["id"], "edited mid full read")
    pages = [first, *reading]
    cursor = pages[-1].cursor
    assert cursor is not None and cursor.last_modified <= started
    assert first.records[0]["id"] in record_ids(hubspot.read("contacts", FIELDS, cursor))


def test_a_change_within_the_read_lag_waits_for_the_next_read(hs_url: str, policy: RetryPolicy,
                                                               clock: ManualClock) -> None:
    adapter = HubSpotAdapter("hs", hs_url, "sandbox-token", retry=policy, search_overlap=timedelta(0),
                             searches_per_second=10_000, clock=clock, read_lag=timedelta(seconds=30))
    before = contacts_checkpoint(adapter)
    fresh = str(adapter.write(new_contacts(1, "fresh"))[0].crm_id)
    assert fresh not in record_ids(adapter.read("contacts", FIELDS, before))
    clock.advance(seconds=31)
    assert fresh in record_ids(adapter.read("contacts", FIELDS, before))


class LiveSearch:
    """A live search: records change between page reads; sorted by one property, offsets over the live set."""

    def __init__(self, count: int, stamps: list[int]) -> None:
        self.now = 1_700_000_000_000
        self.rows = {str(100 + i): self.now + stamps[i % len(stamps)] for i in range(count)}
        self.now += max(stamps) + 1

    def clock(self) -> datetime:
        return datetime.fromtimestamp(self.now / 1000, tz=UTC)

    def edit(self, contact_id: str) -> None:
        self.now += 1
        self.rows[contact_id] = self.now

    def do_search(self, kind: str, public_object_search_request: dict[str, Any], **_: Any) -> Any:
        body = public_object_search_request
        ops = {"GTE": int.__ge__, "LTE": int.__le__, "GT": int.__gt__, "EQ": int.__eq__}

        def value(rid: str, name: str) -> int:
            return int(rid) if name == "hs_object_id" else self.rows[rid]

        hits = [rid for rid in sorted(self.rows, key=int)
                if all(ops[f["operator"]](value(rid, f["propertyName"]), int(f["value"]))
                       for f in body["filterGroups"][0]["filters"])]
        hits.sort(key=lambda rid: value(rid, body["sorts"][0]["propertyName"]))
        start = int(body.get("after") or 0)
        page = hits[start : start + body["limit"]]
        answer: dict[str, Any] = {"total": len(hits), "results": [
            {"id": rid, "properties": {"hs_lastmodifieddate": str(self.rows[rid])}, "archived": False} for rid in page]}
        if start + body["limit"] < len(hits):
            answer["paging"] = {"next": {"after": str(start + body["limit"])}}
        return type("Answer", (), {"data": json.dumps(answer).encode(), "status": 200})()


@settings(max_examples=80, deadline=None)
@given(
    stamps=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=6),
    count=st.integers(min_value=1, max_value=40),
    size=st.integers(min_value=2, max_value=8),
    edits=st.lists(st.lists(st.integers(min_value=0, max_value=39), max_size=3), max_size=12),
)
def test_any_interleaving_of_edits_and_pages_delivers_every_edit(
    stamps: list[int], count: int, size: int, edits: list[list[int]]
) -> None:
    search = LiveSearch(count, stamps)
    adapter = HubSpotAdapter("hs", "http://127.0.0.1:9", "token", search_overlap=timedelta(0),
                             searches_per_second=1e9, clock=search.clock, read_lag=timedelta(0))
    adapter._search = search
    start = Cursor(datetime.fromtimestamp((search.now - 10_000) / 1000, tz=UTC), "0")
    delivered: dict[str, int] = {}  # id -> newest stamp delivered
    wanted = dict(search.rows)
    last = start
    for number, page in enumerate(adapter.read("contacts", [], start, page_size=size)):
        for row in page.records:
            delivered[row["id"]] = max(delivered.get(row["id"], 0), int(row["hs_lastmodifieddate"]))
        if page.cursor is not None:
            assert page.cursor >= last
            last = page.cursor
        for index in (edits[number] if number < len(edits) else []):
            rid = str(100 + index % count)
            search.edit(rid)
            wanted[rid] = search.rows[rid]
    search.now += 1
    for page in adapter.read("contacts", [], last, page_size=size):
        for row in page.records:
            delivered[row["id"]] = max(delivered.get(row["id"], 0), int(row["hs_lastmodifieddate"]))
    lost = {rid: stamp for rid, stamp in wanted.items() if delivered.get(rid, 0) < stamp}
    assert lost == {}, f"edits never delivered: {lost}"


# --- defect 2: a page link that repeats is not followed forever -----------------------------------


def _stuck_after(answer: Any, target: str) -> Any:
    if answer.get("paging"):
        answer["paging"]["next"]["after"] = "1"
    return answer


@pytest.mark.parametrize(("pattern", "read", "named"), [
    (r"/crm/v3/objects/contacts\?(?!.*archived=[Tt]rue)", lambda a: list(a.read("contacts", FIELDS, None, page_size=5)),
     "list contacts"),
    (r"/crm/v3/owners", lambda a: a.owners(), "list owners"),
    (r"archived=[Tt]rue", lambda a: a.read_deleted("contacts", datetime(2000, 1, 1, tzinfo=UTC)), "(archived)"),
])
def test_a_repeated_after_fails_the_read_naming_the_link(
    proxied: HubSpotAdapter, tampered: tuple[Tamper, str], pattern: str, read: Any, named: str
) -> None:
    if named == "list contacts":
        tampered[0].add(pattern, _stuck_after)
    else:  # short lists: every answer says "next page after 1"
        tampered[0].add(pattern, lambda answer, _: {**answer, "paging": {"next": {"after": "1"}}})
    with pytest.raises(PagingStuckError) as caught:
        read(proxied)
    assert caught.value.code == "PAGING_STUCK" and named in str(caught.value) and "'1'" in str(caught.value)


# --- defect 3: malformed answers are classified ---------------------------------------------------


def test_an_error_with_200_is_not_zero_records(proxied: HubSpotAdapter, tampered: tuple[Tamper, str],
                                               clock: ManualClock) -> None:
    before = contacts_checkpoint(proxied)
    clock.advance(seconds=1)
    proxied.write(new_contacts(3, "e"))
    tampered[0].add(r"/search", lambda answer, _: {"status": "error", "message": "Search is unavailable",
                                                   "category": "SEARCH_UNAVAILABLE", "correlationId": "x"})
    with pytest.raises(FatalError, match="HubSpot answered an error with 200: SEARCH_UNAVAILABLE Search is unavailable"):
        list(proxied.read("contacts", FIELDS, before))


def test_non_json_with_200_is_retried_and_the_read_goes_on(proxied: HubSpotAdapter, tampered: tuple[Tamper, str],
                                                           seed: SeedData, waits: Waits) -> None:
    tampered[0].add(r"/crm/v3/objects/contacts\?", lambda answer, _: b"<html>maintenance</html>", times=1)
    live = {r["id"] for r in seed.hubspot["contacts"] if not r.get("archived")}
    assert set(record_ids(proxied.read("contacts", FIELDS, None))) == live
    assert len(waits) == 1


def test_non_json_that_persists_is_a_retriable_error(proxied: HubSpotAdapter, tampered: tuple[Tamper, str]) -> None:
    tampered[0].add(r"/crm/v3/objects/contacts\?", lambda answer, _: b'{"results": [{"id": "1"')
    with pytest.raises(RetriableError, match="HubSpot answered non-JSON") as caught:
        list(proxied.read("contacts", FIELDS, None))
    assert caught.value.code == "MALFORMED_ANSWER"


@pytest.mark.parametrize("results", [None, "x", {"id": "1"}, [1, 2]])
def test_an_answer_without_a_results_list_is_fatal(proxied: HubSpotAdapter, tampered: tuple[Tamper, str],
                                                   results: Any) -> None:
    tampered[0].add(r"/crm/v3/objects/contacts\?", lambda answer, _: {**answer, "results": results})
    with pytest.raises(FatalError) as caught:
        list(proxied.read("contacts", FIELDS, None))
    assert caught.value.code == "UNEXPECTED_ANSWER"


# --- defect 4: bad records reach the pipeline and do not move the cursor -----------------------------


def test_records_without_id_or_with_a_bad_stamp_are_delivered_and_do_not_move_the_cursor(
    proxied: HubSpotAdapter, tampered: tuple[Tamper, str], clock: ManualClock
) -> None:
    before = contacts_checkpoint(proxied)
    created: list[str] = []
    for n in range(3):
        clock.advance(seconds=1)
        created += [str(r.crm_id) for r in proxied.write(new_contacts(4, f"bad{n}-"))]

    def spoil(answer: Any, _: str) -> Any:
        rows = answer["results"]
        if len(rows) >= 3:
            del rows[-1]["id"]
            rows[-2]["properties"]["hs_lastmodifieddate"] = "yesterday-ish"
        return answer

    tampered[0].add(r"/search", spoil, times=1)
    pages = list(proxied.read("contacts", FIELDS, before))
    rows = [r for p in pages for r in p.records]
    assert sum(1 for r in rows if "id" not in r) == 1 and all(r.get("id") != "None" for r in rows)
    assert any(r.get("hs_lastmodifieddate") == "yesterday-ish" for r in rows)
    assert pages[-1].cursor is not None and pages[-1].cursor > before
    tampered[0].clear()
    resumed = record_ids(proxied.read("contacts", FIELDS, before))
    assert set(created) <= set(resumed)


def test_a_full_read_delivers_a_record_without_id_as_it_came(proxied: HubSpotAdapter,
                                                             tampered: tuple[Tamper, str]) -> None:
    def spoil(answer: Any, _: str) -> Any:
        answer["results"][0].pop("id")
        answer["results"][1]["properties"]["hs_lastmodifieddate"] = "99999999999999999999"
        return answer

    tampered[0].add(r"/crm/v3/objects/contacts\?(?!.*archived=[Tt]rue)", spoil, times=1)
    pages = list(proxied.read("contacts", FIELDS, None))
    rows = [r for p in pages for r in p.records]
    assert sum(1 for r in rows if "id" not in r) == 1 and "None" not in {r.get("id") for r in rows}
    assert pages[-1].cursor is not None


# --- defect 5: property names checked against the portal -----------------------------------------


def test_check_fields_names_every_missing_property(hubspot: HubSpotAdapter) -> None:
    assert hubspot.check_fields("contacts", ["email", "firstname", "id", "updatedAt"]) == []
    missing = hubspot.check_fields("contact", ["emial", "firstname", "hubspot_ownr_id"])
    assert missing == ["emial", "hubspot_ownr_id"]
    error = crm_unit("hubspot").missing_fields("contacts", missing, connection="hubspot", source="mappings/hubspot.yaml")
    assert error.code == "UNKNOWN_FIELDS" and list(error.fields) == missing
    assert "contacts" in str(error) and "emial" in str(error) and "hubspot_ownr_id" in str(error)
