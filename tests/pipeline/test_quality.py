"""Data quality per run and lead source, as ``relay sync`` prints it and the store keeps it.

Both sandbox CRMs over real HTTP, Relay run through its CLI (text and ``--json``); the records
measured are made through the official SDKs, so the figures expected are known by construction.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from simple_salesforce.api import SFType
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from connector.config.loader import load_config
from connector.config.problems import ConfigError
from connector.store.errors import InvalidStoreValue
from connector.store.migrate import open_store
from connector.store.models import RecordRow
from connector.store.repositories import DataQualityIn, DataQualityRecord, FieldFill, Repositories
from tests.e2e._cli import relay
from tests.e2e._crm import hubspot_client, salesforce_client
from tests.e2e._world import (
    SHIPPED_CONFIG,
    SHIPPED_MAPPINGS,
    Crms,
    relay_env_for,
    running_crms,
    seed_for,
)
from tests.support.databases import fresh_postgres_schema

FAIR = "Quality Fair"
"""A lead source no seeded record has: the leads made in the test are all of it."""


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'relay.db'}"
        return
    with fresh_postgres_schema() as url:  # skips locally, fails under CI=true, when not configured
        yield url


@pytest.fixture
def crms() -> Iterator[Crms]:
    with running_crms(seed_for(7, 120)) as world:
        yield world


def _config_without_read_lag(target: Path) -> Path:
    """A copy of the shipped config where a record made a moment ago is read at once (no commit lag to wait out)."""
    shutil.copytree(SHIPPED_CONFIG, target)
    relay_yaml = target / "relay.yaml"
    text, n = re.subn(r"(?m)^(    page_size: .*)$", r"\1\n    read_lag_seconds: 0", relay_yaml.read_text())
    assert n == 2, f"expected a page_size under each connection of {relay_yaml}"
    relay_yaml.write_text(text)
    return target


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, crms: Crms, store_url: str, tmp_path: Path) -> Iterator[Engine]:
    """Relay's environment pointed at the sandboxes and the store; the store, migrated."""
    env = relay_env_for(crms, store_url, tmp_path)
    env.overrides["RELAY_CONFIG_DIR"] = str(_config_without_read_lag(tmp_path / "config"))
    for name, value in env.overrides.items():
        monkeypatch.setenv(name, value)
    for name in env.removed:
        monkeypatch.delenv(name, raising=False)
    store = open_store(store_url)
    try:
        yield store
    finally:
        store.dispose()


def _sync_json(connection: str) -> dict[str, Any]:
    result = relay("sync", connection, "--json")
    assert result.exit_code == 0, f"relay sync {connection} --json exited {result.exit_code}:\n{result.output}"
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def _sync_text(connection: str) -> str:
    result = relay("sync", connection)
    assert result.exit_code == 0, f"relay sync {connection} exited {result.exit_code}:\n{result.output}"
    return result.stdout


def _stored(engine: Engine, run_id: int) -> dict[str, DataQualityRecord]:
    with Session(engine) as session:
        return {row.source: row for row in Repositories(session).data_quality.for_run(run_id)}


def _make_fair_leads(crms: Crms) -> None:
    """Four leads of one new source, made through simple-salesforce, each with a known flaw.

    Ada twice (the second record is a duplicate: same address, made later), Grace with an
    address and a phone the CRM takes but that are not valid (a double dot, a two-digit
    number), and a lead with neither first name nor email.
    """
    leads = cast(SFType, salesforce_client(crms.salesforce).Lead)
    base = {"LeadSource": FAIR, "Status": "Open - Not Contacted"}
    leads.create({**base, "FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@analytical-engines.example",
                    "Company": "Analytical Engines"})
    leads.create({**base, "FirstName": "Ada", "LastName": "Lovelace", "Email": "ADA@analytical-engines.example",
                    "Company": "Analytical Engines"})
    leads.create({**base, "FirstName": "Grace", "LastName": "Hopper", "Email": "grace..hopper@navy.example",
                    "Phone": "12", "Company": "US Navy"})
    leads.create({**base, "LastName": "Nobody", "Company": "Unknown Co"})


