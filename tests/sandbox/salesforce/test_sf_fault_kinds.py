"""The newer fault kinds of the Salesforce sandbox, seen through simple-salesforce and raw HTTP."""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from typing import Any

import httpx
import pytest
import requests
from simple_salesforce import Salesforce

from crm_sandbox.ids import salesforce_id
from crm_sandbox.salesforce import SalesforceSandbox

STAMP = "2026-03-01T00:00:00.000+0000"
QUERY = "SELECT Id, Name, AnnualRevenue, SystemModstamp FROM Account ORDER BY Id"


def _accounts(box: SalesforceSandbox, count: int) -> list[str]:
    records = [
        {
            "Id": salesforce_id("001", 20_000 + i),
            "Name": f"Account {i}",
            "AnnualRevenue": 1000.0 + i,
            "SystemModstamp": STAMP,
            "LastModifiedDate": STAMP,
            "CreatedDate": STAMP,
        }
        for i in range(count)
    ]
    box.load_seed({"Account": records})
    return [r["Id"] for r in records]


def _faults(box: SalesforceSandbox, settings: dict[str, Any]) -> None:
    assert box.server is not None
    answer = httpx.put(f"{box.server.url}/__sandbox/faults", json=settings)
    assert answer.status_code == HTTPStatus.OK, answer.text


def _ledger(box: SalesforceSandbox) -> list[dict[str, Any]]:
    assert box.server is not None
    entries: list[dict[str, Any]] = httpx.get(f"{box.server.url}/__sandbox/ledger").json()["entries"]
    return entries


def _names(sf: Salesforce, name: str) -> list[str]:
    return [r["Id"] for r in sf.query(f"SELECT Id FROM Account WHERE Name = '{name}'")["records"]]


def _raw_query(box: SalesforceSandbox, sf: Salesforce, soql: str) -> requests.Response:
    assert box.server is not None
    return sf.session.get(
        f"https://sandbox.my.salesforce.com/services/data/v59.0/query?q={soql}",
        headers={"Authorization": f"Bearer {sf.session_id}"},
    )


