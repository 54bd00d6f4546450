"""The CrmAdapter contract, checked the same way for every CRM unit against its sandbox, over real HTTP.

One suite, parametrised over every registered CRM unit that names a sandbox (``_contract.py``):
the adapter is opened through the factory from the unit's settings model, object and field
names come from the connection's mapping file, and after every step the sandbox's call ledger
must confirm what the adapter claims (its call counts, the records it wrote and read). A unit
added to the registry with a sandbox is held to the same contract without editing this file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector.adapters.base import CrmAdapter, FieldSpec, Page, WriteOp, WriteResult
from connector.adapters.calls import ApiCallCounter
from connector.adapters.errors import ConfigurationError
from connector.adapters.retry import RetryPolicy
from connector.cursor import Cursor
from crm_sandbox.registry import SANDBOXES
from crm_sandbox.seed import SeedData

from ._contract import (
    PROBE_FIELD,
    Contract,
    LedgerMismatch,
    check_ledger,
    checkpoint,
    contract_pairs,
    contract_seed,
    deleted_ids,
    position,
    read_problems,
    record_ids,
)

PAIRS = contract_pairs()


@pytest.fixture(scope="module")
def seed_data() -> SeedData:
    return contract_seed(PAIRS)


@pytest.fixture(params=PAIRS, ids=[pair.name for pair in PAIRS])
def crm(request: pytest.FixtureRequest, seed_data: SeedData) -> Iterator[Contract]:
    contract = Contract.start(request.param, seed_data)
    try:
        yield contract
    finally:
        contract.stop()


def full_read(crm: Contract) -> tuple[list[Page], Cursor]:
    """A full read of the person object, checked; its pages and its checkpoint."""
    size = crm.page_size(len(crm.live_seeded_ids(crm.person)))
    pages = crm.read(crm.person, None, page_size=size)
    assert read_problems(crm.person, pages, None, size) == []
    last = checkpoint(pages)
    assert last is not None, "a full read must end with a checkpoint"
    return pages, last


# --- the registry --------------------------------------------------------------------------


def test_every_unit_that_names_a_sandbox_finds_it_in_the_sandbox_registry() -> None:
    assert PAIRS, "no registered CRM unit names a sandbox: the contract suite checks nothing"
    missing = {pair.name: pair.sandbox for pair in PAIRS if pair.sandbox not in SANDBOXES}
    assert missing == {}, f"units naming sandboxes crm_sandbox does not have (it has {list(SANDBOXES)})"


def test_the_factory_opens_an_adapter_with_every_protocol_member(crm: Contract) -> None:
    adapter = crm.adapter
    assert isinstance(adapter, CrmAdapter)
    assert (adapter.crm, adapter.connection) == (crm.pair.unit.kind, crm.pair.connection)
    assert isinstance(adapter.calls, ApiCallCounter) and adapter.calls.total == 0
    assert isinstance(adapter.retry, RetryPolicy)
    assert isinstance(adapter.reads_deletions, bool)


# --- reads ---------------------------------------------------------------------------------


def test_a_full_read_delivers_every_seeded_person_once_behind_forward_moving_checkpoints(crm: Contract) -> None:
    live = crm.live_seeded_ids(crm.person)
    size = crm.page_size(len(live))
    pages = crm.read(crm.person, None, page_size=size)
    ids = record_ids(crm.person, pages)
    assert sorted(ids) == sorted(live), f"{len(ids)} records read, {len(live)} seeded live"
    assert len([p for p in pages if p.records]) >= 2, f"{len(live)} records in pages of {size}: several pages"
    assert read_problems(crm.person, pages, None, size) == []
    newest = max(position(crm.person, r) for p in pages for r in p.records)
    assert checkpoint(pages) == newest
    absent = set(crm.person.crm_fields_to_read()) - set(pages[0].records[0])
    assert absent <= {p.name for p in crm.person.create_properties}, "mapped fields missing from the records read"


def test_an_incremental_read_from_the_checkpoint_of_a_quiet_crm_brings_nothing(crm: Contract) -> None:
    _, last = full_read(crm)
    pages = crm.read(crm.person, last)
    assert record_ids(crm.person, pages) == [] and deleted_ids(pages) == []
    assert all(p.cursor is None or p.cursor >= last for p in pages)


def test_written_records_are_read_again_after_the_checkpoint_and_then_not_again(crm: Contract) -> None:
    updated_id = crm.create_people(1, "before")[0]
    pages, last = full_read(crm)
    assert updated_id in record_ids(crm.person, pages)
    results = crm.write([crm.update(updated_id, "VP Contracts"), *crm.new_people(2, "inc")],
                        "update one person, create two")
    assert all(r.success for r in results), [r.error for r in results]
    created = [str(r.crm_id) for r in results[1:]]

    changed = crm.read(crm.person, last)
    assert sorted(record_ids(crm.person, changed)) == sorted([updated_id, *created])
    assert read_problems(crm.person, changed, last) == []
    title = crm.crm_field(crm.person, "title")
    record = next(r for p in changed for r in p.records if str(r[crm.person.id_field]) == updated_id)
    assert record[title] == "VP Contracts"
    assert position(crm.person, record) > last
    after = checkpoint(changed)
    assert after is not None and after > last

    again = crm.read(crm.person, after)
    seen = {(str(r[crm.person.id_field]), position(crm.person, r)) for p in changed for r in p.records}
    fresh = [str(r[crm.person.id_field]) for p in again for r in p.records
             if (str(r[crm.person.id_field]), position(crm.person, r)) not in seen]
    assert fresh == [], "a read from the last checkpoint brought changes no one made"
    assert all(position(crm.person, r) <= after for p in again for r in p.records)


def test_deletions_are_reported_where_reads_deletions_says(crm: Contract) -> None:
    _, last = full_read(crm)
    since = datetime.now(UTC) - timedelta(minutes=1)
    victim = crm.write(crm.new_people(1, "del"), "create a person to delete")[0]
    assert victim.success
    gone = crm.write([WriteOp(crm.person.name, "delete", crm_id=victim.crm_id)], "delete it")[0]
    assert gone.success and gone.crm_id == victim.crm_id

    pages = crm.read(crm.person, last)
    assert str(victim.crm_id) not in record_ids(crm.person, pages), "a deleted record was read as live"
    if crm.adapter.reads_deletions:
        assert str(victim.crm_id) in deleted_ids(pages)
    else:
        step = crm.mark()
        deleted = crm.adapter.read_deleted(crm.person.name, since)
        crm.check(step, f"read_deleted {crm.person.name}", delivered=len(deleted))
        assert str(victim.crm_id) in deleted


def test_records_are_read_by_id_as_a_read_hands_them_over_and_unknown_ids_are_left_out(crm: Contract) -> None:
    pages, _ = full_read(crm)
    as_read = {str(r[crm.person.id_field]): r for p in pages for r in p.records}
    victim = crm.write(crm.new_people(1, "byid"), "create a person to delete")[0]
    assert crm.write([WriteOp(crm.person.name, "delete", crm_id=victim.crm_id)], "delete it")[0].success
    live = sorted(as_read)
    wanted = [*live, str(victim.crm_id), "0" * 18, live[0]]  # a deleted id, one never there, a repeat

    step = crm.mark()
    page = crm.adapter.read_ids(crm.person.name, crm.person.crm_fields_to_read(), wanted)
    crm.check(step, f"read_ids of {len(wanted)} {crm.person.name}", delivered=len(page.records))

    assert sorted(record_ids(crm.person, [page])) == live  # each once; the unknown ones left out
    assert page.cursor is None and page.deleted_ids == []
    for record in page.records:  # the same shape and values as the read that synced them
        known = as_read[str(record[crm.person.id_field])]
        assert {k: record.get(k) for k in known} == known


# --- writes --------------------------------------------------------------------------------


def test_write_answers_one_result_per_op_in_order_and_answers_a_bad_op_without_a_call(crm: Contract) -> None:
    existing = crm.create_people(2, "existing")
    bad = WriteOp(crm.person.name, "update", crm.fields(crm.person, {"title": "CTO"}))  # no crm_id
    ops = [crm.update(existing[0], "CTO"), *crm.new_people(1, "order"), bad, crm.update(existing[1], "CFO")]
    results = crm.write(ops, "update, create, a bad op, update")
    assert [r.op for r in results] == ops
    assert [r.success for r in results] == [True, True, False, True]
    assert [r.created for r in results] == [False, True, False, False]
    assert results[0].crm_id == existing[0] and results[3].crm_id == existing[1] and results[1].crm_id
    error = results[2].error
    assert error is not None and error.code == "INVALID_WRITE_OP" and "crm_id" in error.message

    step = crm.mark()
    alone = crm.adapter.write([bad])
    assert crm.check(step, "a bad op alone") == [], "a bad op must be answered without calling the CRM"
    assert [(r.success, r.error.code if r.error else None) for r in alone] == [(False, "INVALID_WRITE_OP")]


def test_a_refused_record_fails_alone_and_the_rest_of_its_batch_lands(crm: Contract) -> None:
    doomed = crm.write(crm.new_people(1, "doomed"), "create a person")[0]
    gone = crm.write([WriteOp(crm.person.name, "delete", crm_id=doomed.crm_id)], "delete it")[0]
    assert doomed.success and gone.success
    first, last = crm.create_people(2, "batch")
    ops = [crm.update(first, "Head of Ops"), crm.update(str(doomed.crm_id), "Ghost"), crm.update(last, "Head of IT")]
    results = crm.write(ops, "update two people and a deleted one, in one batch")
    assert [r.success for r in results] == [True, False, True]
    error = results[1].error
    assert error is not None and error.code and error.message and error.crm == crm.pair.unit.kind
    title = crm.crm_field(crm.person, "title")
    stored = {str(r[crm.person.id_field]): r.get(title) for p in crm.read(crm.person, None) for r in p.records}
    assert (stored[first], stored[last]) == ("Head of Ops", "Head of IT")
    assert str(doomed.crm_id) not in stored


def test_an_upsert_by_the_idempotency_key_lands_once_however_often_it_is_sent(crm: Contract) -> None:
    key_field = crm.crm_field(crm.task, "idempotency_key")
    specs = [FieldSpec.of(p.model_dump()) for p in crm.task.create_properties if p.name == key_field]
    if crm.pair.unit.creates_fields:
        step = crm.mark()
        crm.adapter.ensure_fields(crm.task.name, specs)
        crm.check(step, f"ensure_fields {crm.task.name}")
    person = crm.create_people(1, "task")[0]
    key = f"task:contract:{person}"
    first = crm.write([crm.task_upsert(person, key, "Call within 5 minutes")], "upsert a task")[0]
    again = crm.write([crm.task_upsert(person, key, "Call now")], "upsert it again")[0]
    assert first.success and first.created, first.error
    assert again.success and not again.created and again.crm_id == first.crm_id, again.error
    stored = [r for p in crm.read(crm.task, None, fields=[crm.task.id_field, key_field]) for r in p.records
              if r.get(key_field) == key]
    assert [str(r[crm.task.id_field]) for r in stored] == [first.crm_id]


# --- owners and fields ---------------------------------------------------------------------


def test_owners_lists_every_seeded_owner_from_the_crm_each_time(crm: Contract) -> None:
    seeded = {str(o[crm.owner.id_field]) for o in crm.seeded(crm.owner)}
    for attempt in ("first", "second"):
        step = crm.mark()
        owners = crm.adapter.owners()
        crm.check(step, f"owners(), {attempt} time", delivered=len(owners))
        ids = [str(o[crm.owner.id_field]) for o in owners]
        assert len(ids) == len(set(ids)), "an owner listed twice"
        assert seeded <= set(ids), f"seeded owners missing: {sorted(seeded - set(ids))}"


def test_check_fields_names_exactly_the_missing_fields(crm: Contract) -> None:
    names = [*crm.person.crm_fields_to_read(), PROBE_FIELD]
    step = crm.mark()
    missing = crm.adapter.check_fields(crm.person.name, names)
    crm.check(step, f"check_fields {crm.person.name}")
    created_by_relay = {p.name for p in crm.person.create_properties}
    assert PROBE_FIELD in missing
    assert set(missing) - {PROBE_FIELD} <= created_by_relay, "mapped fields the CRM lacks and Relay does not create"
    assert len(missing) == len(set(missing))


def test_ensure_fields_creates_what_is_missing_or_names_it(crm: Contract) -> None:
    specs = [*(FieldSpec.of(p.model_dump()) for p in crm.person.create_properties),
             FieldSpec(PROBE_FIELD, "Relay contract probe")]
    names = [spec.name for spec in specs]
    before = crm.adapter.check_fields(crm.person.name, names)
    assert PROBE_FIELD in before
    step = crm.mark()
    if crm.pair.unit.creates_fields:
        created = crm.adapter.ensure_fields(crm.person.name, specs)
        crm.check(step, f"ensure_fields {crm.person.name}")
        assert sorted(created) == sorted(before)
        assert crm.adapter.check_fields(crm.person.name, names) == []
        step = crm.mark()
        assert crm.adapter.ensure_fields(crm.person.name, specs) == []
        crm.check(step, f"ensure_fields {crm.person.name}, again")
    else:
        with pytest.raises(ConfigurationError) as caught:
            crm.adapter.ensure_fields(crm.person.name, specs)
        crm.check(step, f"ensure_fields {crm.person.name} (a CRM whose fields Relay cannot create)")
        assert list(caught.value.fields) == before
        assert PROBE_FIELD in str(caught.value)


def test_close_releases_without_calling_and_may_be_repeated(crm: Contract) -> None:
    crm.adapter.owners()
    step = crm.mark()
    crm.adapter.close()
    crm.adapter.close()
    assert crm.check(step, "close() twice") == []


# --- the ledger check bites ----------------------------------------------------------------


class AnswersWithoutCalling:
    """An adapter that answers some calls without reaching the CRM: what the ledger check must catch.

    Args:
        inner: The real adapter (everything else is delegated to it, its call counter included).
        how: ``stub`` (write() answers success, counts nothing), ``miscounted`` (write() answers
            success and counts a write call it never made) or ``cached`` (read() replays the
            pages of the previous read of the same object).
    """

    def __init__(self, inner: CrmAdapter, how: str) -> None:
        self.inner = inner
        self.how = how
        self._cache: dict[str, list[Page]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        if self.how == "miscounted":
            self.inner.calls.add("write")
        return [WriteResult(op=op, success=True, crm_id=op.crm_id or f"stub-{i}", created=op.operation == "create")
                for i, op in enumerate(ops)]

    def read(self, object: str, fields: Sequence[str], cursor: Cursor | None, *,
             page_size: int | None = None) -> Iterator[Page]:
        if object not in self._cache:
            self._cache[object] = list(self.inner.read(object, fields, cursor, page_size=page_size))
        return iter(self._cache[object])


@pytest.mark.parametrize("how", ["stub", "miscounted", "cached"])
def test_the_ledger_check_fails_an_adapter_that_answers_without_calling(crm: Contract, how: str) -> None:
    fake = AnswersWithoutCalling(crm.adapter, how)
    assert isinstance(fake, CrmAdapter)
    fields = crm.person.crm_fields_to_read()
    if how == "cached":
        step = crm.mark()
        pages = list(fake.read(crm.person.name, fields, None))  # really read: the check passes
        check_ledger(crm.ledger, fake, step, "the first read", delivered=len(record_ids(crm.person, pages)))
        step = crm.mark()
        pages = list(fake.read(crm.person.name, fields, None))
        with pytest.raises(LedgerMismatch, match="delivered from reads but the sandbox sent 0"):
            check_ledger(crm.ledger, fake, step, "a replayed read", delivered=len(record_ids(crm.person, pages)))
        return
    ops = crm.new_people(2, how)
    step = crm.mark()
    real = crm.adapter.write(ops)  # the same step, really written: the check passes
    check_ledger(crm.ledger, crm.adapter, step, "a real write", written=sum(r.success for r in real))
    step = crm.mark()
    faked = fake.write(crm.new_people(2, f"{how}-again"))
    assert all(r.success for r in faked)
    expected = "reported written but the sandbox applied 0" if how == "stub" else "counted 1 API call"
    with pytest.raises(LedgerMismatch, match=expected) as caught:
        check_ledger(crm.ledger, fake, step, f"a {how} write", written=len(faked))
    assert caught.value.calls == [], "nothing reached the sandbox"