def test_a_salesforce_sync_reports_and_stores_the_quality_of_a_new_lead_source(crms: Crms, engine: Engine) -> None:
    first = _sync_json("salesforce")
    assert FAIR not in first["quality"]["sources"]
    assert first["quality"]["targets"] == {"completeness_min_percent": 95.0, "duplicates_max_percent": 2.0}
    _make_fair_leads(crms)

    summary = _sync_json("salesforce")

    quality = summary["quality"]
    fair = quality["sources"][FAIR]
    # 4 records x 5 required fields, two missing (first name and email of the last lead): 18 of 20.
    assert fair == {
        "records": 4, "completeness_percent": 90.0, "completeness_met": False,
        "missing": {"email": 1, "first_name": 1},
        "duplicates": 1, "duplicate_percent": 25.0, "duplicates_met": False,
        "emails": 3, "invalid_emails": 1, "phones": 1, "invalid_phones": 1,
        "enriched": None, "enrichment_percent": None,
    }
    assert set(quality["sources"]) == {FAIR}, "only the four new leads were decided in this incremental run"
    assert quality["total"] == fair and quality["not_mapped"] == []
    stored = _stored(engine, summary["run_id"])
    assert set(stored) == {FAIR}
    row = stored[FAIR]
    assert (row.connection, row.records, row.duplicates, row.invalid_emails, row.emails, row.invalid_phones,
            row.phones, row.enriched) == ("salesforce", 4, 1, 1, 3, 1, 1, None)
    assert (row.completeness_percent, row.duplicate_percent, row.completeness_met, row.duplicates_met) == \
        (90.0, 25.0, False, False)
    assert row.missing == {"first_name": 1, "email": 1}
    assert (row.completeness_target, row.duplicates_target) == (95.0, 2.0)
    assert set(stored) == set(_stored(engine, summary["run_id"]))  # read twice, same answer


