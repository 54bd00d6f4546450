"""Batch endpoints through the SDK, including 207 multi-status answers."""

from __future__ import annotations

import json
from http import HTTPStatus

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    BatchResponseSimplePublicObject,
    BatchResponseSimplePublicObjectWithErrors,
)
from hubspot_portal import TOKEN

from crm_sandbox.common import FaultSettings
from crm_sandbox.hubspot import HubSpotSandbox


def _create(hs: HubSpot, count: int, prefix: str = "b") -> list[str]:
    inputs = [{"properties": {"email": f"{prefix}{i}@batch.example", "firstname": f"F{i}"}} for i in range(count)]
    answer = hs.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
    assert isinstance(answer, BatchResponseSimplePublicObject)
    assert answer.status == "COMPLETE"
    return [r.id for r in answer.results]


def test_batch_create_read_update_archive(hs: HubSpot) -> None:
    ids = _create(hs, 100)
    assert len(set(ids)) == 100
    batch = hs.crm.contacts.batch_api
    read = batch.read(BatchReadInputSimplePublicObjectId(inputs=[{"id": i} for i in ids[:3]], properties=["email"], properties_with_history=[]))
    assert [r.properties["email"] for r in read.results] == ["b0@batch.example", "b1@batch.example", "b2@batch.example"]
    by_email = batch.read(BatchReadInputSimplePublicObjectId(inputs=[{"id": "B5@batch.example"}], id_property="email", properties=["firstname"], properties_with_history=[]))
    assert by_email.results[0].id == ids[5]

    updated = batch.update(BatchInputSimplePublicObjectBatchInput(inputs=[{"id": i, "properties": {"hs_lead_status": "OPEN"}} for i in ids[:10]]))
    assert isinstance(updated, BatchResponseSimplePublicObject)
    assert {r.properties["hs_lead_status"] for r in updated.results} == {"OPEN"}

    batch.archive(BatchInputSimplePublicObjectId(inputs=[{"id": i} for i in ids[:50]]))
    left = hs.crm.contacts.get_all()
    assert len(left) == 50


def test_batch_read_of_missing_ids_is_a_207_the_sdk_parses(hs: HubSpot) -> None:
    ids = _create(hs, 2)
    answer = hs.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(inputs=[{"id": ids[0]}, {"id": "424242"}], properties=[], properties_with_history=[])
    )
    assert isinstance(answer, BatchResponseSimplePublicObjectWithErrors)
    assert answer.num_errors == 1
    assert [r.id for r in answer.results] == [ids[0]]
    assert answer.errors[0].category == "OBJECT_NOT_FOUND"
    assert answer.errors[0].context == {"ids": ["424242"]}


def test_batch_update_reports_missing_ids_per_record(hs: HubSpot) -> None:
    ids = _create(hs, 1)
    answer = hs.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(
        inputs=[{"id": ids[0], "properties": {"lastname": "Kept"}}, {"id": "777777", "properties": {"lastname": "Lost"}}]
    ))
    assert isinstance(answer, BatchResponseSimplePublicObjectWithErrors)
    assert answer.results[0].properties["lastname"] == "Kept"
    assert answer.errors[0].context["ids"] == ["777777"]


def test_batch_upsert_by_email_flags_new_rows(hs: HubSpot) -> None:
    ids = _create(hs, 1, prefix="up")
    answer = hs.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
        {"id": "up0@batch.example", "idProperty": "email", "properties": {"lastname": "Existing"}},
        {"id": "fresh@batch.example", "idProperty": "email", "properties": {"lastname": "Fresh"}},
    ]))
    rows = {r.properties["lastname"]: r for r in answer.results}
    assert rows["Existing"].new is False and rows["Existing"].id == ids[0]
    assert rows["Fresh"].new is True and rows["Fresh"].properties["email"] == "fresh@batch.example"


def test_upsert_by_a_property_that_is_not_unique_is_rejected(hs: HubSpot) -> None:
    with pytest.raises(ApiException) as error:
        hs.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
            {"id": "Ada", "idProperty": "firstname", "properties": {"lastname": "L"}},
        ]))
    assert error.value.status == HTTPStatus.BAD_REQUEST
    assert "firstname" in json.loads(error.value.body)["message"]


def test_more_than_100_inputs_is_a_validation_error(hs: HubSpot) -> None:
    with pytest.raises(ApiException) as error:
        hs.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[{"properties": {"firstname": str(i)}} for i in range(101)]
        ))
    assert error.value.status == HTTPStatus.BAD_REQUEST
    body = json.loads(error.value.body)
    assert body["category"] == "VALIDATION_ERROR" and "101" in body["message"]


def test_batch_create_with_an_invalid_record_fails_whole_and_names_it(hs: HubSpot) -> None:
    with pytest.raises(ApiException) as error:
        hs.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[{"properties": {"email": "ok@batch.example"}}, {"properties": {"hs_lead_status": "NOPE"}}]
        ))
    assert json.loads(error.value.body)["errors"][0]["context"]["propertyName"] == ["hs_lead_status"]
    assert hs.crm.contacts.get_all() == []


def test_injected_partial_failures_answer_207_with_the_failed_rows() -> None:
    box = HubSpotSandbox(faults=FaultSettings(partial_failure=0.5, seed=3), ten_second_limit=10_000)
    server = box.start()
    try:
        hs = HubSpot(access_token=TOKEN, host=server.url, client_side_validation=True)
        answer = hs.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[{"properties": {"email": f"p{i}@fault.example"}} for i in range(40)]
        ))
        assert isinstance(answer, BatchResponseSimplePublicObjectWithErrors)
        assert answer.num_errors == len(answer.errors) > 0
        assert len(answer.results) + answer.num_errors == 40
        assert len(hs.crm.contacts.get_all()) == len(answer.results)
        ledger = httpx.get(f"{server.url}/__sandbox/ledger").json()
        assert ledger["totals"]["records_written"] == len(answer.results)
    finally:
        box.stop()


def test_write_trace_ids_are_echoed_on_results_and_failures() -> None:
    box = HubSpotSandbox(faults=FaultSettings(partial_failure=0.5, seed=11), ten_second_limit=10_000)
    server = box.start()
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            inputs = [{"properties": {"firstname": f"T{i}"}, "objectWriteTraceId": str(i)} for i in range(20)]
            answer = http.post("/crm/v3/objects/contacts/batch/create", json={"inputs": inputs})
            assert answer.status_code == HTTPStatus.MULTI_STATUS
            body = answer.json()
            ok = {r["objectWriteTraceId"]: r["properties"]["firstname"] for r in body["results"]}
            assert all(name == f"T{trace}" for trace, name in ok.items())
            failed = {e["context"]["objectWriteTraceId"][0] for e in body["errors"]}
            assert failed and not failed & set(ok)
            assert failed | set(ok) == {str(i) for i in range(20)}
    finally:
        box.stop()


def test_the_same_id_twice_in_a_batch_update_is_rejected(hs: HubSpot) -> None:
    ids = _create(hs, 1, prefix="twice")
    with pytest.raises(ApiException) as error:
        hs.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": ids[0], "properties": {"lastname": "A"}}, {"id": ids[0], "properties": {"lastname": "B"}}]
        ))
    assert json.loads(error.value.body)["message"] == f"Duplicate IDs found in batch input: [{ids[0]}]"
