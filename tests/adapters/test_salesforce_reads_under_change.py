"""Salesforce reads while the org keeps changing, and answers that are not what the API promises.

Over real HTTP against the sandbox org; answers the sandbox cannot give (HTML with 200, error
lists with 200, page links that repeat, rows without ids) come from a proxy in front of it
that rewrites its real answers (:mod:`._tamper`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from simple_salesforce import Salesforce

from connector.adapters._paging import PagingStuckError
from connector.adapters.base import Cursor, WriteOp
from connector.adapters.errors import FatalError, RetriableError
from connector.adapters.retry import RetryPolicy
from connector.crms.salesforce.adapter import SalesforceAdapter
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.seed import SeedData

from ._sandbox_helpers import ManualClock, Waits
from ._tamper import Tamper, serve

FIELDS = ["FirstName", "LastName", "Email", "Company", "OwnerId", "Status"]


def new_leads(count: int, tag: str) -> list[WriteOp]:
    return [WriteOp("Lead", "create", {"LastName": f"{tag}{i}", "Company": "Acme Corp", "Email": f"{tag}{i}@acme.example"})
            for i in range(count)]


def sdk(sandbox: SalesforceSandbox) -> Salesforce:
    """simple-salesforce straight at the sandbox: how a rep's edits reach the org."""
    from crm_sandbox.salesforce.transport import sandbox_session

    assert sandbox.server is not None
    return Salesforce(instance_url="https://sandbox", session_id=sandbox.access_token(),
                      session=sandbox_session(sandbox.server.url), version="59.0")


def checkpoint(adapter: SalesforceAdapter, cursor: Cursor | None = None) -> Cursor:
    pages = list(adapter.read("Lead", FIELDS, cursor, page_size=200))
    assert pages and pages[-1].cursor is not None
    return pages[-1].cursor


def lead_ids(pages: Any) -> list[str]:
    return [r["Id"] for page in pages for r in page.records]


@pytest.fixture
def tampered(seed: SeedData, clock: ManualClock) -> Iterator[tuple[Tamper, str]]:
    sandbox = SalesforceSandbox(seed, clock=clock)
    tamper, server = serve(sandbox.app)
    try:
        yield tamper, server.url
    finally:
        server.stop()


@pytest.fixture
def proxied(tampered: tuple[Tamper, str], policy: RetryPolicy, clock: ManualClock) -> SalesforceAdapter:
    return SalesforceAdapter("salesforce", tampered[1], "sandbox", "sandbox", retry=policy, clock=clock,
                             read_lag=timedelta(0))


# --- defect 1: a change made during a read is never lost ----------------------------------------


def test_an_edit_behind_the_read_is_delivered_by_the_next_read(
    salesforce: SalesforceAdapter, sf_sandbox: SalesforceSandbox, clock: ManualClock
) -> None:
    before = checkpoint(salesforce)
    clock.advance(seconds=1)
    created = sorted(str(r.crm_id) for r in salesforce.write(new_leads(450, "mid")))
    rep = sdk(sf_sandbox)

    reading = salesforce.read("Lead", FIELDS, before, page_size=200)
    first = next(reading)
    lead_a = first.records[0]["Id"]  # read already
    lead_b = created[-1]  # in the third page, not read yet
    assert lead_b not in lead_ids([first])
    clock.advance(seconds=1)
    rep.Lead.update(lead_a, {"Title": "edited after its page was read"})
    clock.advance(milliseconds=50)
    rep.Lead.update(lead_b, {"Title": "edited before its page was read"})
    pages = [first, *reading]

    assert [len(p.records) for p in pages] == [200, 200, 50]
    last = pages[-1].cursor
    assert last is not None
    again = list(salesforce.read("Lead", [*FIELDS, "Title"], Cursor.from_json(last.to_json()), page_size=200))
    titles = {r["Id"]: r["Title"] for r in (rec for p in again for rec in p.records)}
    assert titles.get(lead_a) == "edited after its page was read"
    assert titles.get(lead_b) == "edited before its page was read"
    assert set(created) <= set(lead_ids(pages)) | set(titles)


def test_no_page_cursor_passes_the_high_water_mark(
    salesforce: SalesforceAdapter, sf_sandbox: SalesforceSandbox, clock: ManualClock
) -> None:
    before = checkpoint(salesforce)
    clock.advance(seconds=1)
    created = sorted(str(r.crm_id) for r in salesforce.write(new_leads(450, "hwm")))
    started = clock()
    reading = salesforce.read("Lead", FIELDS, before, page_size=200)
    first = next(reading)
    clock.advance(minutes=5)  # within the query locator's life
    sdk(sf_sandbox).Lead.update(created[-1], {"Title": "five minutes later"})
    pages = [first, *reading]
    assert all(p.cursor is not None and p.cursor.last_modified <= started for p in pages)


