"""The adapter contract's value types: cursors, write ops, batch plans, call counting."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.adapters._writing import write_in_batches
from connector.adapters.base import Cursor, FieldSpec, WriteOp, WriteResult, batch_plan
from connector.adapters.calls import ApiCallCounter
from connector.adapters.errors import ConfigurationError, RecordError
from connector.store.repositories import id_order_key

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_cursors_order_by_time_then_id() -> None:
    assert Cursor(T0, "b") > Cursor(T0, "a")
    assert Cursor(T0 + timedelta(milliseconds=1), "a") > Cursor(T0, "z")
    assert max(Cursor(T0, "a"), Cursor(T0, "c"), Cursor(T0, "b")).last_id == "c"


def test_numeric_ids_compare_as_numbers() -> None:
    assert Cursor(T0, "10") > Cursor(T0, "9")
    assert sorted([Cursor(T0, "100"), Cursor(T0, "11"), Cursor(T0, "2")]) == [
        Cursor(T0, "2"), Cursor(T0, "11"), Cursor(T0, "100")]


def test_cursor_times_are_normalised_to_utc() -> None:
    local = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    cursor = Cursor(local, "x")
    assert cursor.last_modified.tzinfo is UTC
    assert cursor == Cursor(T0, "x")


def test_naive_cursor_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Cursor(datetime(2024, 5, 1), "x")


@settings(max_examples=100, deadline=None)
@given(st.datetimes(timezones=st.just(UTC)), st.text(min_size=1, max_size=20))
def test_cursor_json_round_trips(when: datetime, last_id: str) -> None:
    cursor = Cursor(when, last_id)
    assert Cursor.from_json(cursor.to_json()) == cursor


@pytest.mark.parametrize("bad", [None, {"last_id": "x"}, {"last_modified": "tomorrow", "last_id": "x"}])
def test_bad_checkpoints_say_what_is_wrong(bad: object) -> None:
    with pytest.raises(ValueError, match="cursor"):
        Cursor.from_json(bad)


@pytest.mark.parametrize(
    ("op", "problem"),
    [
        (WriteOp("Lead", "update", {"Status": "Open"}), "needs crm_id"),
        (WriteOp("Lead", "delete"), "needs crm_id"),
        (WriteOp("Task", "upsert", {"Subject": "Call"}), "needs external_id_field"),
        (WriteOp("Task", "upsert", {"Subject": "x"}, external_id_field="Relay_Idempotency_Key__c"),
         "needs a value for Relay_Idempotency_Key__c"),
        (WriteOp("Lead", "create", {}), "no fields"),
        (WriteOp("Lead", "merge", {"a": 1}), "operation must be one of"),  # type: ignore[arg-type]
    ],
)
def test_write_ops_that_cannot_be_sent_name_their_problem(op: WriteOp, problem: str) -> None:
    assert any(problem in p for p in op.problems())


def test_batch_plan_groups_by_object_and_operation_in_order_and_size() -> None:
    ops = [WriteOp("Lead", "update", {"A": i}, str(i)) for i in range(5)]
    ops.insert(2, WriteOp("Task", "create", {"Subject": "x"}))
    ops.append(WriteOp("Task", "upsert", {"K": "1"}, external_id_field="K"))
    ops.append(WriteOp("Task", "upsert", {"J": "1"}, external_id_field="J"))
    plan = [[i for i, _ in batch] for batch in batch_plan(ops, 2)]
    assert plan == [[0, 1], [3, 4], [5], [2], [6], [7]]


def test_field_spec_reads_a_mapping_file_property() -> None:
    spec = FieldSpec.of({"name": "relay_score", "label": "Relay score", "type": "number", "fieldType": "number",
                         "hasUniqueValue": False})
    assert (spec.name, spec.type, spec.field_type, spec.group_name) == ("relay_score", "number", "number", "relay")
    with pytest.raises(ValueError, match="needs a name"):
        FieldSpec.of({"label": "x"})


def test_call_counter_is_thread_safe_and_reports_runs() -> None:
    counter = ApiCallCounter()
    before = counter.snapshot()

    def work() -> None:
        for _ in range(1000):
            counter.add("read")
            counter.add("write")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.snapshot() == {"read": 4000, "write": 4000, "total": 8000}
    assert counter.since(before)["total"] == 8000
    with pytest.raises(ValueError, match="kind"):
        counter.add("")


# --- write_in_batches: order, sizes, isolation of bad records -----------------------------------


class FakeCrm:
    """Accepts batches, refusing the whole call when it holds a record with ``bad`` set."""

    def __init__(self) -> None:
        self.batches: list[list[WriteOp]] = []

    def send(self, batch: list[WriteOp]) -> list[WriteResult]:
        self.batches.append(batch)
        if any(op.fields.get("bad") for op in batch):
            raise RecordError("Property values were not valid", code="VALIDATION_ERROR")
        return [WriteResult(op=op, success=True, crm_id=f"id-{op.fields['n']}", created=True) for op in batch]


def test_results_come_back_in_op_order_across_batches() -> None:
    crm = FakeCrm()
    ops = [WriteOp("contacts" if i % 2 else "companies", "create", {"n": i}) for i in range(250)]
    results = write_in_batches(ops, size=100, crm="hubspot", send=crm.send)
    assert [r.crm_id for r in results] == [f"id-{i}" for i in range(250)]
    assert [len(b) for b in crm.batches] == [100, 25, 100, 25]


def test_a_batch_refused_for_one_record_is_split_until_the_bad_one_is_alone() -> None:
    crm = FakeCrm()
    ops = [WriteOp("contacts", "create", {"n": i, "bad": i == 37}) for i in range(100)]
    results = write_in_batches(ops, size=100, crm="hubspot", send=crm.send)
    assert [r.success for r in results] == [i != 37 for i in range(100)]
    assert results[37].error is not None and results[37].error.code == "VALIDATION_ERROR"
    assert len(crm.batches) <= 1 + 2 * 7  # log2(100) levels, two calls each


def test_invalid_ops_fail_alone_without_a_call() -> None:
    crm = FakeCrm()
    ops = [WriteOp("contacts", "update", {"n": 1}), WriteOp("contacts", "create", {"n": 2})]
    results = write_in_batches(ops, size=100, crm="hubspot", send=crm.send)
    assert not results[0].success and results[0].error is not None
    assert "needs crm_id" in str(results[0].error)
    assert results[1].success and len(crm.batches) == 1


def test_a_configuration_error_fails_the_batch_without_splitting() -> None:
    calls: list[int] = []

    def send(batch: list[WriteOp]) -> list[WriteResult]:
        calls.append(len(batch))
        raise ConfigurationError("No such column 'Foo__c' on entity 'Lead'", code="INVALID_FIELD")

    results = write_in_batches([WriteOp("Lead", "create", {"Foo__c": i}) for i in range(10)], size=200,
                               crm="salesforce", send=send)
    assert calls == [10]
    assert all(not r.success and "Foo__c" in str(r.error) for r in results)


@given(st.lists(st.tuples(st.integers(0, 3), st.one_of(st.from_regex(r"[0-9]{1,6}", fullmatch=True),
                                                      st.from_regex(r"00Q[0-9A-Za-z]{12,15}", fullmatch=True))),
                min_size=2, max_size=8))
def test_adapters_and_store_order_positions_alike(positions: list[tuple[int, str]]) -> None:
    """The store refuses a checkpoint that moves backwards by the same rule the adapters read by."""
    cursors = [Cursor(T0 + timedelta(seconds=s), crm_id) for s, crm_id in positions]
    stored = sorted(cursors, key=lambda c: (c.last_modified, id_order_key(c.last_id)))
    assert [(c.last_modified, c.last_id) for c in sorted(cursors)] == [(c.last_modified, c.last_id) for c in stored]
