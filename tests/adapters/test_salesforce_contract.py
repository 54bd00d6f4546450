"""The Salesforce adapter against the sandbox org, over real HTTP through simple-salesforce."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.adapters.base import Cursor, WriteOp
from connector.adapters.errors import ApiLimitExceeded, AuthError, ConfigurationError
from connector.adapters.retry import RetryPolicy
from connector.crms.salesforce.adapter import SalesforceAdapter
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.seed import SeedData

from ._sandbox_helpers import ManualClock, Waits, ledger_calls, sandbox_admin

FIELDS = ["FirstName", "LastName", "Email", "Company", "OwnerId", "Status"]


def new_leads(count: int, tag: str = "n") -> list[WriteOp]:
    return [WriteOp("Lead", "create", {"LastName": f"{tag}{i}", "Company": "Acme Corp", "Email": f"{tag}{i}@acme.example"})
            for i in range(count)]


def read_all(adapter: SalesforceAdapter, cursor: Cursor | None, page_size: int = 2000) -> list[str]:
    return [r["Id"] for page in adapter.read("Lead", FIELDS, cursor, page_size=page_size) for r in page.records]


def last_cursor(adapter: SalesforceAdapter) -> Cursor:
    pages = list(adapter.read("Lead", FIELDS, None))
    assert pages and pages[-1].cursor is not None
    return pages[-1].cursor


def test_full_read_returns_every_live_lead_in_cursor_order(salesforce: SalesforceAdapter, seed: SeedData) -> None:
    pages = list(salesforce.read("Lead", FIELDS, None, page_size=200))
    live = {r["Id"] for r in seed.salesforce["Lead"] if not r.get("IsDeleted")}
    ids = [r["Id"] for p in pages for r in p.records]
    assert set(ids) == live and len(ids) == len(live)
    cursors = [p.cursor for p in pages]
    assert all(c is not None for c in cursors)
    assert "attributes" not in pages[0].records[0]
    assert set(FIELDS) <= set(pages[0].records[0])


def test_incremental_read_picks_up_exactly_the_changed_records(
    salesforce: SalesforceAdapter, clock: ManualClock
) -> None:
    cursor = last_cursor(salesforce)
    existing = read_all(salesforce, None)[:3]
    clock.advance(minutes=5)
    updated = salesforce.write([WriteOp("Lead", "update", {"Status": "Working - Contacted"}, crm_id=i) for i in existing])
    created = salesforce.write(new_leads(2))
    assert all(r.success for r in updated + created)
    changed = read_all(salesforce, cursor)
    assert sorted(changed) == sorted(existing + [str(r.crm_id) for r in created])
    assert read_all(salesforce, last_cursor(salesforce)) == []


def test_records_sharing_a_systemmodstamp_are_never_skipped_and_reads_resume(
    salesforce: SalesforceAdapter, clock: ManualClock
) -> None:
    before = last_cursor(salesforce)
    clock.advance(minutes=1)  # then frozen: every write below gets the same SystemModstamp
    results = salesforce.write(new_leads(450, "tie"))
    created = {str(r.crm_id) for r in results if r.success}
    assert len(created) == 450

    pages = list(salesforce.read("Lead", [*FIELDS, "SystemModstamp"], before, page_size=200))
    assert [len(p.records) for p in pages] == [200, 200, 50]
    assert len({r["SystemModstamp"] for p in pages for r in p.records}) == 1, "the sandbox should share the stamp"
    assert {r["Id"] for p in pages for r in p.records} == created

    checkpoint = pages[0].cursor
    assert checkpoint is not None
    resumed = read_all(salesforce, Cursor.from_json(checkpoint.to_json()), page_size=200)
    first_page = {r["Id"] for r in pages[0].records}
    assert len(resumed) == 250 and set(resumed) == created - first_page
    assert [p.cursor for p in pages] == sorted(p.cursor for p in pages if p.cursor)


def test_writes_go_200_per_call_and_every_call_is_counted(salesforce: SalesforceAdapter, sf_url: str) -> None:
    salesforce.authenticate()
    sandbox_admin(sf_url, "DELETE", "ledger")
    before = salesforce.calls.snapshot()
    created = salesforce.write(new_leads(450))
    ids = [str(r.crm_id) for r in created]
    updated = salesforce.write([WriteOp("Lead", "update", {"Title": "VP"}, crm_id=i) for i in ids])
    deleted = salesforce.write([WriteOp("Lead", "delete", crm_id=i) for i in ids])
    assert all(r.success for r in created + updated + deleted)
    assert all(r.created for r in created) and not any(r.created for r in updated)
    assert salesforce.calls.since(before) == {"write": 9, "total": 9}
    assert ledger_calls(sf_url) == 9


def test_results_keep_op_order_across_objects(salesforce: SalesforceAdapter) -> None:
    lead = salesforce.write(new_leads(1))[0]
    ops = [
        WriteOp("Lead", "update", {"Title": "CTO"}, crm_id=lead.crm_id),
        WriteOp("Account", "create", {"Name": "Initech"}),
        WriteOp("Lead", "update", {"Email": "not-an-email"}, crm_id=lead.crm_id),
        WriteOp("Lead", "create", {"Company": "No Name Inc"}),
    ]
    results = salesforce.write(ops)
    assert [r.op for r in results] == ops
    assert [r.success for r in results] == [True, True, False, False]
    assert results[2].error is not None and results[2].error.code == "INVALID_EMAIL_ADDRESS"
    assert results[3].error is not None and results[3].error.code == "REQUIRED_FIELD_MISSING"
    assert "LastName" in results[3].error.fields


def test_partial_batch_failures_write_every_good_record(salesforce: SalesforceAdapter, sf_url: str) -> None:
    salesforce.authenticate()
    sandbox_admin(sf_url, "PUT", "faults", {"partial_failure": 0.2, "seed": 1, "path_pattern": "composite"})
    results = salesforce.write(new_leads(300, "pf"))
    sandbox_admin(sf_url, "DELETE", "faults")
    failed = [r for r in results if not r.success]
    good = {str(r.crm_id) for r in results if r.success}
    assert 0 < len(failed) < 300
    for result in failed:
        assert result.error is not None and result.error.code and result.error.message
        assert result.error.crm == "salesforce"
    stored = {r["Id"] for page in salesforce.read("Lead", ["LastName"], None) for r in page.records
              if str(r["LastName"]).startswith("pf")}
    assert stored == good


def test_rate_limits_and_server_errors_are_retried_to_success(
    salesforce: SalesforceAdapter, sf_url: str, waits: Waits
) -> None:
    salesforce.authenticate()
    sandbox_admin(sf_url, "DELETE", "ledger")
    sandbox_admin(sf_url, "PUT", "faults", {"script": ["rate_limit", "server_error", "drop"], "retry_after": 1})
    ids = read_all(salesforce, None)
    assert ids
    assert waits[0] == 1.0  # Retry-After honoured
    assert len(waits) == 3
    assert salesforce.calls.get("read") == ledger_calls(sf_url) == 4  # the query, 3 retries


def test_retries_give_up_after_the_policy_attempts(sf_url: str) -> None:
    waits: list[float] = []
    adapter = SalesforceAdapter("sf", sf_url, "sandbox", "sandbox",
                                retry=RetryPolicy(max_attempts=3, sleep=waits.append))
    adapter.authenticate()
    sandbox_admin(sf_url, "PUT", "faults", {"server_error": 1.0, "path_pattern": "query"})
    with pytest.raises(Exception, match="after 3 attempts") as caught:
        read_all(adapter, None)
    assert caught.value.__class__.__name__ == "RetriableError"
    assert len(waits) == 2


def test_wrong_credentials_are_an_auth_error_with_salesforce_words(sf_url: str, policy: RetryPolicy) -> None:
    adapter = SalesforceAdapter("sf", sf_url, "sandbox", "wrong-secret", retry=policy)
    with pytest.raises(AuthError) as caught:
        read_all(adapter, None)
    assert caught.value.code in ("invalid_client", "invalid_grant")
    assert adapter.calls.get("auth") == 1


def test_password_grant_works(sf_url: str, policy: RetryPolicy) -> None:
    adapter = SalesforceAdapter("sf", sf_url, "sandbox", "sandbox", username="admin@sandbox.example",
                                password="sandbox", retry=policy)
    assert read_all(adapter, None)


def test_an_expired_session_is_renewed_once(salesforce: SalesforceAdapter, clock: ManualClock) -> None:
    salesforce.authenticate()
    clock.advance(hours=3)
    assert read_all(salesforce, None)
    assert salesforce.calls.get("auth") == 2


def test_daily_limit_stops_the_run(seed: SeedData, policy: RetryPolicy, waits: Waits) -> None:
    sandbox = SalesforceSandbox(seed, daily_limit=3)
    server = sandbox.start()
    try:
        adapter = SalesforceAdapter("sf", server.url, "sandbox", "sandbox", retry=policy)
        with pytest.raises(ApiLimitExceeded, match="REQUEST_LIMIT_EXCEEDED"):
            for _ in range(5):
                read_all(adapter, None)
        assert waits == []
    finally:
        sandbox.stop()


def test_deletions_are_reported_by_reads_and_by_deleted(salesforce: SalesforceAdapter, clock: ManualClock) -> None:
    cursor = last_cursor(salesforce)
    since = clock() - timedelta(minutes=1)
    victims = read_all(salesforce, None)[:3]
    assert all(r.success for r in salesforce.write([WriteOp("Lead", "delete", crm_id=i) for i in victims]))
    pages = list(salesforce.read("Lead", FIELDS, cursor))
    assert sorted(i for p in pages for i in p.deleted_ids) == sorted(victims)
    assert not any(r["Id"] in victims for p in pages for r in p.records)
    assert sorted(salesforce.read_deleted("Lead", since)) == sorted(victims)


def test_owner_set_by_relay_survives_the_org_assignment_rules(salesforce: SalesforceAdapter) -> None:
    owner = next(u for u in salesforce.owners() if u["Email"].startswith("emma.rossi"))
    created = salesforce.write([WriteOp("Lead", "create", {"LastName": "Kim", "Company": "Globex",
                                                           "OwnerId": owner["Id"]})])[0]
    assert created.success
    stored = next(r for p in salesforce.read("Lead", ["OwnerId"], None) for r in p.records if r["Id"] == created.crm_id)
    assert stored["OwnerId"] == owner["Id"]


def test_owners_include_inactive_users(salesforce: SalesforceAdapter) -> None:
    users = salesforce.owners()
    lucas = next(u for u in users if str(u["Email"]).startswith("lucas.silva"))
    assert lucas["IsActive"] is False
    assert {"Id", "FirstName", "LastName", "Email", "IsActive"} <= set(lucas)


def test_task_upserts_by_idempotency_key_land_once(salesforce: SalesforceAdapter) -> None:
    lead = salesforce.write(new_leads(1))[0]
    op = WriteOp("Task", "upsert", {"Subject": "Call within 5 minutes", "WhoId": lead.crm_id, "Status": "Not Started",
                                    "Relay_Idempotency_Key__c": "task-lead-1"},
                 external_id_field="Relay_Idempotency_Key__c", idempotency_key="task-lead-1")
    first, again = salesforce.write([op])[0], salesforce.write([op])[0]
    assert first.success and first.created
    assert again.success and not again.created and again.crm_id == first.crm_id


def test_ensure_fields_names_every_missing_custom_field(salesforce: SalesforceAdapter) -> None:
    assert salesforce.ensure_fields("Lead", ["Relay_Score__c", "Relay_Id__c"]) == []
    with pytest.raises(ConfigurationError) as caught:
        salesforce.ensure_fields("Lead", ["Relay_Score__c", "Relay_Mood__c", "Relay_Color__c"])
    assert caught.value.fields == ("Relay_Mood__c", "Relay_Color__c")
    assert "Setup" in str(caught.value)


def test_unknown_fields_in_a_read_are_a_configuration_error(salesforce: SalesforceAdapter) -> None:
    with pytest.raises(ConfigurationError, match="Nope__c"):
        list(salesforce.read("Lead", ["Nope__c"], None))


def test_api_usage_is_read_from_sforce_limit_info(salesforce: SalesforceAdapter) -> None:
    read_all(salesforce, None)
    usage = salesforce.api_usage
    assert usage is not None and usage[1] == 100_000 and usage[0] >= 1


@pytest.mark.parametrize("size", [199, 2001])
def test_page_sizes_outside_salesforce_bounds_are_refused(salesforce: SalesforceAdapter, size: int) -> None:
    with pytest.raises(ConfigurationError, match=r"200\.\.2000"):
        list(salesforce.read("Lead", FIELDS, None, page_size=size))


def test_bad_instance_urls_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="instance_url"):
        SalesforceAdapter("sf", "yourorg.my.salesforce.com", "id", "secret")


def test_large_full_reads_go_through_bulk_and_match_rest(sf_url: str, sf_sandbox: SalesforceSandbox,
                                                         policy: RetryPolicy) -> None:
    rest = SalesforceAdapter("sf", sf_url, "sandbox", "sandbox", retry=policy, bulk_threshold=None)
    bulk = SalesforceAdapter("sf", sf_url, "sandbox", "sandbox", retry=policy, bulk_threshold=5)
    fields = [*FIELDS, "IsConverted", "NumberOfEmployees", "AnnualRevenue", "HasOptedOutOfEmail", "Page_Views__c"]
    rest.write(new_leads(30, "bulk"))
    rest_pages = list(rest.read("Lead", fields, None))
    sandbox_admin(sf_url, "DELETE", "ledger")
    bulk_pages = list(bulk.read("Lead", fields, None))
    paths = [e["path"] for e in sandbox_admin(sf_url, "GET", "ledger")["entries"]]
    assert any("/jobs/query" in p for p in paths), "the bulk path was not taken"
    by_id = {r["Id"]: r for p in rest_pages for r in p.records}
    bulk_records = [r for p in bulk_pages for r in p.records]
    assert {r["Id"] for r in bulk_records} == set(by_id)
    for record in bulk_records:
        expected = by_id[record["Id"]]
        for name in fields:
            assert record[name] == expected[name], f"{record['Id']}.{name}: bulk {record[name]!r} vs REST {expected[name]!r}"
    assert all(p.cursor is None for p in bulk_pages[:-1])
    assert bulk_pages[-1].cursor == rest_pages[-1].cursor
    assert bulk.calls.get("bulk") >= 2 and bulk.calls.get("describe") == 1
