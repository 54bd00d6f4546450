"""The calls every run makes whatever changed: the token, the owners, one query per object (issue 8).

Against the sandboxes over real HTTP, counted in their ledgers: an adapter built later in the
same process reuses the org's token and owners list within their time to live, and the first
pages of a run's reads come in one Composite call that serves exactly what the reads would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pytest

from connector.adapters.base import Cursor, Page, WriteOp
from connector.adapters.cache import PROCESS_CACHES, SharedCaches
from connector.adapters.errors import AuthError, ConfigurationError
from connector.adapters.retry import RetryPolicy
from connector.crms.factory import build_adapter
from connector.crms.hubspot.adapter import HubSpotAdapter
from connector.crms.hubspot.settings import HubSpotConnection
from connector.crms.salesforce.adapter import SalesforceAdapter
from connector.crms.salesforce.settings import SalesforceConnection
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.hubspot.owners import default_owners
from crm_sandbox.ids import salesforce_id
from crm_sandbox.salesforce import SalesforceSandbox

from ._sandbox_helpers import ManualClock, sandbox_admin

LEAD_FIELDS = ["FirstName", "LastName", "Email", "Company", "OwnerId", "Status"]
CONTACT_FIELDS = ["FirstName", "LastName", "Email", "AccountId"]
ACCOUNT_FIELDS = ["Name", "OwnerId"]
TOKEN_PATH = "/services/oauth2/token"


class Seconds:
    """A hand-moved monotonic clock for the caches' time to live."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@pytest.fixture
def seconds() -> Seconds:
    return Seconds()


@pytest.fixture
def caches(seconds: Seconds) -> SharedCaches:
    return SharedCaches(clock=seconds)


@pytest.fixture(autouse=True)
def _fresh_process_caches() -> Iterator[None]:
    # Sandboxes listen on ephemeral ports, which a later test may get again: nothing carries over.
    PROCESS_CACHES.clear()
    yield
    PROCESS_CACHES.clear()


def sf_adapter(url: str, policy: RetryPolicy, clock: ManualClock, caches: SharedCaches, **kwargs: Any) -> SalesforceAdapter:
    return SalesforceAdapter("salesforce", url, "sandbox", "sandbox", retry=policy, clock=clock,
                             read_lag=timedelta(0), caches=caches, **kwargs)


def hs_adapter(url: str, policy: RetryPolicy, clock: ManualClock, caches: SharedCaches, **kwargs: Any) -> HubSpotAdapter:
    return HubSpotAdapter("hubspot", url, "sandbox-token", retry=policy, search_overlap=timedelta(0),
                          searches_per_second=10_000, clock=clock, read_lag=timedelta(0), caches=caches, **kwargs)


def ledger(url: str) -> list[dict[str, Any]]:
    """The sandbox's ledger, asked through its admin endpoint: after the calls before it have been recorded."""
    entries: list[dict[str, Any]] = sandbox_admin(url, "GET", "ledger")["entries"]
    return entries


def reset(url: str) -> None:
    sandbox_admin(url, "DELETE", "ledger")


def entries(url: str, path: str = "") -> list[dict[str, Any]]:
    return [e for e in ledger(url) if path in e["path"]]


def composite_calls(url: str) -> list[dict[str, Any]]:
    return [e for e in ledger(url) if e["path"].endswith("/composite")]


def data_paths(url: str) -> list[str]:
    """The REST calls the ledger holds (token requests left out)."""
    return [e["path"] for e in ledger(url) if e["path"].startswith("/services/data/")]


def pages_as_data(pages: list[Page]) -> list[dict[str, Any]]:
    return [asdict(page) for page in pages]


def lead_cursor_after(adapter: SalesforceAdapter, count: int) -> Cursor:
    """The cursor after the first ``count`` Leads in read order."""
    records = [r for page in adapter.read("Lead", LEAD_FIELDS, None, page_size=200) for r in page.records]
    record = records[count - 1]
    return Cursor.from_json({"last_modified": record["SystemModstamp"], "last_id": record["Id"]})


# --- a second adapter in the process: no token call, no owners call ----------------------------


def test_a_second_salesforce_adapter_of_the_process_reuses_the_token_and_the_owners(
    sf_sandbox: SalesforceSandbox, sf_url: str, policy: RetryPolicy
) -> None:
    settings = SalesforceConnection.model_validate({
        "kind": "salesforce", "base_url": sf_url, "credentials": {"client_id": "sandbox", "client_secret": "sandbox"}})
    first = build_adapter("salesforce", settings, retry=policy)
    owners = first.owners()
    assert list(first.read("Lead", LEAD_FIELDS, None))
    first.close()
    assert len(entries(sf_url, TOKEN_PATH)) == 1
    reset(sf_url)

    second = build_adapter("salesforce", settings, retry=policy)  # the next run of the worker
    assert second.owners() == owners
    leads = [r for page in second.read("Lead", LEAD_FIELDS, None) for r in page.records]
    assert leads
    assert [e["path"] for e in ledger(sf_url)] == ["/services/data/v59.0/queryAll/"]  # the Lead read only
    assert second.calls.by_kind() == {"read": 1}


