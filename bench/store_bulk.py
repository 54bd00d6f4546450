"""Per-record versus bulk store writes, side by side, in one run.

Times 5,000 audit entries, outbox messages, record snapshots and identity resolutions
written one by one and then with the bulk methods, each into a fresh migrated
database, on SQLite (a temporary file) and, when ``RELAY_TEST_POSTGRES_URL`` is set,
on PostgreSQL (a schema of its own, dropped afterwards). Prints seconds, records per
second, statements sent and the speed-up.

    python bench/store_bulk.py [--count 5000]
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from connector.store import migrate
from connector.store.db import create_engine_for, session_factory
from connector.store.repositories import (
    Audit,
    AuditEntryIn,
    CrmRef,
    Identities,
    Outbox,
    OutboxMessageIn,
    Records,
    SnapshotIn,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
Work = Callable[[Session, int], Any]


@dataclass(frozen=True)
class Timing:
    """How long one way of writing ``count`` records took, and how many statements it sent."""

    seconds: float
    statements: int


def _lead(n: int) -> dict[str, Any]:
    return {"email": f"lead{n}@example.com", "company": f"Company {n % 700}", "employees": n % 5000}


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


def _snapshots_one(session: Session, count: int) -> None:
    records = Records(session)
    for n in range(count):
        records.upsert_snapshot(
            "sf-prod", "Lead", f"00Q{n}", kind="person", canonical=_lead(n), seen_at=T0
        )


def _snapshots_bulk(session: Session, count: int) -> None:
    items = [SnapshotIn(f"00Q{n}", "person", _lead(n)) for n in range(count)]
    Records(session).upsert_snapshots("sf-prod", "Lead", items, seen_at=T0)


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


WORKLOADS: list[tuple[str, Work, Work]] = [
    ("audit entries", _audit_one, _audit_bulk),
    ("outbox messages", _outbox_one, _outbox_bulk),
    ("snapshots", _snapshots_one, _snapshots_bulk),
    ("identities", _identities_one, _identities_bulk),
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
    admin = create_engine_for(base_url)
    schemas: list[str] = []

    def fresh() -> Engine:
        schema = f"relay_bench_{uuid.uuid4().hex[:12]}"
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        return create_engine_for(url)

    try:
        yield fresh
    finally:
        with admin.begin() as connection:
            for schema in schemas:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _time(fresh: Callable[[], Engine], work: Work, count: int) -> Timing:
    engine = fresh()
    try:
        migrate.upgrade(engine)
        sent = 0

        def on_execute(*_args: Any) -> None:
            nonlocal sent
            sent += 1

        with session_factory(engine).begin() as session:
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


def _report(backend: str, fresh: Callable[[], Engine], count: int) -> None:
    print(f"\n{backend}: {count:,} of each")
    print(f"  {'':16} {'one by one':>22} {'bulk':>22} {'speed-up':>9}")
    for name, one, bulk in WORKLOADS:
        single, many = _time(fresh, one, count), _time(fresh, bulk, count)
        cells = [
            f"{t.seconds:6.2f} s {count / t.seconds:7,.0f}/s {t.statements:5}q"
            for t in (single, many)
        ]
        print(f"  {name:16} {cells[0]:>22} {cells[1]:>22} {single.seconds / many.seconds:8.1f}x")


def main() -> None:
    """Run every workload both ways on SQLite, and on PostgreSQL when configured."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--count", type=int, default=5_000, help="records per workload (default 5000)"
    )
    args = parser.parse_args()
    if args.count <= 0:
        parser.error(f"--count must be positive, got {args.count}")
    with _sqlite() as fresh:
        _report("SQLite", fresh, args.count)
    postgres = os.environ.get("RELAY_TEST_POSTGRES_URL")
    if postgres:
        with _postgres(postgres) as fresh:
            _report("PostgreSQL", fresh, args.count)
    else:
        print("\nPostgreSQL: skipped (set RELAY_TEST_POSTGRES_URL to include it)")


if __name__ == "__main__":
    main()
