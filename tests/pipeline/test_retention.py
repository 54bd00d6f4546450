"""Retention end to end through both sandbox CRMs over HTTP, under a controlled clock.

The seed's people are all made recent, but for a few whose dates (creation, last activity), class
(opt-out, lifecycle stage) and email are set on purpose: two Salesforce leads and a HubSpot contact
that are prospects 3 years old (deleted), an opted-out lead 6 years old (suppressed), a HubSpot
customer 8 years old (archived), a prospect whose last activity is recent, a prospect 1 year old,
and a person old in Salesforce but recent in HubSpot (kept: a person is judged on all their
records). Relay syncs both CRMs, then ``relay retention run`` judges at a fixed ``now``: a dry run
writes nothing anywhere; ``--apply`` deletes exactly the expected records in the CRMs (read back
through simple-salesforce and hubspot-api-client), purges the store of them (the audit keeps the
pseudonymous key), archives and suppresses the others once, and a second run does nothing new.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from simple_salesforce import Salesforce
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from connector import cli
from connector.cli import app
from connector.config.loader import RelayConfig, load_config
from connector.core.governance.retention import DAYS_PER_YEAR
from connector.core.identity import person_key
from connector.pipeline.retention import SUPPRESSION_VALUE, run_retention
from connector.pipeline.sync import run_sync
from connector.privacy.subject import subject_key
from connector.store.db import session_factory
from connector.store.migrate import open_store
from connector.store.models import AuditRow, DispositionRow, IdentityRow, RecordRow
from connector.store.repositories import AssignmentIn, Repositories
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from crm_sandbox.salesforce.transport import sandbox_session
from crm_sandbox.seed import SeedData, generate
from tests.support.databases import fresh_postgres_schema

ANCHOR = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
NOW = ANCHOR + timedelta(days=1)
RECENT = ANCHOR - timedelta(days=30)
LUCAS = "lucas.silva@northwind.example"  # an inactive user in both CRMs and routing.yaml


def years_ago(years: float) -> datetime:
    return ANCHOR - timedelta(days=years * DAYS_PER_YEAR)


def _sf(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _hs(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Cast:
    """The records the test set up, by role (CRM ids)."""

    sf_old_prospects: list[str]
    sf_unsubscribed: str
    sf_recent_activity: str
    sf_twin: str
    hs_old_prospect: str
    hs_customer: str
    hs_young_prospect: str
    hs_twin: str
    emails: dict[str, str]


def _seed() -> tuple[SeedData, Cast]:
    data = copy.deepcopy(generate(seed=3, leads=24, anchor=ANCHOR, dispositions=False))
    leads = [r for r in data.salesforce["Lead"] if not r["IsConverted"]]
    for record in data.salesforce["Lead"] + data.salesforce["Contact"]:
        record["CreatedDate"] = _sf(RECENT)
        record["LastActivityDate"] = None
    contacts = data.hubspot["contacts"]
    for record in contacts:
        record["createdAt"] = record["properties"]["createdate"] = _hs(RECENT)
        record["properties"]["notes_last_updated"] = None
    emails: dict[str, str] = {}

    def lead(index: int, role: str, created: datetime, *, activity: datetime | None = None,
             opt_out: bool = False) -> str:
        record = leads[index]
        email = f"retention.{role}@gmail.com"
        record.update(Email=email, FirstName="Ret", LastName=f"Lead {role}", Company=f"Nobody Such {role} Ltd",
                      HasOptedOutOfEmail=opt_out, CreatedDate=_sf(created), Website=None,
                      LastActivityDate=activity.date().isoformat() if activity else None)
        emails[role] = email
        return str(record["Id"])

    def contact(index: int, role: str, created: datetime, *, stage: str = "lead", email: str | None = None) -> str:
        record = contacts[index]
        email = email or f"retention.{role}@gmail.com"
        record["createdAt"] = _hs(created)
        record["properties"].update(email=email, firstname="Ret", lastname=f"Contact {role}", website=None,
                                    company=f"Nobody Such {role} Ltd", createdate=_hs(created),
                                    lifecyclestage=stage, hs_email_optout="false")
        emails[role] = email
        return str(record["id"])

    cast = Cast(
        sf_old_prospects=[lead(0, "old1", years_ago(3), activity=years_ago(2.5)), lead(1, "old2", years_ago(4))],
        sf_unsubscribed=lead(2, "unsub", years_ago(6), opt_out=True),
        sf_recent_activity=lead(3, "active", years_ago(3), activity=RECENT),
        sf_twin=lead(4, "twin", years_ago(3)),
        hs_old_prospect=contact(0, "hsold", years_ago(3)),
        hs_customer=contact(1, "customer", years_ago(8), stage="customer"),
        hs_young_prospect=contact(2, "young", years_ago(1)),
        hs_twin=contact(3, "twin", RECENT, email="retention.twin@gmail.com"),
        emails=emails,
    )
    return data, cast


@dataclass
class World:
    config: RelayConfig
    engine: Engine
    sf: Salesforce
    hs: HubSpot
    sf_box: SalesforceSandbox
    hs_box: HubSpotSandbox
    cast: Cast
    env: dict[str, str]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'relay.db'}"
        return
    with fresh_postgres_schema() as url:
        yield url


@pytest.fixture
def world(store_url: str) -> Iterator[World]:
    data, cast = _seed()
    sf_box, hs_box = SalesforceSandbox(data), HubSpotSandbox(data)
    sf_url, hs_url = sf_box.start().url, hs_box.start().url
    env = dict(os.environ, SALESFORCE_INSTANCE_URL=sf_url, HUBSPOT_BASE_URL=hs_url, RELAY_DATABASE_URL=store_url)
    engine = open_store(store_url)
    config = load_config(env=env)
    for connection in config.relay.connections.values():
        connection.read_lag_seconds = 0
    try:
        yield World(config, engine, Salesforce(instance_url="https://sandbox", session_id=sf_box.access_token(),
                                               session=sandbox_session(sf_url), version="59.0"),
                    HubSpot(access_token="sandbox-token", host=hs_url), sf_box, hs_box, cast, env)
    finally:
        engine.dispose()
        hs_box.stop()
        sf_box.stop()


def _synced(world: World) -> None:
    for connection in ("salesforce", "hubspot"):
        summary = run_sync(world.config, connection, world.engine, now=lambda: ANCHOR)
        assert summary.write_failures == [], summary.write_failures
    # Lucas left long ago: his last assignment in Relay's ledger is 8 years old.
    with session_factory(world.engine).begin() as session:
        Repositories(session).assignments.record_many([AssignmentIn(
            "salesforce", "Lead", "00Q5e00000000ZZZAA", LUCAS, tier="Warm", assigned_at=years_ago(8))])


def _sf_deleted(world: World) -> set[str]:
    rows = world.sf.query_all("SELECT Id FROM Lead WHERE IsDeleted = true", include_deleted=True)["records"]
    contacts = world.sf.query_all("SELECT Id FROM Contact WHERE IsDeleted = true", include_deleted=True)["records"]
    return {r["Id"] for r in rows + contacts}


def _sf_lead(world: World, crm_id: str) -> dict[str, Any]:
    answer = world.sf.restful(f"sobjects/Lead/{crm_id}")
    assert isinstance(answer, dict)
    return answer


def _hs_archived(world: World) -> set[str]:
    return {r.id for r in world.hs.crm.contacts.get_all(archived=True)}


def _audit(world: World, action: str) -> list[AuditRow]:
    with session_factory(world.engine)() as session:
        return list(session.scalars(select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.id)))


def _count(world: World, model: Any) -> int:
    with session_factory(world.engine)() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _writes(world: World) -> int:
    """The write calls both sandboxes received, once their ledgers are still (an entry is written as its
    answer ends, so the last one may land just after the client has the answer)."""
    def count() -> int:
        entries = list(world.sf_box.ledger.entries()) + list(world.hs_box.ledger.entries())
        return sum(1 for e in entries if e.method in ("POST", "PATCH", "DELETE", "PUT")
                   and "/oauth2/" not in e.path and not e.path.endswith(("/search", "/batch/read")))

    seen = count()
    while True:
        time.sleep(0.1)
        now = count()
        if now == seen:
            return now
        seen = now


def test_dry_run_reports_per_class_and_writes_nothing(world: World) -> None:
    _synced(world)
    cast = world.cast
    audit_rows, dispositions, writes = _count(world, AuditRow), _count(world, DispositionRow), _writes(world)

    report = run_retention(world.config, world.engine, now=NOW)

    due = {(p.verdict.action, "/".join(r)) for p in report.due for r in p.pending}
    assert due == {
        *(("delete", f"salesforce/Lead/{i}") for i in cast.sf_old_prospects),
        ("delete", f"hubspot/contacts/{cast.hs_old_prospect}"),
        ("suppress", f"salesforce/Lead/{cast.sf_unsubscribed}"),
        ("archive", f"hubspot/contacts/{cast.hs_customer}"),
        *(("archive", f"{c}/{o}/{i}") for c, o, i in _lucas(world)),
    }
    tallies = report.tallies
    assert (tallies["prospect"].due_people, tallies["unsubscribed"].due_people) == (3, 1)
    assert (tallies["customer"].due_people, tallies["employee"].due_people) == (1, 2)
    assert tallies["prospect"].people > 10 and tallies["employee"].people == 2  # lucas in each CRM
    # Nothing written: no CRM write, no audit entry, no suppression.
    assert (_count(world, AuditRow), _count(world, DispositionRow), _writes(world)) == (audit_rows, dispositions,
                                                                                       writes)
    assert _sf_deleted(world) == set() and _hs_archived(world) == set()
    # 400 days earlier: the 3-year-old prospects were not due yet, the 4-year-old one was.
    earlier = run_retention(world.config, world.engine, now=NOW - timedelta(days=400))
    assert {"/".join(r) for p in earlier.due if p.verdict.action == "delete" for r in p.pending} == {
        f"salesforce/Lead/{cast.sf_old_prospects[1]}"}


def _lucas(world: World) -> list[tuple[str, str, str]]:
    users = world.sf.query_all(f"SELECT Id FROM User WHERE Email = '{LUCAS}'")["records"]
    owners = [o for o in world.hs.crm.owners.get_all(archived=True) if o.email == LUCAS]
    return [("salesforce", "User", users[0]["Id"]), ("hubspot", "owners", str(owners[0].id))]


def test_apply_deletes_exactly_the_expected_prospects_and_purges_the_store(world: World) -> None:
    _synced(world)
    cast = world.cast
    sf_gone = set(cast.sf_old_prospects)
    with session_factory(world.engine)() as session:
        relay_ids = {row.crm_id: row.relay_id for row in session.scalars(
            select(RecordRow).where(RecordRow.crm_id.in_([*sf_gone, cast.hs_old_prospect])))}

    report = run_retention(world.config, world.engine, now=NOW, apply=True)

    assert report.failed == []
    # Read back through the official SDKs: exactly these are gone, everything else is there.
    assert _sf_deleted(world) == sf_gone
    assert _hs_archived(world) == {cast.hs_old_prospect}
    for crm_id in (cast.sf_unsubscribed, cast.sf_recent_activity, cast.sf_twin):
        assert _sf_lead(world, crm_id)["IsDeleted"] is False
    for crm_id in (cast.hs_customer, cast.hs_young_prospect, cast.hs_twin):
        assert world.hs.crm.contacts.basic_api.get_by_id(crm_id).id == crm_id
    # Each deletion audited under the pseudonymous key only.
    deleted = {str(row.crm_id): row for row in _audit(world, "retention_deleted")}
    assert set(deleted) == {*sf_gone, cast.hs_old_prospect}
    roles = {cast.sf_old_prospects[0]: "old1", cast.sf_old_prospects[1]: "old2", cast.hs_old_prospect: "hsold"}
    for gone_id, row in deleted.items():
        email = cast.emails[roles[gone_id]]
        assert row.detail["subject"] == subject_key(email) and row.detail["class"] == "prospect"
        assert row.detail["crm"] == "deleted" and row.relay_id == relay_ids[gone_id]
        assert email not in json.dumps(row.detail) and "Ret" not in json.dumps(row.detail)
    # The store keeps no personal data of theirs: snapshots blanked and deleted, identity key erased.
    with session_factory(world.engine)() as session:
        for gone_id in deleted:
            snapshot = session.scalars(select(RecordRow).where(RecordRow.crm_id == gone_id)).one()
            assert snapshot.deleted and not snapshot.canonical.get("email") and not snapshot.canonical.get("last_name")
        keys = set(session.scalars(select(IdentityRow.key)))
        assert not {person_key(cast.emails[r]) for r in ("old1", "old2", "hsold")} & keys
        assert person_key(cast.emails["unsub"]) in keys and person_key(cast.emails["customer"]) in keys  # kept
    assert sorted(report.purged) == sorted(subject_key(cast.emails[r]) for r in ("old1", "old2", "hsold"))
    # Archived (no CRM change) and suppressed, once each.
    archived = {(r.connection, r.object, r.crm_id) for r in _audit(world, "retention_archived")}
    assert archived == {("hubspot", "contacts", cast.hs_customer), *_lucas(world)}
    assert [r.crm_id for r in _audit(world, "retention_suppressed")] == [cast.sf_unsubscribed]
    with session_factory(world.engine)() as session:
        (suppression,) = session.scalars(select(DispositionRow).where(DispositionRow.value == SUPPRESSION_VALUE))
    assert (suppression.crm_id, suppression.suppressed, suppression.action) == (cast.sf_unsubscribed, True, "suppress")

    # A second run finds everything done and does nothing new.
    writes, audit_rows = _writes(world), _count(world, AuditRow)
    again = run_retention(world.config, world.engine, now=NOW, apply=True)
    assert again.due == [] and again.deleted == again.archived == again.suppressed == []
    assert (_writes(world), _count(world, AuditRow)) == (writes, audit_rows)
    assert again.tallies["prospect"].done_before == 3

    # The suppressed person is never routed again: the next sync says why.
    run_sync(world.config, "salesforce", world.engine, now=lambda: NOW, full=True)
    lead = _sf_lead(world, cast.sf_unsubscribed)
    assert lead["Relay_Routing_Reason__c"].startswith(f"Suppressed: {SUPPRESSION_VALUE} set ")


def test_one_connection_deletes_there_and_purges_once_no_crm_has_the_person(world: World) -> None:
    _synced(world)
    cast = world.cast
    # The HubSpot twin is made old too: the person (one email in both CRMs) is now a due prospect.
    with session_factory(world.engine).begin() as session:
        twin = session.scalars(select(RecordRow).where(RecordRow.crm_id == cast.hs_twin,
                                                       RecordRow.connection == "hubspot")).one()
        twin.canonical = {**twin.canonical, "created_at": years_ago(3).isoformat()}

    first = run_retention(world.config, world.engine, now=NOW, apply=True, connection="salesforce")

    assert f"salesforce/Lead/{cast.sf_twin}" in first.deleted
    assert all(not d.startswith("hubspot/") for d in first.deleted + first.archived)
    assert cast.sf_twin in _sf_deleted(world) and _hs_archived(world) == set()
    assert subject_key(cast.emails["twin"]) not in first.purged  # HubSpot still has them
    with session_factory(world.engine)() as session:
        assert person_key(cast.emails["twin"]) in set(session.scalars(select(IdentityRow.key)))

    second = run_retention(world.config, world.engine, now=NOW, apply=True, connection="hubspot")

    assert f"hubspot/contacts/{cast.hs_twin}" in second.deleted and cast.hs_twin in _hs_archived(world)
    assert subject_key(cast.emails["twin"]) in second.purged
    with session_factory(world.engine)() as session:
        assert person_key(cast.emails["twin"]) not in set(session.scalars(select(IdentityRow.key)))


def test_relay_retention_run_on_the_command_line(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _synced(world)
    for name in ("SALESFORCE_INSTANCE_URL", "HUBSPOT_BASE_URL", "RELAY_DATABASE_URL"):
        monkeypatch.setenv(name, world.env[name])
    monkeypatch.setattr(cli.console, "width", 200)
    runner = CliRunner()

    dry = runner.invoke(app, ["retention", "run", "--now", NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "--json"])
    assert dry.exit_code == 0, (dry.output, dry.exception)
    report = json.loads(dry.stdout)
    assert report["apply"] is False and report["deleted"] == []
    assert {r for p in report["due"] if p["action"] == "delete" for r in p["records"]} == {
        *(f"salesforce/Lead/{i}" for i in world.cast.sf_old_prospects), f"hubspot/contacts/{world.cast.hs_old_prospect}"}
    assert all(world.cast.emails[role] not in dry.stdout for role in world.cast.emails)  # ids only

    text = runner.invoke(app, ["retention", "run", "--now", "2026-02-03", "--connection", "hubspot"])
    assert text.exit_code == 0, text.output
    assert "dry run: nothing is written" in text.output
    assert f"would delete: hubspot/contacts/{world.cast.hs_old_prospect} (prospect" in text.output
    assert _hs_archived(world) == set()

    applied = runner.invoke(app, ["retention", "run", "--now", "2026-02-03", "--connection", "hubspot", "--apply"])
    assert applied.exit_code == 0, applied.output
    assert f"deleted: hubspot/contacts/{world.cast.hs_old_prospect}" in applied.output
    assert _hs_archived(world) == {world.cast.hs_old_prospect}

    bad = runner.invoke(app, ["retention", "run", "--now", "next tuesday"])
    assert bad.exit_code == 2 and "--now 'next tuesday' is not an ISO 8601 time" in bad.output
    unknown = runner.invoke(app, ["retention", "run", "--connection", "pipedrive"])
    assert unknown.exit_code == 1