def test_a_second_hubspot_adapter_of_the_process_reuses_the_owners(
    hs_sandbox: HubSpotSandbox, hs_url: str, policy: RetryPolicy
) -> None:
    settings = HubSpotConnection.model_validate({
        "kind": "hubspot", "base_url": hs_url, "credentials": {"access_token": "sandbox-token"}})
    owners = build_adapter("hubspot", settings, retry=policy).owners()
    assert len(entries(hs_url, "/crm/v3/owners")) == 2  # active, then archived
    reset(hs_url)

    assert build_adapter("hubspot", settings, retry=policy).owners() == owners
    assert ledger(hs_url) == []


# --- time to live -------------------------------------------------------------------------------


def test_salesforce_owners_are_read_again_once_their_time_to_live_has_passed(
    sf_sandbox: SalesforceSandbox, sf_url: str, policy: RetryPolicy, clock: ManualClock, caches: SharedCaches,
    seconds: Seconds,
) -> None:
    def owners() -> list[str]:
        return [str(u["Username"]) for u in sf_adapter(sf_url, policy, clock, caches, owners_cache_seconds=300).owners()]

    before = owners()
    sf_sandbox.load_seed({"User": [{"Id": salesforce_id("005", 901), "Username": "nina.park@northwind.example",
                                    "FirstName": "Nina", "LastName": "Park", "Email": "nina.park@northwind.example",
                                    "IsActive": True}]})
    reset(sf_url)
    seconds.advance(299)
    assert owners() == before  # within the time to live: the new rep is not seen yet, and nothing is asked
    assert entries(sf_url, "/services/data/") == []

    seconds.advance(2)
    after = owners()
    assert "nina.park@northwind.example" in after and len(after) == len(before) + 1
    assert len(entries(sf_url, "/services/data/v59.0/query")) == 1


def test_hubspot_owners_are_read_again_once_their_time_to_live_has_passed(
    hs_sandbox: HubSpotSandbox, hs_url: str, policy: RetryPolicy, clock: ManualClock, caches: SharedCaches,
    seconds: Seconds,
) -> None:
    def emails() -> list[str]:
        return [str(o["email"]) for o in hs_adapter(hs_url, policy, clock, caches, owners_cache_seconds=60).owners()]

    before = emails()
    added = {**default_owners()[0], "id": "75009999", "email": "nina.park@northwind.example", "userId": 9_009_999,
             "userIdIncludingInactive": 9_009_999, "archived": False}
    hs_sandbox.state.set_owners([*default_owners(), added])
    reset(hs_url)
    seconds.advance(59)
    assert emails() == before
    assert ledger(hs_url) == []
    seconds.advance(1)
    assert "nina.park@northwind.example" in emails()
    assert len(entries(hs_url, "/crm/v3/owners")) == 2


def test_a_zero_time_to_live_reads_the_owners_every_time(
    sf_sandbox: SalesforceSandbox, sf_url: str, policy: RetryPolicy, clock: ManualClock, caches: SharedCaches
) -> None:
    adapter = sf_adapter(sf_url, policy, clock, caches, owners_cache_seconds=0)
    adapter.owners()
    adapter.owners()
    sf_adapter(sf_url, policy, clock, caches, owners_cache_seconds=0).owners()
    assert adapter.calls.get("owners") == 2
    assert len(caches.owners) == 0


def test_an_expired_shared_token_is_asked_for_again(
    sf_sandbox: SalesforceSandbox, sf_url: str, policy: RetryPolicy, clock: ManualClock, caches: SharedCaches,
    seconds: Seconds,
) -> None:
    sf_adapter(sf_url, policy, clock, caches, token_cache_seconds=600).authenticate()
    seconds.advance(599)
    within = sf_adapter(sf_url, policy, clock, caches, token_cache_seconds=600)
    assert list(within.read("Account", ACCOUNT_FIELDS, None))
    assert within.calls.get("auth") == 0
    seconds.advance(1)
    after = sf_adapter(sf_url, policy, clock, caches, token_cache_seconds=600)
    assert list(after.read("Account", ACCOUNT_FIELDS, None))
    assert after.calls.by_kind() == {"auth": 1, "read": 1}
    assert len(entries(sf_url, TOKEN_PATH)) == 2


