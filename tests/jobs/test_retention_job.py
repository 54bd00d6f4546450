"""The scheduled retention job (``relay.retention``, retention.yaml's ``schedule``) under a controlled clock.

The world is tests/pipeline/test_retention.py's: both sandbox CRMs seeded with three old prospects (one
Salesforce lead pair and a HubSpot contact: deleted), an old opted-out lead (suppressed), an old customer and a
former employee in both CRMs (archived), synced into SQLite or PostgreSQL. The job runs as ``relay worker`` runs
it: the periodic task registered on a Huey on Redis, given ``now``. What the CRMs hold is read back through
simple-salesforce and hubspot-api-client.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from huey import RedisHuey
from sqlalchemy import select
from typer.testing import CliRunner

from connector import cli
from connector.cli import app
from connector.core.governance.rules import RetentionSchedule
from connector.store.db import session_factory
from connector.store.models import AuditRow, DispositionRow
from jobs import tasks
from jobs.app import make_huey
from jobs.tasks import RelayJobs, register, retention_slot
from tests.pipeline.test_retention import (  # noqa: F401 - store_url and world: the shared fixtures
    LUCAS,
    World,
    _count,
    _hs_archived,
    _sf_deleted,
    _synced,
    _writes,
    store_url,
    world,
)
from tests.support.databases import redis_url

REPO = Path(__file__).resolve().parents[2]
DUE = datetime(2026, 2, 3, 3, 30, 20, tzinfo=UTC)  # the shipped cron: 30 3 * * * (UTC)
SLOT = "2026-02-03T03:30:00+00:00"
Schedule = Callable[[str], None]


@dataclass
class Env:
    """The synced world and the worker's environment (its CRMs and store, a copy of the shipped configuration).

    ``schedule(line)`` replaces retention.yaml's ``schedule`` line in the copy (before the job first runs).
    """

    world: World
    schedule: Schedule
    config: Path


@pytest.fixture
def env(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:  # noqa: F811 - the fixture
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config, ignore=shutil.ignore_patterns("schema"))
    for name in ("SALESFORCE_INSTANCE_URL", "HUBSPOT_BASE_URL", "RELAY_DATABASE_URL"):
        monkeypatch.setenv(name, world.env[name])
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(config))
    monkeypatch.setenv("RELAY_MAPPINGS_DIR", str(REPO / "mappings"))
    contexts: dict[Any, Any] = {}
    monkeypatch.setattr(tasks, "_context", contexts)  # this test's worker loads its own configuration and store

    def schedule(line: str) -> None:
        path = config / "rules" / "retention.yaml"
        text = path.read_text(encoding="utf-8")
        shipped = 'schedule: {enabled: true, cron: "30 3 * * *", apply: false}'
        assert shipped in text, "the shipped retention.yaml no longer has its schedule line"
        path.write_text(text.replace(shipped, line), encoding="utf-8")

    _synced(world)
    try:
        yield Env(world, schedule, config)
    finally:
        for _, _, engine in contexts.values():
            engine.dispose()


def _workers(count: int) -> tuple[list[RelayJobs], RedisHuey]:
    """``count`` workers on one Redis queue (each its own Huey instance, as each ``relay worker`` has)."""
    name = f"relay-test-{uuid.uuid4().hex[:12]}"
    hueys = [make_huey(redis_url(), name=name) for _ in range(count)]
    first = hueys[0]
    assert isinstance(first, RedisHuey) and all(isinstance(h, RedisHuey) for h in hueys)
    return [register(h) for h in hueys], first


@pytest.fixture
def worker() -> Iterator[RelayJobs]:
    (jobs,), huey = _workers(1)
    try:
        yield jobs
    finally:
        huey.storage.flush_all()


def _tick(jobs: RelayJobs, now: datetime) -> dict[str, Any] | None:
    """One minute of the worker: the periodic task, executed as the consumer executes it, at ``now``."""
    result: dict[str, Any] | None = jobs.huey.execute(jobs.retention.s(now=now))
    return result


def _new_audit(w: World, after: int) -> list[AuditRow]:
    with session_factory(w.engine)() as session:
        return list(session.scalars(select(AuditRow).where(AuditRow.id > after).order_by(AuditRow.id)))


def _last_audit_id(w: World) -> int:
    with session_factory(w.engine)() as session:
        return int(session.scalar(select(AuditRow.id).order_by(AuditRow.id.desc()).limit(1)) or 0)


def _calls(w: World) -> int:
    return len(w.sf_box.ledger.entries()) + len(w.hs_box.ledger.entries())


def test_the_scheduled_dry_run_audits_counts_and_changes_nothing(
        env: Env, worker: RelayJobs, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    w = env.world
    last, dispositions, writes = _last_audit_id(w), _count(w, DispositionRow), _writes(w)
    caplog.set_level(logging.INFO, logger="connector.pipeline.retention")

    done = _tick(worker, DUE)

    assert done is not None and (done["status"], done["action"], done["slot"]) == ("ran", "retention_dry_run", SLOT)
    # Nothing but the job's own entries: its claim of the minute and the summary. No CRM write, no suppression.
    entries = _new_audit(w, last)
    assert [(e.action, e.connection, e.crm_id) for e in entries] == [
        ("retention_job_started", "retention", None), ("retention_dry_run", "retention", None)]
    assert (_count(w, DispositionRow), _writes(w)) == (dispositions, writes)
    assert _sf_deleted(w) == set() and _hs_archived(w) == set()
    # The summary: counts per class and action, nothing that names a person or a record.
    summary = entries[1].detail
    assert (summary["slot"], summary["now"], summary["apply"]) == (SLOT, DUE.isoformat(), False)
    assert summary["would_do"] == {"delete": 3, "archive": 3, "suppress": 1}
    prospects, employees = summary["classes"]["prospect"], summary["classes"]["employee"]
    assert (prospects["action"], prospects["due_people"], prospects["would_do"]) == ("delete", 3, 3)
    assert prospects["people"] > 10 and (employees["action"], employees["would_do"]) == ("archive", 2)
    said = json.dumps(summary)
    cast = w.cast
    named = [*cast.emails.values(), LUCAS, *cast.sf_old_prospects, cast.sf_unsubscribed, cast.hs_old_prospect,
             cast.hs_customer, "sha256:"]
    assert [n for n in named if n in said] == []
    assert f"retention (scheduled {SLOT}, dry run): would delete 3, archive 3, suppress 1" in caplog.text

    # relay retention run says when the worker last ran and what it found.
    monkeypatch.setattr(cli.console, "width", 200)
    shown = CliRunner().invoke(app, ["retention", "run", "--now", "2026-02-03T09:00:00Z", "--connection", "hubspot"])
    assert shown.exit_code == 0, shown.output
    assert ("schedule: cron '30 3 * * *' UTC, a dry run (relay worker); last scheduled run 2026-02-03 03:30:20 UTC: "
            "would delete 3, archive 3, suppress 1") in shown.output


def test_the_scheduled_run_applies_like_relay_retention_run_apply(
        env: Env, worker: RelayJobs, monkeypatch: pytest.MonkeyPatch) -> None:
    env.schedule('schedule: {enabled: true, cron: "30 3 * * *", apply: true}')
    w, cast = env.world, env.world.cast

    done = _tick(worker, DUE)

    assert done is not None and (done["status"], done["action"]) == ("ran", "retention_applied")
    assert done["detail"]["done"] == {"delete": 3, "archive": 3, "suppress": 1} and done["detail"]["refused"] == 0
    # Read back through the official SDKs: exactly the old prospects are gone.
    assert _sf_deleted(w) == set(cast.sf_old_prospects)
    assert _hs_archived(w) == {cast.hs_old_prospect}
    with session_factory(w.engine)() as session:
        deleted = set(session.scalars(select(AuditRow.crm_id).where(AuditRow.action == "retention_deleted")))
        suppressed = list(session.scalars(select(AuditRow.crm_id).where(AuditRow.action == "retention_suppressed")))
    assert deleted == {*cast.sf_old_prospects, cast.hs_old_prospect} and suppressed == [cast.sf_unsubscribed]

    # The command finds everything done: the job acted through the same pipeline and left the same marks.
    monkeypatch.setattr(cli.console, "width", 200)
    again = CliRunner().invoke(app, ["retention", "run", "--now", "2026-02-03T09:00:00Z", "--apply", "--json"])
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert report["due"] == [] and report["deleted"] == [] and report["classes"]["prospect"]["done_before"] == 3
    assert report["last_scheduled_run"]["action"] == "retention_applied"


def test_nothing_runs_before_the_minute_or_after_the_catch_up(env: Env, worker: RelayJobs) -> None:
    last, calls = _last_audit_id(env.world), _calls(env.world)

    for now in (DUE - timedelta(minutes=1), DUE + timedelta(minutes=60), DUE + timedelta(hours=12)):
        assert _tick(worker, now) is None, now

    assert _new_audit(env.world, last) == [] and _calls(env.world) == calls  # not even a CRM read


def test_a_disabled_schedule_never_runs(env: Env, worker: RelayJobs) -> None:
    env.schedule('schedule: {enabled: false, cron: "30 3 * * *", apply: true}')
    last, calls = _last_audit_id(env.world), _calls(env.world)

    assert _tick(worker, DUE) is None

    assert _new_audit(env.world, last) == [] and _calls(env.world) == calls


def test_two_workers_run_a_due_minute_once_and_a_late_one_catches_up(env: Env) -> None:
    w = env.world
    (first, second), huey = _workers(2)
    last = _last_audit_id(w)
    outcomes: list[dict[str, Any] | None] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def tick(jobs: RelayJobs, now: datetime) -> None:
        try:
            start.wait()
            outcomes.append(_tick(jobs, now))
        except BaseException as exc:  # shown by the assertion below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=tick, args=(first, DUE)),
                   threading.Thread(target=tick, args=(second, DUE + timedelta(seconds=30)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert errors == [] and len(outcomes) == 2
        statuses = sorted(o["status"] for o in outcomes if o is not None)
        assert statuses in (["busy", "ran"], ["done", "ran"]), outcomes
        # The same minute later on, by either worker: done already.
        assert (_tick(first, DUE + timedelta(minutes=1)) or {}).get("status") == "done"
        assert (_tick(second, DUE + timedelta(minutes=59)) or {}).get("status") == "done"
        assert [e.action for e in _new_audit(w, last)] == ["retention_job_started", "retention_dry_run"]

        # The next day nobody ran at 03:30 (workers busy or down): a worker 20 minutes late runs it, once.
        late = DUE + timedelta(days=1, minutes=20)
        assert (_tick(second, late) or {}).get("status") == "ran"
        assert (_tick(first, late + timedelta(minutes=1)) or {}).get("status") == "done"
        runs = [e for e in _new_audit(w, last) if e.action == "retention_dry_run"]
        assert [e.detail["slot"] for e in runs] == [SLOT, "2026-02-04T03:30:00+00:00"]
    finally:
        huey.storage.flush_all()


def test_a_failed_run_is_logged_and_audited_and_the_worker_goes_on(
        env: Env, worker: RelayJobs, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    relay_yaml = env.config / "relay.yaml"
    text = relay_yaml.read_text(encoding="utf-8")
    hubspot = "  hubspot:\n    kind: hubspot\n"
    assert hubspot in text
    relay_yaml.write_text(text.replace(hubspot, hubspot + "    max_attempts: 1\n"), encoding="utf-8")
    monkeypatch.setenv("HUBSPOT_BASE_URL", "http://127.0.0.1:9")  # nothing listens: HubSpot is unreachable
    caplog.set_level(logging.INFO, logger="connector.pipeline.retention")
    last = _last_audit_id(env.world)

    done = _tick(worker, DUE)

    assert done is not None and (done["status"], done["action"]) == ("failed", "retention_job_failed")
    assert f"retention (scheduled {SLOT}, dry run) failed: " in caplog.text
    entries = _new_audit(env.world, last)
    assert [e.action for e in entries] == ["retention_job_started", "retention_job_failed"]
    assert entries[1].detail["error"] == done["detail"]["error"] and entries[1].detail["error"].endswith("Error")
    assert _hs_archived(env.world) == set() and _sf_deleted(env.world) == set()
    # The minute is not tried again.
    assert (_tick(worker, DUE + timedelta(minutes=1)) or {}).get("status") == "done"


@pytest.mark.parametrize(
    ("cron", "now", "slot"),
    [
        ("30 3 * * *", datetime(2026, 2, 3, 3, 30, 59, tzinfo=UTC), datetime(2026, 2, 3, 3, 30, tzinfo=UTC)),
        ("30 3 * * *", datetime(2026, 2, 3, 4, 29, tzinfo=UTC), datetime(2026, 2, 3, 3, 30, tzinfo=UTC)),
        ("30 3 * * *", datetime(2026, 2, 3, 4, 30, tzinfo=UTC), None),
        ("30 3 * * *", datetime(2026, 2, 3, 3, 29, 59, tzinfo=UTC), None),
        ("*/15 * * * 1-5", datetime(2026, 2, 6, 10, 44, tzinfo=UTC), datetime(2026, 2, 6, 10, 30, tzinfo=UTC)),
        ("0 0 * * 1-5", datetime(2026, 2, 7, 0, 10, tzinfo=UTC), None),  # a Saturday
    ],
)
def test_the_minute_a_run_is_for(cron: str, now: datetime, slot: datetime | None) -> None:
    assert retention_slot(RetentionSchedule(cron=cron).crontab_fields(), now) == slot
