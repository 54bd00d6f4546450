"""The HubSpot adapter against the sandbox portal, over real HTTP through hubspot-api-client."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests

from connector.adapters.base import Cursor, FieldSpec, WriteOp
from connector.adapters.errors import (
    ApiLimitExceeded,
    AuthError,
    ConfigurationError,
    RetriableError,
)
from connector.adapters.retry import RetryPolicy
from connector.crms.hubspot.adapter import HubSpotAdapter
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.seed import SeedData

from ._sandbox_helpers import (
    CONTACT_FIELDS,
    ManualClock,
    Waits,
    contacts_checkpoint,
    ledger_calls,
    new_contacts,
    record_ids,
    sandbox_admin,
)

FIELDS = CONTACT_FIELDS
TOKEN = {"Authorization": "Bearer sandbox-token"}





def api(url: str, method: str, path: str, body: Any = None) -> Any:
    response = requests.request(method, f"{url}{path}", json=body, headers=TOKEN, timeout=10)
    response.raise_for_status()
    return response.json() if response.content else None


def test_full_read_returns_every_contact_flat_then_a_checkpoint(hubspot: HubSpotAdapter, seed: SeedData) -> None:
    pages = list(hubspot.read("contacts", FIELDS, None, page_size=7))
    live = {r["id"] for r in seed.hubspot["contacts"] if not r.get("archived")}
    assert set(record_ids(pages)) == live and len(record_ids(pages)) == len(live)
    assert all(p.cursor is None for p in pages[:-1]), "a full read in id order must not checkpoint midway"
    assert pages[-1].cursor is not None and not pages[-1].records
    first = pages[0].records[0]
    assert {"id", "createdAt", "updatedAt", "archived", "email", "hs_lastmodifieddate"} <= set(first)


def test_incremental_read_picks_up_exactly_the_changed_records(hubspot: HubSpotAdapter, clock: ManualClock) -> None:
    cursor = contacts_checkpoint(hubspot)
    clock.advance(minutes=5)
    existing = record_ids(hubspot.read("contacts", FIELDS, None))[:3]
    updated = hubspot.write([WriteOp("contacts", "update", {"firstname": "Changed"}, crm_id=i) for i in existing])
    created = hubspot.write(new_contacts(2))
    assert all(r.success for r in updated + created)
    pages = list(hubspot.read("contacts", FIELDS, cursor))
    assert sorted(record_ids(pages)) == sorted(existing + [str(r.crm_id) for r in created])
    assert pages[-1].cursor is not None and pages[-1].cursor > cursor
    assert list(hubspot.read("contacts", FIELDS, pages[-1].cursor)) == []


def test_search_windows_restart_before_the_result_cap_without_skipping(hs_url: str, policy: RetryPolicy,
                                                                       clock: ManualClock) -> None:
    adapter = HubSpotAdapter("hs", hs_url, "sandbox-token", retry=policy, search_overlap=timedelta(0),
                             searches_per_second=10_000, search_cap=100, clock=clock, read_lag=timedelta(0))
    cursor = contacts_checkpoint(adapter)
    created: list[str] = []
    for _ in range(5):  # 5 timestamps, 50 contacts each: ties inside every window
        clock.advance(seconds=1)
        created += [str(r.crm_id) for r in adapter.write(new_contacts(50, f"w{len(created)}-"))]
    pages = list(adapter.read("contacts", FIELDS, cursor, page_size=20))
    seen = record_ids(pages)
    assert sorted(seen) == sorted(created), "every changed contact exactly once"
    cursors = [p.cursor for p in pages]
    assert cursors == sorted(c for c in cursors if c is not None), "the checkpoint only moves forward"
    assert adapter.calls.get("search") > 250 / 20


def test_resuming_from_a_mid_read_checkpoint_loses_nothing(hubspot: HubSpotAdapter, clock: ManualClock) -> None:
    cursor = contacts_checkpoint(hubspot)
    created: list[str] = []
    for _ in range(3):
        clock.advance(seconds=1)
        created += [str(r.crm_id) for r in hubspot.write(new_contacts(40, f"r{len(created)}-"))]
    pages = list(hubspot.read("contacts", FIELDS, cursor, page_size=50))
    middle = pages[1].cursor
    assert middle is not None
    resumed = record_ids(hubspot.read("contacts", FIELDS, Cursor.from_json(middle.to_json()), page_size=50))
    done = set(record_ids(pages[:2]))
    assert set(created) - done <= set(resumed) <= set(created), "nothing skipped; repeats only from the tie in flight"
    assert len(resumed) < len(created)


def test_the_overlap_window_re_reads_writes_that_search_showed_late(hs_url: str, policy: RetryPolicy,
                                                                    clock: ManualClock) -> None:
    late = HubSpotAdapter("hs", hs_url, "sandbox-token", retry=policy, searches_per_second=10_000,
                          search_overlap=timedelta(minutes=2), clock=clock, read_lag=timedelta(0))
    strict = HubSpotAdapter("hs", hs_url, "sandbox-token", retry=policy, searches_per_second=10_000,
                            search_overlap=timedelta(0), clock=clock, read_lag=timedelta(0))
    clock.advance(minutes=10)
    written = late.write(new_contacts(1, "late"))[0]
    cursor = Cursor(clock() + timedelta(seconds=30), "0")  # a checkpoint taken just after, elsewhere
    assert written.crm_id in record_ids(late.read("contacts", FIELDS, cursor))
    assert written.crm_id not in record_ids(strict.read("contacts", FIELDS, cursor))


def test_writes_go_100_per_call_and_every_call_is_counted(hubspot: HubSpotAdapter, hs_url: str) -> None:
    sandbox_admin(hs_url, "DELETE", "ledger")
    created = hubspot.write(new_contacts(250))
    new_ids = [str(r.crm_id) for r in created]
    updated = hubspot.write([WriteOp("contacts", "update", {"jobtitle": "VP"}, crm_id=i) for i in new_ids])
    archived = hubspot.write([WriteOp("contacts", "delete", crm_id=i) for i in new_ids])
    assert all(r.success for r in created + updated + archived)
    assert hubspot.calls.by_kind() == {"write": 9}
    assert ledger_calls(hs_url) == 9


def test_partial_batch_failures_write_every_good_record(hubspot: HubSpotAdapter, hs_url: str) -> None:
    sandbox_admin(hs_url, "PUT", "faults", {"partial_failure": 0.2, "seed": 3, "path_pattern": "batch"})
    results = hubspot.write(new_contacts(200, "pf"))
    sandbox_admin(hs_url, "DELETE", "faults")
    failed = [r for r in results if not r.success]
    good = {str(r.crm_id) for r in results if r.success}
    assert 0 < len(failed) < 200
    for result in failed:
        assert result.error is not None and result.error.code and result.error.message
        assert result.error.crm == "hubspot"
    stored = {r["id"] for r in (rec for p in hubspot.read("contacts", ["lastname"], None) for rec in p.records)
              if str(r.get("lastname", "")).startswith("pf")}
    assert stored == good
    assert {r.op.fields["email"] for r in results if r.success} | {r.op.fields["email"] for r in failed} == {
        f"pf{i}@acme.example" for i in range(200)}


def test_invalid_records_are_isolated_and_named(hubspot: HubSpotAdapter) -> None:
    ops = new_contacts(5, "iso")
    ops[2] = WriteOp("contacts", "create", {"email": "iso2@acme.example", "no_such_property": "x"})
    results = hubspot.write(ops)
    assert [r.success for r in results] == [True, True, False, True, True]
    error = results[2].error
    assert error is not None and error.code == "PROPERTY_DOESNT_EXIST" and "no_such_property" in str(error)


def test_rate_limits_and_server_errors_are_retried_to_success(hubspot: HubSpotAdapter, hs_url: str,
                                                              waits: Waits) -> None:
    sandbox_admin(hs_url, "DELETE", "ledger")
    sandbox_admin(hs_url, "PUT", "faults", {"script": ["rate_limit", "server_error", "drop"], "retry_after": 1})
    assert record_ids(hubspot.read("contacts", FIELDS, None))
    assert waits[0] == 1.0 and len(waits) == 3
    assert hubspot.calls.total == ledger_calls(hs_url)


def test_the_search_throttle_keeps_under_the_portal_limit(seed: SeedData, clock: ManualClock) -> None:
    sandbox = HubSpotSandbox(seed, clock=clock.ms, search_per_second=5)
    server = sandbox.start()
    try:
        adapter = HubSpotAdapter("hs", server.url, "sandbox-token", search_overlap=timedelta(0))
        cursor = contacts_checkpoint(adapter)
        clock.advance(seconds=1)
        adapter.write(new_contacts(24, "thr"))
        assert len(record_ids(adapter.read("contacts", FIELDS, cursor, page_size=2))) == 24
        totals = sandbox_admin(server.url, "GET", "ledger")["totals"]
        assert totals["by_status"].get("429", 0) == 0
        assert adapter.calls.get("search") >= 12  # (plus records at the checkpoint's own timestamp)
    finally:
        sandbox.stop()


def test_a_wrong_token_is_an_auth_error_with_hubspot_words(hs_url: str, policy: RetryPolicy, waits: Waits) -> None:
    adapter = HubSpotAdapter("hs", hs_url, "wrong-token", retry=policy)
    with pytest.raises(AuthError) as caught:
        list(adapter.read("contacts", FIELDS, None))
    assert caught.value.status == 401 and caught.value.message
    assert waits == []


def test_daily_limit_stops_the_run(seed: SeedData, policy: RetryPolicy, waits: Waits) -> None:
    sandbox = HubSpotSandbox(seed, daily_limit=2)
    server = sandbox.start()
    try:
        adapter = HubSpotAdapter("hs", server.url, "sandbox-token", retry=policy)
        with pytest.raises(ApiLimitExceeded):
            for _ in range(4):
                list(adapter.read("contacts", FIELDS, None))
        assert waits == []
    finally:
        sandbox.stop()


def test_missing_properties_are_created_in_the_relay_group_once(hubspot: HubSpotAdapter, hs_url: str) -> None:
    specs = [FieldSpec("relay_score", "Relay score", "number", "number"),
             FieldSpec("relay_id", "Relay id", has_unique_value=True), FieldSpec("email", "Email")]
    assert hubspot.ensure_fields("contacts", specs) == ["relay_score", "relay_id"]
    assert hubspot.ensure_fields("contacts", specs) == []
    prop = api(hs_url, "GET", "/crm/v3/properties/contacts/relay_score")
    assert prop["groupName"] == "relay" and prop["type"] == "number"
    written = hubspot.write([WriteOp("contacts", "create", {"email": "scored@acme.example", "relay_score": 87})])[0]
    assert written.success


def test_merges_are_reported_as_pairs_and_the_loser_as_archived(hubspot: HubSpotAdapter, hs_url: str,
                                                                clock: ManualClock) -> None:
    cursor = contacts_checkpoint(hubspot)
    since = clock()
    clock.advance(minutes=1)
    primary, secondary = (str(r.crm_id) for r in hubspot.write(new_contacts(2, "merge")))
    clock.advance(minutes=1)
    api(hs_url, "POST", "/crm/v3/objects/contacts/merge", {"primaryObjectId": primary, "objectIdToMerge": secondary})
    pages = list(hubspot.read("contacts", FIELDS, cursor))
    assert (secondary, primary) in [pair for p in pages for pair in p.merged]
    assert secondary in hubspot.read_deleted("contacts", since)
    full = list(hubspot.read("contacts", FIELDS, None))
    assert secondary in [i for p in full for i in p.deleted_ids]
    assert (secondary, primary) in [pair for p in full for pair in p.merged]


def test_tasks_are_linked_to_their_contact_and_upserted_once(hubspot: HubSpotAdapter, hs_url: str) -> None:
    hubspot.ensure_fields("tasks", [FieldSpec("relay_idempotency_key", "Relay idempotency key", has_unique_value=True)])
    contact = hubspot.write(new_contacts(1, "task"))[0]
    fields = {"hs_task_subject": "Call within 5 minutes", "hs_task_status": "NOT_STARTED", "hs_task_priority": "HIGH",
              "hs_timestamp": "2026-01-01T00:00:00.000Z", "relay_idempotency_key": "task-1"}
    created = hubspot.write([WriteOp("tasks", "create", fields, associations=(("contacts", str(contact.crm_id)),))])[0]
    assert created.success and created.created
    links = api(hs_url, "GET", f"/crm/v4/objects/tasks/{created.crm_id}/associations/contacts")
    assert [(str(r["toObjectId"]), [t["typeId"] for t in r["associationTypes"]]) for r in links["results"]] == [
        (str(contact.crm_id), [204])]
    upsert = WriteOp("tasks", "upsert", {**fields, "hs_task_subject": "Call now"},
                     external_id_field="relay_idempotency_key")
    for _ in range(2):  # a retried batch
        again = hubspot.write([upsert])[0]
        assert (again.success, again.crm_id, again.created) == (True, created.crm_id, False)
    found = api(hs_url, "POST", "/crm/v3/objects/tasks/search", {"filterGroups": [{"filters": [
        {"propertyName": "relay_idempotency_key", "operator": "EQ", "value": "task-1"}]}], "properties": ["hs_task_subject"]})
    assert [(r["id"], r["properties"]["hs_task_subject"]) for r in found["results"]] == [(created.crm_id, "Call now")]


def test_unknown_association_targets_fail_only_their_op(hubspot: HubSpotAdapter, hs_url: str) -> None:
    def task(subject: str, *associations: tuple[str, str]) -> WriteOp:
        return WriteOp("tasks", "create", {"hs_task_subject": subject, "hs_timestamp": "2026-01-01T00:00:00Z"},
                       associations=associations)

    ops = [task("a", ("planets", "1")), task("b"), task("c"), task("d", ("moons", "2")), task("e")]
    results = hubspot.write(ops)
    assert [r.success for r in results] == [False, True, True, False, True]
    assert results[0].error is not None and "planets" in str(results[0].error)
    for op, result in zip(ops, results, strict=True):
        if result.success:
            stored = api(hs_url, "GET", f"/crm/v3/objects/tasks/{result.crm_id}?properties=hs_task_subject")
            assert stored["properties"]["hs_task_subject"] == op.fields["hs_task_subject"]


def test_owners_include_archived_ones(hubspot: HubSpotAdapter) -> None:
    owners = hubspot.owners()
    lucas = next(o for o in owners if str(o["email"]).startswith("lucas.silva"))
    assert lucas["archived"] is True
    assert len({o["id"] for o in owners}) == len(owners) >= 20
    assert {"id", "email", "firstName", "lastName", "archived"} <= set(lucas)


def test_unknown_object_types_are_configuration_errors(hubspot: HubSpotAdapter) -> None:
    with pytest.raises(ConfigurationError):
        list(hubspot.read("planets", FIELDS, None))


def test_retries_give_up_after_the_policy_attempts(hs_url: str) -> None:
    waits: list[float] = []
    adapter = HubSpotAdapter("hs", hs_url, "sandbox-token", retry=RetryPolicy(max_attempts=2, sleep=waits.append))
    sandbox_admin(hs_url, "PUT", "faults", {"server_error": 1.0})
    with pytest.raises(RetriableError, match="after 2 attempts"):
        adapter.owners()
    assert len(waits) == 1


def test_a_full_read_never_checkpoints_past_the_time_it_started(hubspot: HubSpotAdapter, clock: ManualClock) -> None:
    started = clock()
    reading = hubspot.read("contacts", FIELDS, None, page_size=10)
    first = next(reading)
    clock.advance(hours=1)  # the CRM kept writing while we listed: new records, and one already listed
    late = [str(r.crm_id) for r in hubspot.write(new_contacts(2, "during"))]
    edited = first.records[0]["id"]
    assert hubspot.write([WriteOp("contacts", "update", {"firstname": "Edited"}, crm_id=edited)])[0].success
    pages = [first, *reading]
    cursor = pages[-1].cursor
    assert cursor is not None and cursor.last_modified <= started
    assert set(late) | {edited} <= set(record_ids(hubspot.read("contacts", FIELDS, cursor)))


def test_upserted_tasks_are_linked_through_the_associations_api(hubspot: HubSpotAdapter, hs_url: str) -> None:
    hubspot.ensure_fields("tasks", [FieldSpec("relay_idempotency_key", "Relay idempotency key", has_unique_value=True)])
    contacts = [str(r.crm_id) for r in hubspot.write(new_contacts(2, "link"))]
    ops = [WriteOp("tasks", "upsert", {"hs_task_subject": f"Follow up {c}", "hs_timestamp": "2026-01-01T00:00:00Z",
                                       "relay_idempotency_key": f"follow-{c}"},
                   external_id_field="relay_idempotency_key", associations=(("contacts", c),)) for c in contacts]
    results = hubspot.write(ops)
    assert all(r.success and r.created for r in results)
    for contact, result in zip(contacts, results, strict=True):
        links = api(hs_url, "GET", f"/crm/v4/objects/tasks/{result.crm_id}/associations/contacts")
        assert [str(r["toObjectId"]) for r in links["results"]] == [contact]
    assert hubspot.calls.get("write") == 1 + 2  # contacts, the upsert batch, one association batch
