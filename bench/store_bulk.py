"""Per-record versus set-based store writes, side by side, in one run.

For each operation a sync page performs, times ``--count`` records (5,000 by default)
written one by one (the single-record method in a loop, as the pipeline did per record)
and then with the set-based ``*_many`` method, each into a fresh migrated database, on
SQLite (a temporary file) and, when ``RELAY_TEST_POSTGRES_URL`` is set, on PostgreSQL
(a schema of its own, dropped afterwards). What an operation needs already stored
(snapshots to delete, messages to fail) is written first and not timed. Prints
seconds, records per second, statements sent and the speed-up; ``--repeat`` keeps the
best of several runs, which steadies the figures on a busy machine.

    python bench/store_bulk.py [--count 5000] [--repeat 1] [--only deletions,merges]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from connector.store import migrate
from connector.store.db import create_engine_for, session_factory
from connector.store.models import OutboxRow
from connector.store.repositories import (
    AssignmentIn,
    Assignments,
    Audit,
    AuditEntryIn,
    CrmRef,
    Identities,
    Outbox,
    OutboxMessageIn,
    Quarantine,
    QuarantineIn,
    Records,
    SnapshotIn,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)
Work = Callable[[Session, int], Any]


@dataclass(frozen=True)
class Workload:
    """One store operation: what it needs stored first, and the two ways of doing it."""

    name: str
    one: Work
    bulk: Work
    setup: Work | None = None


@dataclass(frozen=True)
class Timing:
    """How long one way of writing ``count`` records took, and how many statements it sent."""

    seconds: float
    statements: int


def _lead(n: int) -> dict[str, Any]:
    return {"email": f"lead{n}@example.com", "company": f"Company {n % 700}", "employees": n % 5000}


def _wide_lead(n: int) -> dict[str, Any]:
    """A canonical lead as the shipped mappings produce it (about 30 fields, a few empty)."""
    return {
        "email": f"lead{n}@example.com",
        "first_name": f"Ada{n}",
        "last_name": "Lovelace",
        "company": f"Company {n % 700}",
        "title": "VP Revenue Operations",
        "phone": f"+1 415 555 {n % 10_000:04d}",
        "mobile_phone": None,
        "website": f"https://company{n % 700}.example",
        "industry": "Software",
        "employees": n % 5000,
        "annual_revenue": 1_250_000.5 + n,
        "country": "US",
        "state": "CA",
        "city": "San Francisco",
        "postal_code": "94107",
        "street": f"{n} Market Street",
        "lead_source": "Webinar",
        "status": "Open - Not Contacted",
        "rating": "Warm",
        "owner_id": "005000000000001",
        "created_at": "2026-02-27T10:15:00+00:00",
        "modified_at": "2026-03-01T08:00:00+00:00",
        "converted": False,
        "unsubscribed": n % 9 == 0,
        "relay_score": n % 100,
        "relay_score_category": "Warm",
        "relay_reason": "round robin (emea)",
        "relay_sla_due": "2026-03-02T10:00:00+00:00",
        "relay_id": None,
        "tags": ["webinar", "pricing-page"],
        "description": "Asked for a demo at the March webinar; prefers mornings.",
    }


def _audit_one(session: Session, count: int) -> None:
    audit = Audit(session)
    for n in range(count):
        audit.append(
            "sf-prod",
            "scored",
            object_name="Lead",
            crm_id=f"00Q{n}",
            detail={"total": n % 100},
            at=T0,
        )


def _audit_bulk(session: Session, count: int) -> None:
    Audit(session).append_many(
        [
            AuditEntryIn("sf-prod", "scored", "Lead", f"00Q{n}", detail={"total": n % 100}, at=T0)
            for n in range(count)
        ]
    )


def _outbox_one(session: Session, count: int) -> None:
    outbox = Outbox(session)
    for n in range(count):
        outbox.enqueue("sf-prod", "Task", "create", {"Subject": f"Call {n}"}, f"task:{n}", now=T0)


def _outbox_bulk(session: Session, count: int) -> None:
    messages = [
        OutboxMessageIn("sf-prod", "Task", "create", {"Subject": f"Call {n}"}, f"task:{n}")
        for n in range(count)
    ]
    Outbox(session).enqueue_many(messages, now=T0)


def _snapshots_one(session: Session, count: int, lead: Callable[[int], dict[str, Any]] = _lead) -> None:
    records = Records(session)
    for n in range(count):
        records.upsert_snapshot(
            "sf-prod", "Lead", f"00Q{n}", kind="person", canonical=lead(n), seen_at=T0
        )


def _snapshots_bulk(session: Session, count: int, lead: Callable[[int], dict[str, Any]] = _lead) -> None:
    items = [SnapshotIn(f"00Q{n}", "person", lead(n)) for n in range(count)]
    Records(session).upsert_snapshots("sf-prod", "Lead", items, seen_at=T0)


def _wide_snapshots_one(session: Session, count: int) -> None:
    _snapshots_one(session, count, _wide_lead)


def _wide_snapshots_bulk(session: Session, count: int) -> None:
    _snapshots_bulk(session, count, _wide_lead)


def _identities_one(session: Session, count: int) -> None:
    identities = Identities(session)
    for n in range(count):
        identities.resolve(
            "person",
            f"lead{n % (count // 2 or 1)}@example.com",
            CrmRef("sf-prod", "Lead", f"00Q{n}"),
            now=T0,
        )


def _identities_bulk(session: Session, count: int) -> None:
    items = [
        (f"lead{n % (count // 2 or 1)}@example.com", CrmRef("sf-prod", "Lead", f"00Q{n}"))
        for n in range(count)
    ]
    Identities(session).resolve_many("person", items, now=T0)


def _deletions_one(session: Session, count: int) -> None:
    records = Records(session)
    for n in range(count):
        records.mark_deleted("sf-prod", "Lead", f"00Q{n}", seen_at=LATER)


def _deletions_bulk(session: Session, count: int) -> None:
    Records(session).mark_deleted_many("sf-prod", "Lead", [f"00Q{n}" for n in range(count)], seen_at=LATER)


def _merges_one(session: Session, count: int) -> None:
    records = Records(session)
    for n in range(count):
        records.mark_merged("sf-prod", "Lead", f"00Q{n}", f"00W{n % 50}", seen_at=LATER)


def _merges_bulk(session: Session, count: int) -> None:
    pairs = [(f"00Q{n}", f"00W{n % 50}") for n in range(count)]
    Records(session).mark_merged_many("sf-prod", "Lead", pairs, seen_at=LATER)


def _bad_record(n: int) -> dict[str, Any]:
    return {"LastName": f"Nobody {n}", "Email": f"lead{n}@", "Company": None}


def _quarantine_one(session: Session, count: int) -> None:
    quarantine = Quarantine(session)
    for n in range(count):
        quarantine.add("sf-prod", "Lead", "Email: 'x@' is not an email", _bad_record(n), crm_id=f"00Q{n}", at=T0)


def _quarantine_bulk(session: Session, count: int) -> None:
    Quarantine(session).add_many(
        [
            QuarantineIn("sf-prod", "Lead", "Email: 'x@' is not an email", _bad_record(n), crm_id=f"00Q{n}", at=T0)
            for n in range(count)
        ]
    )


def _first_assignments(session: Session, count: int) -> None:
    Assignments(session).record_new_many(
        [AssignmentIn("sf-prod", "Lead", f"00Q{n}", "ana@relay.example", tier="Warm", assigned_at=T0)
         for n in range(count)]
    )


def _reassignment(n: int) -> AssignmentIn:
    return AssignmentIn("sf-prod", "Lead", f"00Q{n}", f"rep{n % 7}@relay.example", owner_crm_id=f"005{n % 7}",
                        tier="Hot", rule="hot_round_robin", reason="round robin", score=80, rules_version="v2",
                        sla_due=LATER, assigned_at=LATER)


def _reassign_one(session: Session, count: int) -> None:
    assignments = Assignments(session)
    for n in range(count):
        item = _reassignment(n)
        assignments.record(
            item.connection, item.object_name, item.crm_id, owner_email=item.owner_email,
            owner_crm_id=item.owner_crm_id, tier=item.tier, rule=item.rule, reason=item.reason, score=item.score,
            rules_version=item.rules_version, sla_due=item.sla_due, assigned_at=item.assigned_at,
        )


def _reassign_bulk(session: Session, count: int) -> None:
    Assignments(session).record_many([_reassignment(n) for n in range(count)])


def _message_ids(session: Session) -> list[int]:
    return list(session.scalars(select(OutboxRow.id).order_by(OutboxRow.id)))


def _failures_one(session: Session, count: int) -> None:
    outbox = Outbox(session)
    for message_id in _message_ids(session):
        outbox.mark_failed(message_id, "UNABLE_TO_LOCK_ROW: unable to obtain exclusive access", retriable=True)


def _failures_bulk(session: Session, count: int) -> None:
    error = "UNABLE_TO_LOCK_ROW: unable to obtain exclusive access"
    Outbox(session).mark_failed_many([(message_id, error, True) for message_id in _message_ids(session)])


def _sent_one(session: Session, count: int) -> None:
    outbox = Outbox(session)
    for message_id in _message_ids(session):
        outbox.mark_sent(message_id, crm_id=f"00T{message_id}", crm_result={"id": f"00T{message_id}"}, now=LATER)


def _sent_bulk(session: Session, count: int) -> None:
    results = [(i, f"00T{i}", {"id": f"00T{i}"}) for i in _message_ids(session)]
    Outbox(session).mark_sent_many(results, now=LATER)


def _replace_one(session: Session, count: int) -> None:
    outbox = Outbox(session)
    for message_id in _message_ids(session):
        outbox.replace_payload(message_id, {"Subject": "Call", "refused": ["Phone"]}, "INVALID_FIELD: Phone")


def _replace_bulk(session: Session, count: int) -> None:
    payload = {"Subject": "Call", "refused": ["Phone"]}
    Outbox(session).replace_payload_many([(i, payload, "INVALID_FIELD: Phone") for i in _message_ids(session)])


def _cancel_one(session: Session, count: int) -> None:
    outbox = Outbox(session)
    for message_id in _message_ids(session):
        outbox.cancel(message_id, "owner not written")


def _cancel_bulk(session: Session, count: int) -> None:
    Outbox(session).cancel_many([(i, "owner not written") for i in _message_ids(session)])


WORKLOADS: list[Workload] = [
    Workload("audit entries", _audit_one, _audit_bulk),
    Workload("outbox messages", _outbox_one, _outbox_bulk),
    Workload("snapshots", _snapshots_one, _snapshots_bulk),
    Workload("wide snapshots", _wide_snapshots_one, _wide_snapshots_bulk),
    Workload("identities", _identities_one, _identities_bulk),
    Workload("deletions", _deletions_one, _deletions_bulk, _snapshots_bulk),
    Workload("merges", _merges_one, _merges_bulk, _snapshots_bulk),
    Workload("quarantine", _quarantine_one, _quarantine_bulk),
    Workload("reassignments", _reassign_one, _reassign_bulk, _first_assignments),
    Workload("outbox failures", _failures_one, _failures_bulk, _outbox_bulk),
    Workload("outbox acks", _sent_one, _sent_bulk, _outbox_bulk),
    Workload("outbox payloads", _replace_one, _replace_bulk, _outbox_bulk),
    Workload("outbox cancels", _cancel_one, _cancel_bulk, _outbox_bulk),
]


@contextmanager
def _sqlite() -> Iterator[Callable[[], Engine]]:
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as folder:
        made = 0

        def fresh() -> Engine:
            nonlocal made
            made += 1
            return create_engine_for(f"sqlite:///{Path(folder) / f'store-{made}.db'}")

        yield fresh


@contextmanager
def _postgres(base_url: str) -> Iterator[Callable[[], Engine]]:
    """Engines on fresh schemas; each is dropped when its engine is disposed (one transaction each).

    Dropping them all in one transaction at the end would take a lock per table of every
    run, more than PostgreSQL's lock table holds.
    """
    admin = create_engine_for(base_url)

    def drop(schema: str) -> None:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))

    def fresh() -> Engine:
        schema = f"relay_bench_{uuid.uuid4().hex[:12]}"
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        engine = create_engine_for(url)
        event.listen(engine, "engine_disposed", lambda _engine: drop(schema))
        return engine

    try:
        yield fresh
    finally:
        admin.dispose()


def _time(fresh: Callable[[], Engine], workload: Workload, work: Work, count: int) -> Timing:
    engine = fresh()
    try:
        migrate.upgrade(engine)
        sessions = session_factory(engine)
        if workload.setup is not None:
            with sessions.begin() as session:
                workload.setup(session, count)
        sent = 0

        def on_execute(*_args: Any) -> None:
            nonlocal sent
            sent += 1

        with sessions.begin() as session:
            session.execute(text("SELECT 1"))
            event.listen(engine, "before_cursor_execute", on_execute)
            started = time.perf_counter()
            work(session, count)
            session.flush()
        seconds = time.perf_counter() - started  # includes the commit
        event.remove(engine, "before_cursor_execute", on_execute)
        return Timing(seconds, sent)
    finally:
        engine.dispose()


def _best(fresh: Callable[[], Engine], workload: Workload, work: Work, count: int, repeat: int) -> Timing:
    return min((_time(fresh, workload, work, count) for _ in range(repeat)), key=lambda timing: timing.seconds)


def _report(backend: str, fresh: Callable[[], Engine], count: int, repeat: int, workloads: list[Workload]) -> None:
    best = f", best of {repeat}" if repeat > 1 else ""
    print(f"\n{backend}: {count:,} records per operation{best}")
    print(f"  {'':16} {'one by one':>24} {'set-based':>24} {'speed-up':>9}")
    for workload in workloads:
        single = _best(fresh, workload, workload.one, count, repeat)
        many = _best(fresh, workload, workload.bulk, count, repeat)
        cells = [
            f"{t.seconds:6.2f} s {count / t.seconds:8,.0f}/s {t.statements:5}q"
            for t in (single, many)
        ]
        print(f"  {workload.name:16} {cells[0]:>24} {cells[1]:>24} {single.seconds / many.seconds:8.1f}x")


def main() -> None:
    """Run every workload both ways on SQLite, and on PostgreSQL when configured."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--count", type=int, default=5_000, help="records per operation (default 5000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per figure, the best is kept (default 1)"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated operations to run (default: all), e.g. deletions,merges"
    )
    args = parser.parse_args()
    if args.count <= 0:
        parser.error(f"--count must be positive, got {args.count}")
    if args.repeat <= 0:
        parser.error(f"--repeat must be positive, got {args.repeat}")
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    known = {workload.name for workload in WORKLOADS}
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"--only: unknown operation(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    workloads = [workload for workload in WORKLOADS if not names or workload.name in names]
    with _sqlite() as fresh:
        _report("SQLite", fresh, args.count, args.repeat, workloads)
    postgres = os.environ.get("RELAY_TEST_POSTGRES_URL")
    if postgres:
        with _postgres(postgres) as fresh:
            _report("PostgreSQL", fresh, args.count, args.repeat, workloads)
    else:
        print("\nPostgreSQL: skipped (set RELAY_TEST_POSTGRES_URL to include it)")


if __name__ == "__main__":
    main()
