"""SLA clocks that act, against the sandbox CRMs over HTTP, under a controllable clock.

Each step is checked as a rep or manager sees it (the task in the CRM, read back through the
official SDK, owned by the right user), in the audit log, and fired once however often the
job runs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInput, SimplePublicObjectInputForCreate
from simple_salesforce import Salesforce
from sqlalchemy import Engine
from typer.testing import CliRunner

from connector import cli
from connector.cli import app
from connector.config.loader import RelayConfig, load_config
from connector.core.rules import BusinessHours, WorkCalendar
from connector.pipeline.clocks import FireSummary, fire_due_clocks, list_clocks
from connector.pipeline.sync import run_sync
from connector.store.db import session_factory
from connector.store.migrate import open_store
from connector.store.repositories import AssignmentIn, AuditEntry, Clock, ClockIn, Repositories
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session
from crm_sandbox.seed import generate
from tests.pipeline.test_deletions_and_merges import ANCHOR, World, world  # noqa: F401 - the shared fixture
from tests.support.databases import fresh_postgres_schema

TEAM = "@northwind.example"
JACK, CHLOE, ZOE, ARJUN = (f"{n}{TEAM}" for n in ("jack.wilson", "chloe.martin", "zoe.adams", "arjun.mehta"))
TOM, DANA, LIAM, MARCUS = (f"{n}{TEAM}" for n in ("tom.becker", "dana.whitfield", "liam.walsh", "marcus.chen"))
QUALIFIED_NA = {  # scores Qualified and routes to the SDR team in NA (chloe.martin, jack.wilson)
    "email": "pat.doe@acme-widgets.example", "firstname": "Pat", "lastname": "Doe", "jobtitle": "VP of Sales",
    "company": "Acme Widgets", "country": "US", "phone": "+1 212 555 0100", "website": "acme-widgets.example",
    "city": "New York", "state": "NY", "industry": "Software", "numemployees": "500", "annualrevenue": "50000000",
}


def _owners(world: World) -> dict[str, str]:  # noqa: F811
    return {o.email: str(o.id) for o in world.hs.crm.owners.get_all()}


def _create_contact(world: World, **properties: str) -> str:  # noqa: F811
    return str(world.hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties=properties)).id)


def _clock(world: World, crm_id: str) -> Clock:  # noqa: F811
    with session_factory(world.engine).begin() as session:
        clocks = [c for c in Repositories(session).clocks.for_record(*_where(world, crm_id)) if c.crm_id == crm_id]
    assert clocks, f"no clock for {crm_id}"
    return clocks[-1]


def _where(world: World, crm_id: str) -> tuple[str, str, str]:  # noqa: F811
    return ("salesforce", "Lead", crm_id) if crm_id.startswith("00Q") else ("hubspot", "contacts", crm_id)


def _audit(world: World, crm_id: str, *actions: str) -> list[AuditEntry]:  # noqa: F811
    with session_factory(world.engine).begin() as session:
        return [e for e in Repositories(session).audit.for_record(*_where(world, crm_id)) if e.action in actions]


def _hs_tasks(world: World, contact: str) -> list[dict[str, Any]]:  # noqa: F811
    found = []
    for task in world.hs.crm.objects.get_all(
            "tasks", properties=["hs_task_subject", "hubspot_owner_id", "relay_idempotency_key"],
            associations=["contacts"]):
        linked = task.associations.get("contacts") if task.associations else None
        if linked and contact in {str(a.id) for a in linked.results}:
            found.append(dict(task.properties))
    return found


def _fire(world: World, at: datetime, config: RelayConfig | None = None) -> FireSummary:  # noqa: F811
    summary = fire_due_clocks(config or world.config, world.engine, now=at)
    assert summary.errors == [] and summary.write_failures == []
    return summary


def _steps_for(summary: FireSummary, crm_id: str) -> list[str]:
    return [step.step for step in summary.fired if step.crm_id == crm_id]


@pytest.fixture()
def t0() -> datetime:
    return datetime.now(UTC)


def test_reminder_then_manager_then_director_each_a_task_of_the_right_user_fired_once(
        world: World, t0: datetime) -> None:  # noqa: F811
    contact = _create_contact(world, **QUALIFIED_NA)
    run_sync(world.config, "hubspot", world.engine, now=lambda: t0)
    clock = _clock(world, contact)
    assert (clock.owner_email, clock.tier, clock.source, clock.group_key) == (JACK, "Qualified", "relay", "sdr_team:NA")
    owners = _owners(world)
    key = f"task:hubspot:contacts:{contact}:sla{clock.id}-"

    assert _steps_for(_fire(world, t0 + timedelta(hours=12) - timedelta(seconds=1)), contact) == []
    assert _steps_for(_fire(world, t0 + timedelta(hours=12)), contact) == ["remind"]  # 50 % of 24 h
    assert _steps_for(_fire(world, t0 + timedelta(hours=12)), contact) == []  # the job again: nothing twice
    assert _steps_for(_fire(world, t0 + timedelta(hours=24)), contact) == ["escalate_manager"]
    assert _steps_for(_fire(world, t0 + timedelta(hours=24, minutes=1)), contact) == []
    assert _steps_for(_fire(world, t0 + timedelta(hours=47)), contact) == []
    assert _steps_for(_fire(world, t0 + timedelta(hours=48)), contact)[:1] == ["escalate_director"]
    _fire(world, t0 + timedelta(hours=48))

    tasks = {t["relay_idempotency_key"]: t for t in _hs_tasks(world, contact)}
    assert tasks[key + "remind"]["hubspot_owner_id"] == owners[JACK]
    assert tasks[key + "escalate_manager"]["hubspot_owner_id"] == owners[TOM]  # the SDR manager
    assert tasks[key + "escalate_director"]["hubspot_owner_id"] == owners[DANA]  # the next level
    assert "SLA breached" in tasks[key + "escalate_manager"]["hs_task_subject"]
    assert len([k for k in tasks if k.startswith(key)]) == 3  # one task per step
    audit = _audit(world, contact, "sla_reminder", "sla_escalated")
    assert [(e.action, e.detail["notify_email"], e.detail["level"]) for e in audit] == [
        ("sla_reminder", JACK, None), ("sla_escalated", TOM, "manager"), ("sla_escalated", DANA, "director")]


def test_two_job_runs_at_once_fire_each_step_once(world: World, t0: datetime) -> None:  # noqa: F811
    contact = _create_contact(world, **QUALIFIED_NA)
    run_sync(world.config, "hubspot", world.engine, now=lambda: t0)
    results: list[FireSummary] = []
    runs = [threading.Thread(target=lambda: results.append(_fire(world, t0 + timedelta(hours=25))))
            for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    fired = [s for r in results for s in r.fired if s.crm_id == contact]
    assert sorted(s.step for s in fired) == ["escalate_manager", "remind"]
    assert len(_hs_tasks(world, contact)) == 3  # the follow-up task of the assignment, the reminder, the escalation


def test_first_touch_stops_the_clock_and_contacted_for_72_hours_goes_back_to_nurture(
        world: World, t0: datetime) -> None:  # noqa: F811
    lead = world.sf.Lead.create({"FirstName": "Ines", "LastName": "Costa", "Company": "Acme Widgets",
                                 "Email": "ines.costa@acme-widgets.example", "Title": "VP of Sales", "Country": "US",
                                 "Phone": "+1 212 555 0101", "Website": "acme-widgets.example", "Industry": "Software",
                                 "NumberOfEmployees": 500, "AnnualRevenue": 50000000},
                                headers={"Sforce-Auto-Assign": "FALSE"})["id"]
    run_sync(world.config, "salesforce", world.engine, now=lambda: t0)
    clock = _clock(world, lead)
    assert clock.stage == "new" and clock.first_touch_at is None
    time.sleep(1.1)  # the CRM's clock counts whole seconds: the change comes after this read
    world.sf.Lead.update(lead, {"Status": "Working - Contacted"})

    run_sync(world.config, "salesforce", world.engine, now=lambda: t0 + timedelta(minutes=30))

    touched = _clock(world, lead)
    assert touched.stage == "contacted" and touched.first_touch_at is not None
    assert t0 <= touched.first_touch_at <= t0 + timedelta(minutes=30)
    [touch] = _audit(world, lead, "sla_first_touch")
    assert touch.detail["within_sla"] is True and touch.detail["status"] == "Working - Contacted"
    untouched_steps = _fire(world, t0 + timedelta(hours=60))
    assert _steps_for(untouched_steps, lead) == []  # no reminder, no escalation, no re-queue
    assert not [t for t in world.sf.query_all(f"SELECT Id FROM Task WHERE WhoId = '{lead}'")["records"]][1:]

    nurtured = _fire(world, touched.first_touch_at + timedelta(hours=72))

    assert _steps_for(nurtured, lead) == ["nurture"]
    queue = world.sf.query("SELECT Id FROM User WHERE Email = 'lead.queue@northwind.example'")["records"][0]["Id"]
    written = world.sf.Lead.get(lead)
    assert written["OwnerId"] == queue and written["Relay_Routing_Reason__c"].startswith("Returned to nurture")
    [entry] = _audit(world, lead, "sla_nurtured")
    assert entry.detail["owner_email"] == clock.owner_email and entry.detail["new_owner_email"] == \
        "lead.queue@northwind.example"
    assert _clock(world, lead).closed_reason == "nurtured"
    # The next sync keeps it in nurture: no new owner, no new clock.
    run_sync(world.config, "salesforce", world.engine, now=lambda: t0 + timedelta(hours=80), full=True)
    assert world.sf.Lead.get(lead)["OwnerId"] == queue
    assert _clock(world, lead).id == clock.id


def test_a_lead_still_new_after_48_hours_goes_to_a_rep_who_never_owned_the_person(
        world: World, t0: datetime) -> None:  # noqa: F811
    contact = _create_contact(world, **QUALIFIED_NA)
    run_sync(world.config, "hubspot", world.engine, now=lambda: t0)
    clock = _clock(world, contact)
    assert clock.owner_email == JACK
    # The person's history: chloe.martin (the other NA SDR) and zoe.adams owned them before
    # (on another record of theirs, since released).
    with session_factory(world.engine).begin() as session:
        repos = Repositories(session)
        for owner in (CHLOE, ZOE):
            repos.assignments.record_many([AssignmentIn("hubspot", "contacts", "990001", owner, tier="Qualified",
                                                         relay_id=clock.relay_id, assigned_at=t0 - timedelta(days=30))])
        repos.clocks.release_assignment("hubspot", "contacts", "990001")

    summary = _fire(world, t0 + timedelta(hours=48))

    [step] = [s for s in summary.fired if s.crm_id == contact and s.step == "requeue"]
    assert step.notify_email == ARJUN  # the only SDR who never owned the person
    assert world.hs.crm.contacts.basic_api.get_by_id(contact, properties=["hubspot_owner_id"]) \
        .properties["hubspot_owner_id"] == _owners(world)[ARJUN]
    follow_up = [t for t in _hs_tasks(world, contact) if t["hubspot_owner_id"] == _owners(world)[ARJUN]]
    assert len(follow_up) == 1 and "re-queued" in follow_up[0]["hs_task_subject"]
    [entry] = _audit(world, contact, "sla_requeued")
    assert {JACK, CHLOE, ZOE} <= set(entry.detail["excluded"]) and entry.detail["new_owner_email"] == ARJUN
    assert "48 h" in entry.detail["reason"]
    new_clock = _clock(world, contact)
    assert (new_clock.owner_email, new_clock.source, new_clock.started_at) == (ARJUN, "requeue", t0 + timedelta(hours=48))
    with session_factory(world.engine).begin() as session:
        active = Repositories(session).assignments.active_for("hubspot", "contacts", contact)
    assert active is not None and active.owner_email == ARJUN
    assert _steps_for(_fire(world, t0 + timedelta(hours=48)), contact) == []  # once
    # The next sync sees the new owner: the new clock runs on.
    run_sync(world.config, "hubspot", world.engine, now=lambda: t0 + timedelta(hours=49), full=True)
    assert _clock(world, contact).id == new_clock.id


def test_a_cold_lead_a_rep_owns_by_hand_gets_the_48_hour_sla(world: World, t0: datetime) -> None:  # noqa: F811
    owners = _owners(world)
    contact = _create_contact(world, email="kim.lo@gmail.com", firstname="Kim", lastname="Lo",
                              hubspot_owner_id=owners[LIAM], hs_lead_status="NEW")
    run_sync(world.config, "hubspot", world.engine, now=lambda: t0)
    clock = _clock(world, contact)
    assert (clock.owner_email, clock.tier, clock.source) == (LIAM, "Cold", "crm_owner")
    assert clock.next_due_at == t0 + timedelta(hours=24)

    assert _steps_for(_fire(world, t0 + timedelta(hours=24)), contact) == ["remind"]
    assert _steps_for(_fire(world, t0 + timedelta(hours=47, minutes=59)), contact) == []
    # Touched at last: the escalation due at 48 h never comes.
    time.sleep(1.1)
    world.hs.crm.contacts.basic_api.update(contact, SimplePublicObjectInput(properties={"hs_lead_status": "CONNECTED"}))
    run_sync(world.config, "hubspot", world.engine, now=lambda: t0 + timedelta(hours=47, minutes=59, seconds=30))
    assert _steps_for(_fire(world, t0 + timedelta(hours=48)), contact) == []
    keys = sorted(t["relay_idempotency_key"] for t in _hs_tasks(world, contact))
    # the SLA's tasks (a disposition is also due 24 hours after the touch: dispositions.yaml, its own tests)
    assert [k for k in keys if ":dispo-" not in k] == [f"task:hubspot:contacts:{contact}:sla{clock.id}-remind"]
    assert _clock(world, contact).first_touch_at is not None


def test_business_hours_hold_the_sla_over_a_weekend(world: World) -> None:  # noqa: F811
    friday = datetime(2026, 3, 6, 21, 0, tzinfo=UTC)  # 16:00 in New York
    rules = world.config.rules
    hours = BusinessHours(enabled=True, default_calendar="NA",
                          calendars={"NA": WorkCalendar(timezone="America/New_York", country="US")})
    config = replace(world.config, rules=rules.model_copy(
        update={"sla": rules.sla.model_copy(update={"business_hours": hours})}))
    contact = _create_contact(world, **QUALIFIED_NA)
    run_sync(config, "hubspot", world.engine, now=lambda: friday)
    # 12 working hours of the 24 h SLA: Fri 16-17, Mon 9-17, Tue 9-12 EDT (DST began on Sunday).
    assert _clock(world, contact).next_due_at == datetime(2026, 3, 10, 16, 0, tzinfo=UTC)
    assert _steps_for(_fire(world, friday + timedelta(hours=12), config), contact) == []  # calendar time: due
    assert _steps_for(_fire(world, datetime(2026, 3, 10, 16, 0, tzinfo=UTC), config), contact) == ["remind"]


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture()
def postgres() -> Iterator[Engine]:
    with fresh_postgres_schema() as url:
        engine = open_store(url)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture()
def pg_world() -> Iterator[World]:
    """The sandbox CRMs of ``world`` with a PostgreSQL store."""
    data = generate(seed=5, leads=20, anchor=ANCHOR)
    sf_box, hs_box = SalesforceSandbox(data), HubSpotSandbox(data)
    sf_url, hs_url = sf_box.start().url, hs_box.start().url
    env = dict(os.environ, SALESFORCE_INSTANCE_URL=sf_url, HUBSPOT_BASE_URL=hs_url)
    try:
        with fresh_postgres_schema() as url:
            engine = open_store(url)
            try:
                yield World(config=load_config(env=env), engine=engine,
                            sf=Salesforce(instance_url="https://sandbox", session_id=sf_box.access_token(),
                                          session=sandbox_session(sf_url), version="59.0"),
                            hs=HubSpot(access_token="sandbox-token", host=hs_url))
            finally:
                engine.dispose()
    finally:
        hs_box.stop()
        sf_box.stop()


def test_two_job_runs_at_once_on_postgresql_fire_each_step_once(pg_world: World, t0: datetime) -> None:
    contact = _create_contact(pg_world, **QUALIFIED_NA)
    run_sync(pg_world.config, "hubspot", pg_world.engine, now=lambda: t0)
    results: list[FireSummary] = []
    runs = [threading.Thread(target=lambda: results.append(_fire(pg_world, t0 + timedelta(hours=25))))
            for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert len(results) == 2
    assert sorted(s.step for r in results for s in r.fired if s.crm_id == contact) == ["escalate_manager", "remind"]
    keys = [t["relay_idempotency_key"] for t in _hs_tasks(pg_world, contact)]
    assert len(keys) == len(set(keys)) == 3
    assert len(_audit(pg_world, contact, "sla_reminder", "sla_escalated")) == 2


def test_concurrent_claims_on_postgresql_never_share_a_clock(postgres: Engine) -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    sessions = session_factory(postgres)
    with sessions.begin() as session:
        Repositories(session).clocks.open_many([
            ClockIn("hubspot", "contacts", str(1000 + i), JACK, "Hot", now, source="relay",
                    next_due_at=now - timedelta(minutes=i)) for i in range(10)], now=now)
    first, second = sessions(), sessions()
    try:
        first.begin()
        second.begin()
        mine = Repositories(first).clocks.claim_due(now, limit=6)
        theirs = Repositories(second).clocks.claim_due(now, limit=6)  # skips the locked rows, does not wait
        assert len(mine) == 6 and len(theirs) == 4
        assert not {c.id for c in mine} & {c.id for c in theirs}
    finally:
        first.rollback()
        second.rollback()
        first.close()
        second.close()
    assert len(list_clocks(postgres, due=True, now=now)) == 10


def test_relay_clocks_list_and_fire(world: World, t0: datetime, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    contact = _create_contact(world, **QUALIFIED_NA)
    run_sync(world.config, "hubspot", world.engine, now=lambda: t0 - timedelta(hours=13))  # reminder due an hour ago
    monkeypatch.setenv("RELAY_DATABASE_URL", world.engine.url.render_as_string(hide_password=False))
    for name, connection in world.config.relay.connections.items():
        monkeypatch.setenv(f"{name.upper()}_{'INSTANCE' if name == 'salesforce' else 'BASE'}_URL",
                           str(connection.base_url))
    monkeypatch.setattr(cli.console, "width", 200)  # as piped (pytest-xdist exports COLUMNS=80)
    runner = CliRunner()

    listed = runner.invoke(app, ["clocks", "list", "--due", "--connection", "hubspot"])
    assert listed.exit_code == 0, listed.output
    assert f"hubspot/contacts/{contact}" in listed.output and JACK in listed.output

    fired = runner.invoke(app, ["clocks", "fire", "--connection", "hubspot"])
    assert fired.exit_code == 0, (fired.output, fired.exception)
    assert any(line.split()[:2] == ["remind", f"hubspot/contacts/{contact}"] for line in fired.output.splitlines())
    again = runner.invoke(app, ["clocks", "fire", "--connection", "hubspot"])
    assert again.exit_code == 0 and f"hubspot/contacts/{contact}" not in again.output
    assert len([t for t in _hs_tasks(world, contact) if t["hubspot_owner_id"] == _owners(world)[JACK]]) == 2