def test_a_refused_shared_token_is_renewed_once_and_replaced(
    sf_sandbox: SalesforceSandbox, sf_url: str, policy: RetryPolicy, clock: ManualClock, caches: SharedCaches
) -> None:
    sf_adapter(sf_url, policy, clock, caches, token_cache_seconds=3600).authenticate()
    clock.advance(hours=3)  # the org's session lasts 2 hours: it refuses the shared token
    reset(sf_url)

    renewing = sf_adapter(sf_url, policy, clock, caches, token_cache_seconds=3600)
    assert list(renewing.read("Account", ACCOUNT_FIELDS, None))
    assert renewing.calls.by_kind() == {"auth": 1, "read": 2}
    assert [e["status"] for e in ledger(sf_url)] == [401, 200, 200]

    reset(sf_url)
    following = sf_adapter(sf_url, policy, clock, caches, token_cache_seconds=3600)
    assert list(following.read("Account", ACCOUNT_FIELDS, None))
    assert following.calls.by_kind() == {"read": 1}  # the renewed token replaced the refused one
    assert [e["status"] for e in ledger(sf_url)] == [200]


def test_tokens_are_shared_only_by_the_same_app_and_user(
    sf_sandbox: SalesforceSandbox, sf_url: str, policy: RetryPolicy, clock: ManualClock, caches: SharedCaches
) -> None:
    sf_adapter(sf_url, policy, clock, caches, token_cache_seconds=3600).authenticate()
    as_user = sf_adapter(sf_url, policy, clock, caches, token_cache_seconds=3600,
                         username="admin@sandbox.example", password="sandbox")
    assert list(as_user.read("Account", ACCOUNT_FIELDS, None))
    assert as_user.calls.get("auth") == 1
    wrong = SalesforceAdapter("salesforce", sf_url, "sandbox", "not-the-secret", retry=policy, caches=caches,
                              token_cache_seconds=3600)
    with pytest.raises(AuthError, match="invalid_client"):
        list(wrong.read("Account", ACCOUNT_FIELDS, None))
    assert wrong.calls.get("auth") == 1


# --- one Composite call for the first pages ---------------------------------------------------------


@pytest.fixture
def org(sf_sandbox: SalesforceSandbox, sf_url: str, salesforce: SalesforceAdapter) -> SalesforceSandbox:
    """The seed plus 450 Leads: at 200 a page, Lead reads take three pages."""
    created = salesforce.write([WriteOp("Lead", "create", {"LastName": f"n{i}", "Company": "Acme Corp",
                                                           "Email": f"n{i}@acme.example"}) for i in range(450)])
    assert all(r.success for r in created)
    reset(sf_url)
    return sf_sandbox


def reads_of_a_run(salesforce: SalesforceAdapter) -> list[tuple[str, list[str], Cursor | None]]:
    """A full Lead read (three pages), an incremental one (two), Contacts (one) and Accounts after the last (none)."""
    accounts = list(salesforce.read("Account", ACCOUNT_FIELDS, None))
    assert accounts[-1].cursor is not None
    return [("Lead", LEAD_FIELDS, None), ("Lead", LEAD_FIELDS, lead_cursor_after(salesforce, 100)),
            ("Contact", CONTACT_FIELDS, None), ("Account", ACCOUNT_FIELDS, accounts[-1].cursor)]


@pytest.mark.parametrize("combined_first", [True, False], ids=["combined-then-apart", "apart-then-combined"])
def test_combined_first_pages_serve_exactly_what_the_reads_return(
    org: SalesforceSandbox, sf_url: str, policy: RetryPolicy, clock: ManualClock, caches: SharedCaches,
    salesforce: SalesforceAdapter, combined_first: bool,
) -> None:
    reads = reads_of_a_run(salesforce)

    def apart() -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]:
        adapter = sf_adapter(sf_url, policy, clock, caches)
        return [pages_as_data(list(adapter.read(o, f, c, page_size=200))) for o, f, c in reads], adapter.owners()

    def combined() -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]:
        adapter = sf_adapter(sf_url, policy, clock, caches)
        adapter.prepare_reads(reads, page_size=200)
        owners = adapter.owners()
        pages = [pages_as_data(list(adapter.read(o, f, c, page_size=200))) for o, f, c in reads]
        assert adapter.calls.by_kind() == {"auth": 1, "read": 1 + 2 + 1}  # the Composite call, then the next pages
        return pages, owners

    reset(sf_url)
    first, second = (combined, apart) if combined_first else (apart, combined)
    got_first, got_second = first(), second()
    assert got_first == got_second
    pages, owners = got_first
    assert [len(p) for p in pages] == [3, 2, 1, 0] and len(owners) > 1

    composite = composite_calls(sf_url)
    assert [(e["method"], e["path"], e["status"], e["kind"]) for e in composite] == [
        ("POST", "/services/data/v59.0/composite", 200, "composite")]
    contacts = pages[2][0]
    assert composite[0]["records_read"] == 200 + 200 + len(contacts["records"]) + len(contacts["deleted_ids"]) + len(owners)


