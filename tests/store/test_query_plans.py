"""No statement a sync makes walks a whole table that grows with the CRM.

SQLite plans without statistics, by the indexes alone, so a small sync is planned as a large
one is. A missing index here cost seconds per object at 10,000 leads and grew with the square
of the store (the owner propagation joined every record to every assignment), without any
test noticing: this one asks SQLite for the plan of every statement a sync issues.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event

from connector.pipeline.sync import run_sync
from tests.pipeline.test_deletions_and_merges import World, world  # noqa: F401 - the shared fixture

BOUNDED = {
    "round_robin_positions": "one row per routing group, read whole on purpose",
}
"""Tables a statement may walk whole, and why their size does not grow with the CRM's records."""

_SCAN = re.compile(r"^SCAN (?!\d+ CONSTANT ROWS)(?!\(subquery)(\w+)")


@dataclass
class Statements:
    seen: dict[str, Any] = field(default_factory=dict)

    def add(self, statement: str, parameters: Any, many: bool) -> None:
        if many:
            parameters = parameters[0] if parameters else ()
        self.seen.setdefault(statement, parameters)


@pytest.fixture()
def statements(world: World) -> Iterator[Statements]:  # noqa: F811 - the fixture's value
    captured = Statements()

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        captured.add(statement, parameters, many)

    event.listen(world.engine, "before_cursor_execute", before)
    try:
        yield captured
    finally:
        event.remove(world.engine, "before_cursor_execute", before)


def _scans(world: World, statements: Statements) -> dict[str, list[str]]:  # noqa: F811
    found: dict[str, list[str]] = {}
    raw = world.engine.raw_connection()
    try:
        for statement, parameters in statements.seen.items():
            if not re.match(r"\s*(SELECT|UPDATE|DELETE)", statement, re.IGNORECASE):
                continue  # an INSERT ... VALUES walks nothing
            plan = [row[3] for row in raw.cursor().execute(f"EXPLAIN QUERY PLAN {statement}", parameters)]
            walked = [m[1] for line in plan if (m := _SCAN.match(line)) and m[1] not in BOUNDED]
            if walked:
                found[" ".join(statement.split())[:300]] = plan
    finally:
        raw.close()
    return found


def test_a_sync_walks_no_growing_table(world: World, statements: Statements) -> None:  # noqa: F811
    for connection in ("salesforce", "hubspot"):
        run_sync(world.config, connection, world.engine)
    time.sleep(1.1)  # the CRMs' clocks count whole seconds: the next runs read the echo of the writes
    for connection in ("salesforce", "hubspot"):
        run_sync(world.config, connection, world.engine)
        run_sync(world.config, connection, world.engine, full=True)

    assert len(statements.seen) > 30  # the runs above went through the store's statements
    assert _scans(world, statements) == {}