def test_the_text_summary_shows_each_source_against_the_targets(crms: Crms, engine: Engine,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from connector import cli

    monkeypatch.setattr(cli.console, "width", 200)  # as piped (pytest-xdist exports COLUMNS=80)
    _sync_json("salesforce")
    _make_fair_leads(crms)

    text = _sync_text("salesforce")

    assert "data quality (targets: completeness > 95 %, duplicates < 2 %)" in text
    fair_line = next(line for line in text.splitlines() if line.strip().startswith(FAIR))
    assert re.split(r"\s{2,}", fair_line.strip()) == [
        FAIR, "4", "90.0 % BELOW", "1 = 25.0 % ABOVE", "1 of 3", "1 of 1", "not measured"]
    assert "required fields missing: email 1, first_name 1" in text


def test_a_first_sync_measures_every_record_and_the_duplicates_the_store_links(crms: Crms, engine: Engine) -> None:
    """HubSpot: several pages of contacts added up; its mapping reads no lead source (not measured, not missing)."""
    summary = _sync_json("hubspot")

    contacts = list(hubspot_client(crms.hubspot).crm.contacts.get_all(
        properties=["firstname", "lastname", "email", "company"]))
    decided = len(contacts) - summary["quarantined"]
    assert len(contacts) > 100, "more than one page of 100 contacts"
    quality = summary["quality"]
    assert list(quality["sources"]) == ["(none)"] and quality["not_mapped"] == ["lead_source"]
    total = quality["total"]
    assert total["records"] == decided
    if summary["quarantined"] == 0:  # the fields missing, counted from the CRM itself
        blank = Counter(name for c in contacts for name in ("firstname", "lastname", "email", "company")
                        if not (c.properties.get(name) or "").strip())
        expected = {canonical: blank[crm] for canonical, crm in (("first_name", "firstname"),
                    ("last_name", "lastname"), ("email", "email"), ("company", "company")) if blank[crm]}
        assert total["missing"] == dict(sorted(expected.items(), key=lambda kv: (-kv[1], kv[0])))
        assert total["completeness_percent"] == round(100 * (4 * decided - sum(expected.values())) / (4 * decided), 2)
    # Duplicates: records of one person (one relay id in the store) beyond the first.
    with Session(engine) as session:
        relay_ids = session.scalars(select(RecordRow.relay_id).where(
            RecordRow.connection == "hubspot", RecordRow.object == "contacts", RecordRow.relay_id.is_not(None))).all()
    assert total["duplicates"] == sum(n - 1 for n in Counter(relay_ids).values())
    assert total["duplicate_percent"] == round(100 * total["duplicates"] / decided, 2)
    stored = _stored(engine, summary["run_id"])
    assert list(stored) == ["(none)"]
    assert stored["(none)"].records == decided and stored["(none)"].duplicates == total["duplicates"]
    assert stored["(none)"].fields["lead_source"].measured == 0

    again = _sync_json("hubspot")  # Relay's own writes read back: nothing decided, nothing measured

    assert again["quality"] is None
    assert _stored(engine, again["run_id"]) == {}


def test_a_dry_run_reports_quality_and_stores_none(crms: Crms, engine: Engine) -> None:
    result = relay("sync", "salesforce", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)

    assert summary["quality"]["total"]["records"] > 0
    with Session(engine) as session:
        assert Repositories(session).data_quality.for_connection("salesforce") == []


def test_quality_targets_come_from_quality_yaml_and_errors_name_file_and_key(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG, config_dir)
    quality_yaml = config_dir / "rules" / "quality.yaml"
    for text, expected in (
        ("required_fields: [email, email]\n", f"{quality_yaml}:1: required_fields[1]: 'email' is already listed"),
        ("required_fields: [email]\ncompleteness_min_percent: 120\n",
         f"{quality_yaml}:2: completeness_min_percent: input should be less than or equal to 100 (got 120)"),
        ("required_fields: [email, fax]\n", f"{quality_yaml}:1: required_fields[1]"),
    ):
        quality_yaml.write_text(text)
        with pytest.raises(ConfigError) as raised:
            load_config(config_dir, SHIPPED_MAPPINGS, env={})
        assert expected in str(raised.value), (text, str(raised.value))

    quality_yaml.unlink()  # an older configuration without the file: the SOP defaults
    rules = load_config(config_dir, SHIPPED_MAPPINGS, env={}).rules.quality
    assert (rules.required_fields, rules.completeness_min_percent, rules.duplicates_max_percent) == (
        ["first_name", "last_name", "email", "company", "lead_source"], 95.0, 2.0)


def test_the_store_refuses_figures_that_do_not_add_up_naming_run_source_and_key(store_url: str) -> None:
    engine = open_store(store_url)
    try:
        at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        with Session(engine) as session, session.begin():
            run_id = Repositories(session).sync_runs.start("salesforce", "full", now=at)
        good = DataQualityIn(run_id=run_id, connection="salesforce", source="Web", records=10,
                             fields={"email": FieldFill(9, 10), "lead_source": FieldFill(10, 10)}, duplicates=1,
                             emails=9, invalid_emails=2, phones=5, invalid_phones=0, enriched=None,
                             completeness_target=95.0, duplicates_target=2.0, measured_at=at)
        for bad, message in (
            (replace(good, invalid_emails=10), f"data_quality[run {run_id}, source 'Web'].invalid_emails: 10 is "
                                               "more than the 9 emails"),
            (replace(good, fields={"email": FieldFill(11, 10)}),
             f"data_quality[run {run_id}, source 'Web'].fields.email: filled 11 of 10 measured"),
            (replace(good, records=0), "source with no records"),
        ):
            with Session(engine) as session, session.begin(), pytest.raises(InvalidStoreValue) as raised:
                Repositories(session).data_quality.record_many([bad])
            assert message in str(raised.value)
        with Session(engine) as session, session.begin():
            Repositories(session).data_quality.record_many([good])
        with Session(engine) as session:
            [row] = Repositories(session).data_quality.for_connection("salesforce", since=at)
        assert (row.completeness_percent, row.duplicate_percent, row.missing) == (95.0, 10.0, {"email": 1})
        assert (row.completeness_met, row.duplicates_met) == (False, False)  # both targets are strict
    finally:
        engine.dispose()
