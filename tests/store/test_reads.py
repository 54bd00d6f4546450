"""A read (a report, a dashboard page, the admin API) never holds SQLite's write lock.

Every write transaction on SQLite begins IMMEDIATE (writers queue instead of failing halfway);
a read that did the same held the lock for as long as it read, so a long dashboard refresh made
a sync or a webhook wait, then fail with 'database is locked' (bench/api.py found it).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from connector.store.db import READ_ONLY, read_snapshot, session_factory
from connector.store.migrate import open_store
from connector.store.models import ConnectionStateRow
from connector.store.repositories import Repositories


def test_a_write_goes_through_while_a_read_snapshot_is_open_and_the_read_keeps_its_moment(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    writes = session_factory(engine)
    reads = session_factory(engine.execution_options(**{READ_ONLY: True}))
    now = datetime(2026, 12, 7, tzinfo=UTC)
    with read_snapshot(engine) as conn, reads.begin() as session:
        before = conn.execute(select(func.count()).select_from(ConnectionStateRow)).scalar_one()
        session.execute(select(func.count()).select_from(ConnectionStateRow)).scalar_one()
        started = time.monotonic()
        with writes.begin() as writing:  # would wait for the busy timeout, then fail, under an IMMEDIATE read
            Repositories(writing).connection_states.pause("hubspot", by="test", reason=None, now=now)
        assert time.monotonic() - started < 5
        assert conn.execute(select(func.count()).select_from(ConnectionStateRow)).scalar_one() == before
    with read_snapshot(engine) as conn:
        assert conn.execute(select(func.count()).select_from(ConnectionStateRow)).scalar_one() == before + 1
    engine.dispose()


def test_an_api_token_is_checked_while_a_writer_holds_the_lock_and_its_last_use_written_once_a_minute(
        tmp_path: Path) -> None:
    from datetime import timedelta

    from connector.config.loader import load_config
    from connector.pipeline.console import Console

    engine = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    now = [datetime(2026, 12, 7, 9, 0, tzinfo=UTC)]
    console = Console(load_config(Path(__file__).parents[2] / "config"), engine, clock=lambda: now[0])
    _, token = console.add_user("dana", "admin", None)
    assert console.authenticate(token) is not None  # first use: written
    writes = session_factory(engine)
    with writes.begin() as writing:  # a sync's page holds SQLite's write lock
        Repositories(writing).connection_states.pause("hubspot", by="test", reason=None, now=now[0])
        started = time.monotonic()
        for seconds in (10, 30, 59):  # within the minute: a read, nothing to write
            now[0] = datetime(2026, 12, 7, 9, 0, seconds, tzinfo=UTC)
            assert console.authenticate(token) is not None
        assert time.monotonic() - started < 5
    now[0] += timedelta(seconds=1)
    assert console.authenticate(token) is not None
    assert console.users()[0]["last_used_at"] == "2026-12-07T09:01:00+00:00"
    engine.dispose()