def test_a_change_within_the_read_lag_waits_for_the_next_read(
    sf_url: str, policy: RetryPolicy, clock: ManualClock
) -> None:
    adapter = SalesforceAdapter("salesforce", sf_url, "sandbox", "sandbox", retry=policy, clock=clock,
                                read_lag=timedelta(seconds=30))
    before = checkpoint(adapter)
    fresh = str(adapter.write(new_leads(1, "fresh"))[0].crm_id)
    pages = list(adapter.read("Lead", FIELDS, before, page_size=200))
    assert fresh not in lead_ids(pages)
    assert all(p.cursor is None or p.cursor <= before or p.cursor.last_modified < clock() for p in pages)
    clock.advance(seconds=31)
    assert fresh in lead_ids(adapter.read("Lead", FIELDS, before, page_size=200))


def test_the_org_clock_comes_from_the_date_header_of_its_answers(sf_url: str, policy: RetryPolicy) -> None:
    adapter = SalesforceAdapter("salesforce", sf_url, "sandbox", "sandbox", retry=policy)
    assert adapter.server_clock.offset is None
    adapter.owners()
    offset = adapter.server_clock.offset
    assert offset is not None and abs(offset) < timedelta(seconds=5)  # the sandbox's Date is this machine's time
    assert abs(adapter.server_clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


# --- defect 2: a page link that repeats is not followed forever -----------------------------------


def test_a_repeated_next_records_url_fails_the_read_naming_the_link(
    proxied: SalesforceAdapter, tampered: tuple[Tamper, str], clock: ManualClock
) -> None:
    tamper, _ = tampered
    clock.advance(seconds=1)
    proxied.write(new_leads(450, "loop"))
    first_links: list[str] = []

    def same_link(answer: Any, target: str) -> Any:
        if answer.get("nextRecordsUrl"):
            first_links.append(answer["nextRecordsUrl"])
            answer["nextRecordsUrl"] = first_links[0]
        return answer

    tamper.add(r"/query(All)?/", same_link)
    with pytest.raises(PagingStuckError) as caught:
        list(proxied.read("Lead", FIELDS, None, page_size=200))
    assert caught.value.code == "PAGING_STUCK" and isinstance(caught.value, FatalError)
    assert "query Lead" in str(caught.value) and first_links[0] in str(caught.value)


def test_done_false_without_a_next_link_is_an_error_not_the_end(
    proxied: SalesforceAdapter, tampered: tuple[Tamper, str], clock: ManualClock
) -> None:
    tamper, _ = tampered
    clock.advance(seconds=1)
    proxied.write(new_leads(450, "cut"))
    tamper.add(r"/query(All)?/", lambda answer, _: {k: v for k, v in answer.items() if k != "nextRecordsUrl"})
    with pytest.raises(FatalError, match="no nextRecordsUrl"):
        list(proxied.read("Lead", FIELDS, None, page_size=200))


# --- defect 3: malformed answers are classified ---------------------------------------------------


MAINTENANCE = b"<html><body><h1>Down for maintenance</h1></body></html>"


def test_an_html_page_with_200_is_retried_and_the_read_goes_on(
    proxied: SalesforceAdapter, tampered: tuple[Tamper, str], seed: SeedData, waits: Waits
) -> None:
    tampered[0].add(r"/queryAll/", lambda answer, _: MAINTENANCE, times=1)
    live = {r["Id"] for r in seed.salesforce["Lead"] if not r.get("IsDeleted")}
    assert set(lead_ids(proxied.read("Lead", FIELDS, None))) == live
    assert len(waits) == 1


def test_non_json_that_persists_is_a_retriable_error_in_salesforce_words(
    proxied: SalesforceAdapter, tampered: tuple[Tamper, str]
) -> None:
    tampered[0].add(r"/queryAll/", lambda answer, _: b'{"totalSize": 3, "done": true, "records": [{"Id": "00Q')
    with pytest.raises(RetriableError, match="Salesforce answered non-JSON") as caught:
        list(proxied.read("Lead", FIELDS, None))
    assert caught.value.code == "MALFORMED_ANSWER" and caught.value.attempts == 6


def test_an_error_list_with_200_is_fatal_and_names_the_code(
    proxied: SalesforceAdapter, tampered: tuple[Tamper, str], waits: Waits
) -> None:
    tampered[0].add(r"/queryAll/", lambda answer, _: [{"message": "Server busy", "errorCode": "SERVER_UNAVAILABLE"}])
    with pytest.raises(FatalError, match="Salesforce answered an error with 200: SERVER_UNAVAILABLE Server busy"):
        list(proxied.read("Lead", FIELDS, None))
    assert waits == []


@pytest.mark.parametrize("records", [None, {"Id": "00Q"}, "rows", [["00Q"]]])
def test_a_query_answer_without_a_records_list_is_fatal(
    proxied: SalesforceAdapter, tampered: tuple[Tamper, str], records: Any
) -> None:
    tampered[0].add(r"/queryAll/", lambda answer, _: {**answer, "records": records})
    with pytest.raises(FatalError, match="unexpected") as caught:
        list(proxied.read("Lead", FIELDS, None))
    assert caught.value.code == "UNEXPECTED_ANSWER"


def test_a_write_answer_that_is_not_a_list_fails_each_record_clearly(
    proxied: SalesforceAdapter, tampered: tuple[Tamper, str]
) -> None:
    tampered[0].add(r"/composite/sobjects", lambda answer, _: {"ok": True}, method="POST")
    results = proxied.write(new_leads(2, "odd"))
    assert [r.success for r in results] == [False, False]
    assert all(r.error is not None and r.error.code == "UNEXPECTED_ANSWER" and "not a list" in r.error.message
               for r in results)


def test_a_write_answered_with_html_is_not_sent_twice(
    proxied: SalesforceAdapter, tampered: tuple[Tamper, str], sf_url: str
) -> None:
    tampered[0].add(r"/composite/sobjects", lambda answer, _: MAINTENANCE, method="POST")
    results = proxied.write(new_leads(1, "once"))
    assert results[0].error is not None and results[0].error.code == "MALFORMED_ANSWER"
    tampered[0].clear()
    assert lead_ids(proxied.read("Lead", ["LastName"], None)).count  # the read works again
    found = [r for p in proxied.read("Lead", ["LastName"], None) for r in p.records if r["LastName"] == "once0"]
    assert len(found) == 1


# --- defect 4: bad rows reach the pipeline and do not move the cursor -------------------------------


def test_rows_without_id_or_with_a_bad_stamp_are_delivered_and_do_not_move_the_cursor(
    proxied: SalesforceAdapter, tampered: tuple[Tamper, str]
) -> None:
    def spoil(answer: Any, _: str) -> Any:
        rows = answer["records"]
        rows[-1]["SystemModstamp"] = "not a time"
        del rows[-2]["Id"]
        rows[-3]["SystemModstamp"] = "0001-01-01T00:00:00.000+0100"
        return answer

    tampered[0].add(r"/queryAll/", spoil, times=1)
    pages = list(proxied.read("Lead", FIELDS, None))
    rows = [r for p in pages for r in p.records]
    assert sum(1 for r in rows if "Id" not in r) == 1
    assert {r.get("SystemModstamp") for r in rows} >= {"not a time", "0001-01-01T00:00:00.000+0100"}
    good = [r for r in rows[:-3]]
    cursor = pages[-1].cursor
    assert cursor is not None and cursor.last_id == good[-1]["Id"]


def test_a_deleted_row_without_id_goes_to_records_not_deleted_ids(
    proxied: SalesforceAdapter, tampered: tuple[Tamper, str]
) -> None:
    def spoil(answer: Any, _: str) -> Any:
        answer["records"][0]["IsDeleted"] = True
        del answer["records"][0]["Id"]
        return answer

    tampered[0].add(r"/queryAll/", spoil, times=1)
    pages = list(proxied.read("Lead", FIELDS, None))
    assert all(i for p in pages for i in p.deleted_ids)
    assert any("Id" not in r and r.get("IsDeleted") for p in pages for r in p.records)


# --- defect 5: field names checked against the org ------------------------------------------------


def test_check_fields_names_the_fields_the_org_lacks(salesforce: SalesforceAdapter) -> None:
    assert salesforce.check_fields("Lead", ["Email", "email", "Owner.Name", "LastName"]) == []
    assert salesforce.check_fields("Lead", ["Emial", "Company", "Ownr.Name", "No_Such__c"]) == [
        "Emial", "Ownr.Name", "No_Such__c"]