def test_a_refused_query_is_its_objects_error_when_read(
    org: SalesforceSandbox, sf_url: str, policy: RetryPolicy, clock: ManualClock, caches: SharedCaches
) -> None:
    direct = sf_adapter(sf_url, policy, clock, caches)
    with pytest.raises(ConfigurationError) as apart:
        list(direct.read("Lead", ["Nope__c"], None))

    adapter = sf_adapter(sf_url, policy, clock, caches)
    adapter.prepare_reads([("Lead", ["Nope__c"], None), ("Contact", CONTACT_FIELDS, None)])
    reset(sf_url)
    assert [r["Email"] for page in adapter.read("Contact", CONTACT_FIELDS, None) for r in page.records]
    with pytest.raises(ConfigurationError) as combined:
        list(adapter.read("Lead", ["Nope__c"], None))
    assert ledger(sf_url) == []  # both answered by the Composite call
    assert (combined.value.code, combined.value.status, combined.value.message, str(combined.value)) == (
        apart.value.code, apart.value.status, apart.value.message, str(apart.value))
    assert combined.value.code == "INVALID_FIELD" and "Nope__c" in combined.value.message


def test_more_than_five_queries_take_one_composite_call_per_five(
    org: SalesforceSandbox, sf_url: str, policy: RetryPolicy, clock: ManualClock, caches: SharedCaches
) -> None:
    reads: list[tuple[str, list[str], Cursor | None]] = [
        ("Lead", LEAD_FIELDS[: n + 1], None) for n in range(4)] + [("Contact", CONTACT_FIELDS, None),
                                                                   ("Account", ACCOUNT_FIELDS, None)]
    adapter = sf_adapter(sf_url, policy, clock, caches)
    adapter.prepare_reads(reads)  # 6 reads and the owners: 5 + 2 queries
    assert len(composite_calls(sf_url)) == 2
    reset(sf_url)
    for object, fields, cursor in reads:
        assert list(adapter.read(object, fields, cursor))
    assert adapter.owners()
    assert ledger(sf_url) == []


def test_a_read_that_differs_from_the_prepared_one_queries_on_its_own(
    org: SalesforceSandbox, sf_url: str, policy: RetryPolicy, clock: ManualClock, caches: SharedCaches
) -> None:
    adapter = sf_adapter(sf_url, policy, clock, caches)
    adapter.prepare_reads([("Contact", CONTACT_FIELDS, None), ("Account", ACCOUNT_FIELDS, None)])
    reset(sf_url)
    assert list(adapter.read("Contact", CONTACT_FIELDS, None, page_size=500))  # another page size
    assert list(adapter.read("Account", ACCOUNT_FIELDS, None))
    assert list(adapter.read("Account", ACCOUNT_FIELDS, None))  # a prepared page serves once
    assert data_paths(sf_url) == ["/services/data/v59.0/queryAll/"] * 2


def test_with_cached_owners_only_the_reads_are_combined(
    org: SalesforceSandbox, sf_url: str, policy: RetryPolicy, clock: ManualClock, caches: SharedCaches
) -> None:
    sf_adapter(sf_url, policy, clock, caches, owners_cache_seconds=300).owners()
    adapter = sf_adapter(sf_url, policy, clock, caches, owners_cache_seconds=300)
    reset(sf_url)
    adapter.prepare_reads([("Contact", CONTACT_FIELDS, None)])  # one query: no Composite call is worth it
    assert adapter.owners()
    assert list(adapter.read("Contact", CONTACT_FIELDS, None))
    assert data_paths(sf_url) == ["/services/data/v59.0/queryAll/"]


def test_an_api_version_without_composite_reads_each_object_on_its_own(
    org: SalesforceSandbox, sf_url: str, policy: RetryPolicy, clock: ManualClock, caches: SharedCaches
) -> None:
    adapter = SalesforceAdapter("salesforce", sf_url, "sandbox", "sandbox", "37.0", retry=policy, clock=clock,
                                read_lag=timedelta(0), caches=caches)
    adapter.prepare_reads([("Contact", CONTACT_FIELDS, None), ("Account", ACCOUNT_FIELDS, None)])
    assert adapter.calls.total == 0
    assert list(adapter.read("Contact", CONTACT_FIELDS, None))
    assert composite_calls(sf_url) == []

