"""Matching HubSpot batch answers (200 and 207 multi-status) back to the ops sent."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.adapters.base import Cursor, WriteOp
from connector.crms.hubspot.adapter import (
    HubSpotAdapter,
    SearchThrottle,
    flatten,
    merged_pairs,
    parse_hubspot_datetime,
    to_epoch_ms,
)
from connector.crms.hubspot.results import match_results


def row(id: str, trace: str | None = None, **properties: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": id, "properties": properties, "createdAt": "2024-01-01T00:00:00Z",
                           "updatedAt": "2024-01-01T00:00:00Z", "archived": False}
    if trace is not None:
        out["objectWriteTraceId"] = trace
    return out


def test_results_out_of_order_are_matched_by_trace_id() -> None:
    ops = [WriteOp("contacts", "create", {"email": f"p{i}@x.example"}) for i in range(3)]
    answer = {"status": "COMPLETE", "results": [row("30", "relay-2"), row("10", "relay-0"), row("20", "relay-1")]}
    results = match_results(ops, answer, context="batch create")
    assert [r.crm_id for r in results] == ["10", "20", "30"]
    assert all(r.success and r.created for r in results)


def test_207_errors_are_matched_by_the_ids_in_their_context() -> None:
    ops = [WriteOp("contacts", "update", {"firstname": "A"}, crm_id=i) for i in ("101", "999", "102")]
    answer = {
        "status": "COMPLETE", "numErrors": 1,
        "results": [row("102"), row("101")],
        "errors": [{"status": "error", "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some CONTACT objects, they may be deleted or not exist.",
                    "context": {"ids": ["999"]}}],
    }
    results = match_results(ops, answer, context="batch update")
    assert [r.success for r in results] == [True, False, True]
    error = results[1].error
    assert error is not None and error.code == "OBJECT_NOT_FOUND"
    assert "they may be deleted" in str(error)
    assert not results[0].created


def test_upserts_are_matched_by_their_key_and_report_new() -> None:
    ops = [WriteOp("tasks", "upsert", {"relay_idempotency_key": k, "hs_task_subject": "Call"},
                   external_id_field="relay_idempotency_key") for k in ("k1", "k2")]
    answer = {"status": "COMPLETE", "results": [
        {**row("7", relay_idempotency_key="k2"), "new": False},
        {**row("8", relay_idempotency_key="k1"), "new": True},
    ]}
    results = match_results(ops, answer, context="batch upsert")
    assert [(r.crm_id, r.created) for r in results] == [("8", True), ("7", False)]


def test_unattributable_errors_fill_the_remaining_ops_in_order() -> None:
    ops = [WriteOp("contacts", "create", {"email": e}) for e in ("a@x.example", "bad", "c@x.example")]
    answer = {"status": "COMPLETE", "results": [row("1", "relay-0"), row("3", "relay-2")],
              "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": "Invalid email bad",
                          "context": {}}]}
    results = match_results(ops, answer, context="batch create")
    assert [r.success for r in results] == [True, False, True]
    assert results[1].error is not None and "Invalid email bad" in str(results[1].error)


def test_ops_nothing_answered_get_a_missing_result_error() -> None:
    ops = [WriteOp("contacts", "update", {"a": "1"}, crm_id="1"), WriteOp("contacts", "update", {"a": "1"}, crm_id="2")]
    results = match_results(ops, {"status": "COMPLETE", "results": [row("1")]}, context="batch update")
    assert results[0].success
    assert results[1].error is not None and results[1].error.code == "MISSING_RESULT"


def test_archive_204_means_every_record_archived() -> None:
    ops = [WriteOp("contacts", "delete", crm_id="5")]
    assert match_results(ops, None, context="archive")[0].success


def test_records_are_flattened_and_merges_read() -> None:
    record = row("42", hs_merged_object_ids="7;9", email="a@x.example")
    assert flatten(record)["email"] == "a@x.example" and flatten(record)["id"] == "42"
    assert merged_pairs(record) == [("7", "42"), ("9", "42")]
    assert merged_pairs(row("1")) == []


def test_hubspot_timestamps_in_both_forms() -> None:
    iso = parse_hubspot_datetime("2024-01-01T00:00:01.500Z")
    epoch = parse_hubspot_datetime("1704067201500")
    assert iso == epoch
    assert iso is not None and to_epoch_ms(iso) == "1704067201500"
    assert parse_hubspot_datetime("") is None


def test_search_throttle_spaces_calls_to_the_rate() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    throttle = SearchThrottle(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        throttle.wait()
    assert slept == [0.25, 0.25, 0.25, 0.25]
    now[0] += 10  # idle time is not banked into a burst
    throttle.wait()
    throttle.wait()
    assert slept[-1] == 0.25 and len(slept) == 5


# --- the incremental search read against a fake search that orders ties arbitrarily -------------

BASE_MS = 1_700_000_000_000


class _Answer:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()
        self.status = 200


class ShuffledSearch:
    """Search over fixed records: sorted by timestamp only, ties in a scrambled order, HubSpot paging."""

    def __init__(self, records: list[tuple[int, int]], seed: int) -> None:
        rng = random.Random(seed)
        self.rows: list[dict[str, Any]] = [{"id": str(i), "properties": {"hs_lastmodifieddate": str(BASE_MS + ts)},
                      "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-01T00:00:00Z", "archived": False}
                     for i, ts in records]
        rng.shuffle(self.rows)
        self.rows.sort(key=lambda r: int(r["properties"]["hs_lastmodifieddate"]))  # stable: ties stay shuffled

    def do_search(self, kind: str, public_object_search_request: dict[str, Any], **_: Any) -> _Answer:
        body = public_object_search_request
        compare = {"GTE": lambda a, b: a >= b, "LTE": lambda a, b: a <= b, "GT": lambda a, b: a > b,
                   "LT": lambda a, b: a < b, "EQ": lambda a, b: a == b}

        def value(row: dict[str, Any], name: str) -> int:
            return int(row["id"]) if name == "hs_object_id" else int(row["properties"][name])

        matching = [r for r in self.rows if all(compare[f["operator"]](value(r, f["propertyName"]), int(f["value"]))
                                                for f in body["filterGroups"][0]["filters"])]
        for sort in reversed(body.get("sorts") or []):  # stable: ties keep their scrambled order
            matching.sort(key=lambda r, name=sort["propertyName"]: value(r, name))
        start = int(body.get("after") or 0)
        results = matching[start : start + body["limit"]]
        answer: dict[str, Any] = {"total": len(matching), "results": results}
        if start + body["limit"] < len(matching):
            answer["paging"] = {"next": {"after": str(start + body["limit"])}}
        return _Answer(answer)


def _adapter(search: ShuffledSearch, cap: int) -> HubSpotAdapter:
    adapter = HubSpotAdapter("hs", "http://127.0.0.1:9", "token", search_overlap=timedelta(0),
                             searches_per_second=1e9, search_cap=cap)
    adapter._search = search
    return adapter


@settings(max_examples=60, deadline=None)
@given(
    stamps=st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=60),
    seed=st.integers(min_value=0, max_value=1000),
    size=st.integers(min_value=2, max_value=7),
)
def test_a_resume_from_any_page_never_skips_a_record(stamps: list[int], seed: int, size: int) -> None:
    records = [(1000 + i, ts) for i, ts in enumerate(stamps)]
    search = ShuffledSearch(records, seed)
    start = Cursor(datetime.fromtimestamp((BASE_MS - 1) / 1000, tz=UTC), "0")
    cap = max(size * 3, max(stamps.count(t) for t in set(stamps)) + size)
    pages = list(_adapter(search, cap).read("contacts", [], start, page_size=size))
    everything = {str(i) for i, _ in records}
    assert [r["id"] for p in pages for r in p.records] and {r["id"] for p in pages for r in p.records} == everything
    cursors = [p.cursor for p in pages]
    assert cursors == sorted(c for c in cursors if c is not None)
    for k, page in enumerate(pages):
        assert page.cursor is not None
        before = {r["id"] for p in pages[: k + 1] for r in p.records}
        resumed = {r["id"] for p in _adapter(search, cap).read("contacts", [], page.cursor, page_size=size)
                   for r in p.records}
        assert everything - before <= resumed, f"resume after page {k} skipped {everything - before - resumed}"
