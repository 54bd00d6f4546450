"""The admin's way out and the CLI's manners: runs, cursors, exit codes, messages that survive odd text."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from connector import cli
from connector.pipeline.summary import SyncSummary, WriteFailure

from ._cli import relay, sync_summary
from ._world import RelayEnv


def test_an_unknown_connection_exits_1_naming_the_known_ones(relay_env: RelayEnv) -> None:
    result = relay("sync", "pipedrive")
    assert result.exit_code == 1
    said = " ".join(result.stderr.split())
    assert "no connection 'pipedrive'" in said and "(known: salesforce, hubspot)" in said


@pytest.mark.parametrize("leads", ["-5", "0"])
def test_demo_refuses_a_lead_count_below_one_without_a_traceback(leads: str) -> None:
    result = relay("demo", "--leads", leads)
    assert result.exit_code == 2
    assert "--leads" in result.stderr and "Traceback" not in result.output


def test_runs_and_cursors_after_a_sync(relay_env: RelayEnv) -> None:
    summary = sync_summary("hubspot")
    listed = relay("runs", "list")
    assert listed.exit_code == 0, listed.output
    assert f"{summary['run_id']}" in listed.stdout and "succeeded" in listed.stdout

    shown = relay("runs", "show", str(summary["run_id"]))
    assert shown.exit_code == 0, shown.output
    assert "hubspot" in shown.stdout and "succeeded" in shown.stdout

    missing = relay("runs", "show", "999999")
    assert missing.exit_code == 1 and "999999" in missing.stderr

    cursors = relay("cursors", "list", "hubspot")
    assert cursors.exit_code == 0 and "contacts" in cursors.stdout

    one = relay("cursors", "reset", "hubspot", "contacts")
    assert one.exit_code == 0 and "reset 1 cursor(s) of hubspot.contacts" in one.stdout
    rest = relay("cursors", "reset", "hubspot")
    assert rest.exit_code == 0
    assert "no cursors for hubspot" in relay("cursors", "list", "hubspot").stdout


def test_refusals_holding_markup_are_printed_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    summary = SyncSummary(connection="salesforce", mode="incremental")
    summary.write_failures.append(WriteFailure(
        "Lead", "00Q1", "update", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Company [/bold] must not be [red]x"))
    cli._print_summary(summary)
    assert "Company [/bold] must not be [red]x" in " ".join(capsys.readouterr().out.split())


def test_verbose_flag_lowers_the_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAY_LOG_LEVEL", raising=False)
    cli._configure_logging(0)
    assert logging.getLogger().level == logging.WARNING
    cli._configure_logging(1)
    assert logging.getLogger().level == logging.INFO
    monkeypatch.setenv("RELAY_LOG_LEVEL", "error")
    cli._configure_logging(0)
    assert logging.getLogger().level == logging.ERROR


def test_a_typo_in_a_hubspot_property_is_named_before_anything_is_written(
    relay_env: RelayEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(relay_env.mappings_dir, mappings)
    hubspot_yaml = mappings / "hubspot.yaml"
    hubspot_yaml.write_text(hubspot_yaml.read_text().replace("crm: hs_analytics_num_page_views",
                                                             "crm: hs_analytics_num_page_veiws"))
    monkeypatch.setenv("RELAY_MAPPINGS_DIR", str(mappings))

    checked = relay("config", "validate", "--remote")
    said = " ".join(checked.stderr.split())
    assert checked.exit_code == 1, checked.output
    assert "HubSpot contacts has no property hs_analytics_num_page_veiws" in said
    assert "mappings/hubspot.yaml" in said
    assert "every field mapped for salesforce exists" in " ".join(checked.stdout.split())

    synced = relay("sync", "hubspot")
    assert synced.exit_code == 1
    assert "hs_analytics_num_page_veiws" in " ".join(synced.stderr.split())
    assert relay("runs", "list").exit_code == 0


@pytest.mark.parametrize("problem", ["missing directory", "not a database", "truncated"])
def test_a_broken_store_is_named_in_one_line(
    relay_env: RelayEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, problem: str
) -> None:
    path = tmp_path / "nope" / "relay.db"
    if problem != "missing directory":
        path = tmp_path / "relay.db"
        if problem == "not a database":
            path.write_text("this is a shopping list, not a database\n" * 200)
        else:
            monkeypatch.setenv("RELAY_DATABASE_URL", f"sqlite:///{path}")
            assert relay("db", "upgrade").exit_code == 0
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
    monkeypatch.setenv("RELAY_DATABASE_URL", f"sqlite:///{path}")

    result = relay("sync", "salesforce")

    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    assert lines[0].startswith(f"error: sqlite:///{path}: "), lines[0]
    assert "RELAY_DATABASE_URL" in lines[0] or "relay sync --full" in lines[0]


def test_relay_events_decides_a_pushed_record_and_then_has_nothing_left(relay_env: RelayEnv) -> None:
    from datetime import UTC, datetime

    from connector.crms.intake import WebhookEvent
    from connector.pipeline.intake import EventInbox
    from connector.store.migrate import open_store

    assert relay("events").stdout.strip() == "no stored events to process"
    sync_summary("hubspot")
    engine = open_store(relay_env.store_url)
    try:
        EventInbox(engine).store("hubspot", "hubspot", [
            WebhookEvent("e1", "contacts", "no-such-contact", "contact.creation", {}),
            WebhookEvent("e2", "contacts", None, "contact.associationChange", {})], now=datetime.now(UTC))
    finally:
        engine.dispose()

    result = relay("events")

    assert result.exit_code == 0, result.output
    assert "hubspot: 2 events, 1 record read by id and decided" in " ".join(result.stdout.split())
    assert relay("events").stdout.strip() == "no stored events to process"