def test_lost_after_apply_create_lands_but_client_sees_a_connection_error(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    _faults(sandbox, {"script": [{"fault": "lost_after_apply", "path": "/sobjects/Account/?$", "method": "POST"}]})
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.Account.create({"Name": "Lost Answer Co"})
    assert len(_names(sf, "Lost Answer Co")) == 1
    lost = [e for e in _ledger(sandbox) if e["fault"] == "lost_after_apply"]
    assert [(e["method"], e["status"], e["records_written"]) for e in lost] == [("POST", 0, 1)]


def test_lost_after_apply_on_a_read_drops_after_computing(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    _accounts(sandbox, 3)
    _faults(sandbox, {"script": [{"fault": "lost_after_apply", "path": "/query"}]})
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.query(QUERY)
    entry = next(e for e in _ledger(sandbox) if e["fault"] == "lost_after_apply")
    assert (entry["status"], entry["records_read"]) == (0, 3)
    assert sf.query(QUERY)["totalSize"] == 3


def test_held_create_times_out_the_client_yet_lands(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    _faults(sandbox, {"hold_seconds": 60, "script": [{"fault": "hold", "method": "POST"}]})
    assert sandbox.server is not None
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf.session.post(
            "https://sandbox.my.salesforce.com/services/data/v59.0/sobjects/Account",
            json={"Name": "Held Co"},
            headers={"Authorization": f"Bearer {sf.session_id}"},
            timeout=1,
        )
    assert len(_names(sf, "Held Co")) == 1


def test_hold_does_not_block_other_requests_and_ends_when_the_server_stops(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    _accounts(sandbox, 2)
    _faults(sandbox, {"hold_seconds": 600, "script": [{"fault": "hold", "path": "/query"}]})
    assert sandbox.server is not None
    url = f"{sandbox.server.url}/services/data/v59.0/query"
    token = sf.session_id
    outcome: dict[str, BaseException | int] = {}

    def held() -> None:
        try:
            answer = httpx.get(url, params={"q": QUERY}, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            outcome["status"] = answer.status_code
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=held)
    worker.start()
    while sandbox.faults.pending() and worker.is_alive():  # until the held request takes the script entry
        worker.join(0.01)
    assert sf.query(QUERY)["totalSize"] == 2
    assert sf.Account.create({"Name": "While Holding"})["success"] is True
    assert worker.is_alive()
    server_thread = sandbox.server._thread
    sandbox.stop()
    worker.join(30)
    assert not worker.is_alive()
    assert server_thread is not None and not server_thread.is_alive()
    assert isinstance(outcome.get("error"), httpx.TransportError) and not isinstance(outcome["error"], httpx.TimeoutException)
    held_entry = next(e for e in sandbox.ledger.as_json()["entries"] if e["fault"] == "hold")
    assert "server stopped" in held_entry["detail"]


def test_slow_request_completes_normally(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    _accounts(sandbox, 2)
    _faults(sandbox, {"slow": 1.0, "slow_ms": [20, 40], "seed": 5})
    assert sf.query(QUERY)["totalSize"] == 2
    entry = _ledger(sandbox)[-1]
    assert entry["fault"] == "slow" and entry["status"] == HTTPStatus.OK
    assert 20 <= int(entry["detail"].split()[1]) <= 40


def test_repeat_page_next_link_of_the_second_page_repeats_the_first_link(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    _accounts(sandbox, 450)
    sf.headers["Sforce-Query-Options"] = "batchSize=200"
    _faults(sandbox, {"script": [{"fault": "repeat_page", "path": r"/query/\w+-\d+"}]})
    first = sf.query(QUERY)
    link = first["nextRecordsUrl"]
    assert link.endswith("-200")
    second = sf.query_more(link, identifier_is_url=True)
    assert second["nextRecordsUrl"] == link
    again = sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)
    assert [r["Id"] for r in again["records"]] == [r["Id"] for r in second["records"]]
    assert again["nextRecordsUrl"].endswith("-400")


def test_repeat_page_on_the_first_page_points_at_its_start(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    _accounts(sandbox, 450)
    sf.headers["Sforce-Query-Options"] = "batchSize=200"
    _faults(sandbox, {"repeat_page": 1.0, "path_pattern": "/query"})
    first = sf.query(QUERY)
    assert first["nextRecordsUrl"].endswith("-0")
    following = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert [r["Id"] for r in following["records"]] == [r["Id"] for r in first["records"]]
    assert following["nextRecordsUrl"] == first["nextRecordsUrl"]  # a naive client never gets past it


def test_repeat_page_waits_for_a_page_with_a_next_link(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    _accounts(sandbox, 250)
    sf.headers["Sforce-Query-Options"] = "batchSize=200"
    _faults(sandbox, {"script": ["repeat_page"]})
    assert sf.Account.create({"Name": "Not A Page"})["success"] is True
    assert sf.query("SELECT Id FROM Account WHERE Name = 'Not A Page'")["done"] is True
    assert sf.query(QUERY)["nextRecordsUrl"].endswith("-0")
    faults = [e["fault"] for e in _ledger(sandbox)]
    assert faults == [None, None, "repeat_page"]


def test_missing_id_on_one_record_of_a_page(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    expected = _accounts(sandbox, 5)
    _faults(sandbox, {"script": [{"fault": "missing_id", "path": "/query"}], "seed": 3})
    records = sf.query(QUERY)["records"]
    without = [r for r in records if "Id" not in r]
    assert len(without) == 1 and "url" not in without[0]["attributes"]
    kept = {r["Id"] for r in records if "Id" in r}
    (lost,) = set(expected) - kept
    assert lost in _ledger(sandbox)[-1]["detail"]


def test_wrong_types_on_one_record_of_a_page(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    _accounts(sandbox, 4)
    _faults(sandbox, {"script": [{"fault": "wrong_types", "path": "/query"}]})
    raw = _raw_query(sandbox, sf, QUERY)
    assert raw.status_code == HTTPStatus.OK
    assert b'"\\ud800"' in raw.content or b'\\ud800"' in raw.content
    records = raw.json()["records"]
    spoiled = [r for r in records if r["SystemModstamp"] == "not-a-date"]
    assert len(spoiled) == 1
    assert spoiled[0]["AnnualRevenue"] == "abc"
    assert spoiled[0]["Name"].endswith("\ud800")
    assert all(isinstance(r["AnnualRevenue"], float) for r in records if r is not spoiled[0])


def test_error_200_answers_the_error_list_and_applies_nothing(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    _faults(sandbox, {"script": [{"fault": "error_200", "method": "POST"}]})
    answer = sf.Account.create({"Name": "Error In 200 Co"})
    assert isinstance(answer, list) and answer[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    assert _names(sf, "Error In 200 Co") == []


def test_invalid_json_and_html_answers(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    _accounts(sandbox, 1)
    _faults(sandbox, {"script": ["invalid_json", "html"]})
    not_json = _raw_query(sandbox, sf, QUERY)
    assert not_json.status_code == HTTPStatus.OK and "json" in not_json.headers["content-type"]
    with pytest.raises(ValueError):
        json.loads(not_json.content)
    with pytest.raises(ValueError):
        sf.query(QUERY)  # the HTML maintenance page
    _faults(sandbox, {"script": ["html"]})
    page = _raw_query(sandbox, sf, QUERY)
    assert page.status_code == HTTPStatus.OK and page.headers["content-type"].startswith("text/html")
    assert "maintenance" in page.text


def test_truncated_body_has_a_matching_content_length_and_the_write_lands(sandbox: SalesforceSandbox, sf: Salesforce) -> None:
    _accounts(sandbox, 30)
    full = _raw_query(sandbox, sf, QUERY).content
    _faults(sandbox, {"script": [{"fault": "truncated", "path": "/query"}]})
    cut = _raw_query(sandbox, sf, QUERY)
    assert cut.status_code == HTTPStatus.OK
    assert int(cut.headers["content-length"]) == len(cut.content) == len(full) // 2
    assert full.startswith(cut.content)
    with pytest.raises(ValueError):
        json.loads(cut.content)
    _faults(sandbox, {"script": [{"fault": "truncated", "method": "POST"}]})
    with pytest.raises(ValueError):
        sf.Account.create({"Name": "Cut Answer Co"})
    assert len(_names(sf, "Cut Answer Co")) == 1
