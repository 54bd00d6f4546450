"""Operational alerts: Relay's own events (a dedupe run the blast-radius guard stopped) told to the RevOps admins.

alerts.yaml's ``operations`` section is validated like the rest of the file (file, key, line);
the alerts are queued in the ``notifications`` table, once a day per kind and key facts, and sent
by the same sender as the lead alerts. Each store test runs on SQLite and on PostgreSQL (when
RELAY_TEST_POSTGRES_URL is set); the messages are read back from the running sink over SMTP and
its Slack webhook.
"""

from __future__ import annotations

import shutil
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from connector.config.loader import RelayConfig, load_config
from connector.config.problems import ConfigError
from connector.notify.alert import (
    Alert,
    OperationsAlert,
    OperationsKind,
    Recipient,
    alert_from_json,
)
from connector.notify.settings import OPERATIONS_EVENTS, OPERATIONS_PLACEHOLDERS
from connector.notify.templates import render_operations
from connector.pipeline.alerts import queue_operations_alert, send_pending_notifications
from connector.store.db import session_factory
from connector.store.models import NotificationStatus
from connector.store.repositories import Notification, NotificationIn, Repositories
from crm_sandbox.common import FaultSettings
from crm_sandbox.notify import NotifySandbox
from tests.notify.conftest import config_for

PACKAGED = Path(__file__).resolve().parents[2] / "connector" / "defaults"
NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
GUARD = "merge_guard_stopped"
FACTS: dict[str, Any] = {
    "reason": "240 records would be merged away, more than merge_guard.max_records (200)",
    "planned_sets": 118, "records": 240, "connections": ["hubspot", "salesforce"],
}


def _queue(config: RelayConfig, engine: Engine, now: datetime = NOW, **changes: Any) -> int:
    return queue_operations_alert(config, engine, GUARD, {**FACTS, **changes}, now)


def _rows(engine: Engine) -> list[Notification]:
    with session_factory(engine).begin() as session:
        return Repositories(session).notifications.all()


# --- alerts.yaml's operations section ------------------------------------------------------------


def _copy(tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(PACKAGED / "config", tmp_path / "config")
    shutil.copytree(PACKAGED / "mappings", tmp_path / "mappings")
    return tmp_path / "config", tmp_path / "mappings"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_shipped_section_tells_revops_by_email_and_slack() -> None:
    alerts = config_for(None).alerts
    assert alerts is not None and alerts.operations is not None
    operations = alerts.operations
    assert [c.value for c in operations.channels] == ["email", "slack"]
    assert (operations.email, operations.slack, operations.name) == ("revops@northwind.example", "#revops-alerts",
                                                                     "RevOps")
    # The file repeats the default words, to edit.
    kind = OperationsKind.MERGE_GUARD_STOPPED
    assert operations.template(kind) == OPERATIONS_EVENTS[kind].template


@pytest.mark.parametrize(("old", "new", "key", "words"), [
    ("  channels: [email, slack]\n  email: revops", "  channels: [email, sms]\n  email: revops",
     "operations.channels[1]", "email or slack, not sms"),
    ("  channels: [email, slack]\n  email: revops", "  channels: [slack, slack]\n  email: revops",
     "operations.channels[1]", "listed twice"),
    ("  channels: [email, slack]\n  email: revops", "  channels: [email, pager]\n  email: revops",
     "operations.channels[1]", "pager"),
    ("  email: revops@northwind.example\n", "  email: revops\n", "operations.email", "'revops' is not an email"),
    ('  slack: "#revops-alerts"', '  slack: "revops alerts"', "operations.slack", "not a Slack channel"),
    ('      subject: "[Relay] Dedupe stopped: $records records', '      subject: "[Relay] Dedupe stopped: $record records',
     "operations.templates.merge_guard_stopped.subject", "unknown placeholder $record (known: event, recipient, at, "
     "reason, planned_sets, records, connections)"),
    ("merged nothing: $reason.", "merged nothing: $ reason.", "operations.templates.merge_guard_stopped.text",
     "write $$ for a dollar sign"),
    ("  name: RevOps\n", "  nmae: RevOps\n", "operations.nmae", "unknown key 'nmae'; did you mean 'name'?"),
])
def test_an_invalid_operations_section_refuses_the_config_naming_file_key_and_line(
    tmp_path: Path, old: str, new: str, key: str, words: str,
) -> None:
    config_dir, mappings_dir = _copy(tmp_path)
    alerts_file = config_dir / "rules" / "alerts.yaml"
    _edit(alerts_file, old, new)

    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, mappings_dir, env={})

    [problem] = caught.value.problems
    assert (problem.file, problem.key_path) == (str(alerts_file), key)
    assert words in problem.message
    lines = alerts_file.read_text(encoding="utf-8").splitlines()
    assert problem.line is not None and key.split(".")[-1].split("[")[0] in lines[problem.line - 1]


def test_email_in_channels_needs_the_admins_address(tmp_path: Path) -> None:
    config_dir, mappings_dir = _copy(tmp_path)
    alerts_file = config_dir / "rules" / "alerts.yaml"
    _edit(alerts_file, "  email: revops@northwind.example\n", "")
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, mappings_dir, env={})
    [problem] = caught.value.problems
    assert (problem.file, problem.key_path) == (str(alerts_file), "operations.email")
    assert "channels has email: give the admins' address" in problem.message
    # Slack alone needs no address.
    _edit(alerts_file, "  channels: [email, slack]", "  channels: [slack]")
    config = load_config(config_dir, mappings_dir, env={})
    assert config.alerts is not None and config.alerts.operations is not None
    assert config.alerts.operations.email is None


def test_a_template_for_an_unknown_event_kind_is_named(tmp_path: Path) -> None:
    config_dir, mappings_dir = _copy(tmp_path)
    alerts_file = config_dir / "rules" / "alerts.yaml"
    _edit(alerts_file, "    merge_guard_stopped:\n      subject", "    run_failed:\n      subject")
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, mappings_dir, env={})
    [problem] = caught.value.problems
    assert problem.file == str(alerts_file) and problem.key_path.startswith("operations.templates.run_failed")
    assert "merge_guard_stopped" in problem.message


def test_every_default_template_uses_only_its_kind_s_placeholders_and_renders_them_all() -> None:
    for kind, event in OPERATIONS_EVENTS.items():
        known = {*OPERATIONS_PLACEHOLDERS, *event.facts}
        assert set(event.key) <= set(event.facts)
        for text in (event.template.subject, event.template.text):
            template = string.Template(text)
            assert template.is_valid() and set(template.get_identifiers()) <= known
        facts = {name: f"<{name}>" for name in event.facts}
        alert = OperationsAlert(kind=kind, recipient=Recipient(email="a@b.example", name="RevOps", role="operations"),
                                facts=facts, at=NOW)
        message = render_operations(alert, event.template)
        assert "$" not in message.subject + message.text
        assert all(f"<{name}>" in message.subject + message.text for name in event.facts)


# --- queuing and sending ----------------------------------------------------------------------------


def test_a_stopped_guard_reaches_revops_by_email_and_slack_once(sink: NotifySandbox, config: RelayConfig,
                                                                engine: Engine) -> None:
    assert _queue(config, engine) == 2

    summary = send_pending_notifications(config, engine, now=NOW)

    assert summary.outcomes == {"sent": 2} and summary.errors == []
    [mail] = sink.messages.all("email")
    assert mail.to == ("revops@northwind.example",)
    assert mail.subject == "[Relay] Dedupe stopped: 240 records would have been merged away"
    assert mail.text.startswith("Hi RevOps,")
    assert ("The dedupe run at 2026-12-07 14:00 UTC merged nothing: 240 records would be merged away, "
            "more than merge_guard.max_records (200).") in mail.text
    assert "It planned 118 duplicate sets (240 records) in hubspot, salesforce." in mail.text
    [post] = sink.messages.all("slack")
    assert post.text.startswith("#revops-alerts *[Relay] Dedupe stopped: 240 records would have been merged away*")
    assert "relay dedupe report" in post.text
    rows = {row.channel.value: row for row in _rows(engine)}
    assert {row.status for row in rows.values()} == {NotificationStatus.SENT}
    assert {(row.kind, row.connection, row.object, row.crm_id, row.tier) for row in rows.values()} == {
        (GUARD, "relay", "operations", "2026-12-07", None)}
    assert rows["email"].provider_id == mail.headers["Message-ID"]
    assert send_pending_notifications(config, engine, now=NOW + timedelta(hours=1)).outcomes == {}
    assert len(sink.messages.all()) == 2


def test_the_admins_words_in_alerts_yaml_are_the_ones_sent(tmp_path: Path, sink: NotifySandbox,
                                                           engine: Engine) -> None:
    config_dir, mappings_dir = _copy(tmp_path)
    alerts_file = config_dir / "rules" / "alerts.yaml"
    _edit(alerts_file, '"[Relay] Dedupe stopped: $records records would have been merged away"',
          '"Guard tripped on $connections ($records, $$0 spent) at $at"')
    _edit(alerts_file, "  name: RevOps\n", "  name: Data team\n")
    config = load_config(config_dir, mappings_dir, env=sink.client_settings().env)

    _queue(config, engine)
    send_pending_notifications(config, engine, now=NOW)

    [mail] = sink.messages.all("email")
    # (stripped: a subject this long is folded onto its own header line, which the sink reads back with its space)
    assert (mail.subject or "").strip() == "Guard tripped on hubspot, salesforce (240, $0 spent) at 2026-12-07 14:00 UTC"
    assert mail.text.startswith("Hi Data team,")


def test_a_guard_stopping_every_hour_tells_once_a_day_per_planned_merge_count(
    sink: NotifySandbox, config: RelayConfig, engine: Engine,
) -> None:
    assert _queue(config, engine) == 2
    send_pending_notifications(config, engine, now=NOW)
    for hour in range(1, 10):  # the hourly dedupe pass, stopped on the same planned merges
        assert _queue(config, engine, NOW + timedelta(hours=hour), reason="another wording") == 0
    assert _queue(config, engine, NOW + timedelta(hours=2), records=260) == 2  # a different count is news
    assert _queue(config, engine, NOW + timedelta(hours=3), connections=["hubspot"]) == 2  # so is another scope
    tomorrow = datetime(2026, 12, 8, 0, 5, tzinfo=UTC)
    assert _queue(config, engine, tomorrow) == 2  # the next UTC day tells again
    assert _queue(config, engine, tomorrow + timedelta(hours=23)) == 0
    send_pending_notifications(config, engine, now=tomorrow + timedelta(hours=23))

    subjects = [m.subject for m in sink.messages.all("email")]
    assert subjects == ["[Relay] Dedupe stopped: 240 records would have been merged away",
                        "[Relay] Dedupe stopped: 260 records would have been merged away",
                        "[Relay] Dedupe stopped: 240 records would have been merged away",
                        "[Relay] Dedupe stopped: 240 records would have been merged away"]
    assert len(sink.messages.all("slack")) == 4
    assert sorted({row.crm_id for row in _rows(engine)}) == ["2026-12-07", "2026-12-08"]


def test_an_unconfigured_channel_is_skipped_with_the_reason_and_the_other_sent(sink: NotifySandbox,
                                                                               engine: Engine) -> None:
    config = config_for(sink, RELAY_SLACK_WEBHOOK_URL="")
    assert _queue(config, engine) == 2

    summary = send_pending_notifications(config, engine, now=NOW)

    assert summary.outcomes == {"sent": 1}
    rows = {row.channel.value: row for row in _rows(engine)}
    assert rows["slack"].status is NotificationStatus.SKIPPED and rows["slack"].attempts == 0
    assert "Slack is not configured" in (rows["slack"].last_error or "")
    assert "RELAY_SLACK_WEBHOOK_URL" in (rows["slack"].last_error or "")
    assert rows["email"].status is NotificationStatus.SENT
    assert [m.channel for m in sink.messages.all()] == ["email"]


def test_with_no_channel_configured_both_are_recorded_as_skipped(engine: Engine) -> None:
    config = config_for(None)
    assert _queue(config, engine) == 2
    assert send_pending_notifications(config, engine, now=NOW).outcomes == {}
    rows = {row.channel.value: row for row in _rows(engine)}
    assert {row.status for row in rows.values()} == {NotificationStatus.SKIPPED}
    assert "RELAY_SMTP_HOST" in (rows["email"].last_error or "")


def test_nothing_is_queued_without_the_section_or_with_alerts_off(tmp_path: Path, engine: Engine) -> None:
    config_dir, mappings_dir = _copy(tmp_path)
    alerts_file = config_dir / "rules" / "alerts.yaml"
    _edit(alerts_file, "enabled: true", "enabled: false")
    assert queue_operations_alert(load_config(config_dir, mappings_dir, env={}), engine, GUARD, FACTS, NOW) == 0
    _edit(alerts_file, "enabled: false", "enabled: true")
    text = alerts_file.read_text(encoding="utf-8")
    start = text.index("operations:\n")
    alerts_file.write_text(text[:start] + text[text.index("# Words of each kind of alert"):], encoding="utf-8")
    config = load_config(config_dir, mappings_dir, env={})
    assert config.alerts is not None and config.alerts.operations is None
    assert queue_operations_alert(config, engine, GUARD, FACTS, NOW) == 0
    assert _rows(engine) == []


def test_a_failing_webhook_is_retried_with_backoff_like_a_lead_alert(sink: NotifySandbox, config: RelayConfig,
                                                                     engine: Engine) -> None:
    sink.faults.configure(FaultSettings(script=[{"fault": "server_error", "path": "^/slack/"}]))
    _queue(config, engine)

    first = send_pending_notifications(config, engine, now=NOW)

    assert first.outcomes == {"sent": 1, "failed": 1}
    assert any("Slack webhook" in error and "answered 500" in error and "relay/operations/2026-12-07" in error
               for error in first.errors)
    rows = {row.channel.value: row for row in _rows(engine)}
    assert rows["slack"].next_attempt_at == NOW + timedelta(seconds=30)
    assert send_pending_notifications(config, engine, now=NOW + timedelta(seconds=30)).outcomes == {"sent": 1}
    assert len(sink.messages.all("slack")) == 1


# --- the facts and the payload ------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "facts", "words"), [
    ("run_failed", FACTS, "unknown operations alert kind 'run_failed' (known: merge_guard_stopped)"),
    (GUARD, {k: v for k, v in FACTS.items() if k != "records"}, "merge_guard_stopped alert misses the fact(s) records"),
    (GUARD, {**FACTS, "recods": 3}, "merge_guard_stopped alert has the unknown fact(s) recods"),
    (GUARD, {**FACTS, "connections": {"hubspot": 1}}, "merge_guard_stopped fact 'connections' is dict"),
])
def test_wrong_facts_are_refused_naming_the_kind_and_the_fact(config: RelayConfig, engine: Engine, kind: str,
                                                              facts: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match="^" + words.replace("(", r"\(").replace(")", r"\)")):
        queue_operations_alert(config, engine, kind, facts, NOW)
    with pytest.raises(ValueError, match="has no time zone"):
        queue_operations_alert(config, engine, GUARD, FACTS, NOW.replace(tzinfo=None))
    assert _rows(engine) == []


def test_tuples_and_sets_of_connections_are_lists_in_the_payload(config: RelayConfig, engine: Engine) -> None:
    assert _queue(config, engine, connections=frozenset({"salesforce", "hubspot"})) == 2
    assert _queue(config, engine, NOW + timedelta(hours=1), connections=("hubspot", "salesforce")) == 0  # the same key
    payload = _rows(engine)[0].payload
    assert payload["audience"] == "operations" and payload["facts"]["connections"] == ["hubspot", "salesforce"]
    alert = alert_from_json(payload)
    assert isinstance(alert, OperationsAlert) and alert.at == NOW and alert.recipient.role == "operations"


@pytest.mark.parametrize(("change", "words"), [
    ({"facts": None}, "facts must be an object"),
    ({"extra": 1}, "unknown key 'extra'"),
    ({"kind": "assigned"}, "'assigned' is not a valid OperationsKind"),
    ({"at": "2026-12-07T14:00:00"}, "has no time zone"),
    ({"facts": {**FACTS, "records": {"n": 1}}}, "fact 'records' is dict"),
])
def test_a_malformed_operations_payload_is_named(change: dict[str, Any], words: str) -> None:
    alert = OperationsAlert(kind=OperationsKind.MERGE_GUARD_STOPPED,
                            recipient=Recipient(email="revops@northwind.example", name="RevOps", role="operations"),
                            facts=FACTS, at=NOW)
    good = alert.to_json()
    assert OperationsAlert.from_json(good) == alert
    with pytest.raises(ValueError, match="audience 'operations', not a lead alert"):
        Alert.from_json(good)
    payload = {**good, **change}
    with pytest.raises(ValueError, match=words):
        alert_from_json(payload)
    missing = {k: v for k, v in good.items() if k != "recipient"}
    with pytest.raises(ValueError, match="misses the key 'recipient'"):
        alert_from_json(missing)


def test_a_malformed_payload_in_the_table_goes_dead_with_the_error(config: RelayConfig, engine: Engine) -> None:
    with session_factory(engine).begin() as session:
        Repositories(session).notifications.enqueue_many([NotificationIn(
            idempotency_key="merge_guard_stopped:email:broken", kind=GUARD, channel="email",
            recipient="revops@northwind.example", connection="relay", object_name="operations", crm_id="2026-12-07",
            payload={"audience": "operations", "kind": GUARD, "at": NOW.isoformat(), "facts": FACTS})], now=NOW)

    summary = send_pending_notifications(config, engine, now=NOW)

    [row] = _rows(engine)
    assert summary.outcomes == {"dead": 1} and row.status is NotificationStatus.DEAD
    assert f"notification {row.id}: operations alert payload misses the key 'recipient'" == row.last_error


def test_a_payload_missing_a_fact_of_its_kind_goes_dead_naming_the_fact(config: RelayConfig, engine: Engine) -> None:
    alert = OperationsAlert(kind=OperationsKind.MERGE_GUARD_STOPPED,
                            recipient=Recipient(email="revops@northwind.example", name="RevOps", role="operations"),
                            facts={k: v for k, v in FACTS.items() if k != "reason"}, at=NOW)
    with session_factory(engine).begin() as session:
        Repositories(session).notifications.enqueue_many([NotificationIn(
            idempotency_key="merge_guard_stopped:email:no-reason", kind=GUARD, channel="email",
            recipient="revops@northwind.example", connection="relay", object_name="operations", crm_id="2026-12-07",
            payload=alert.to_json())], now=NOW)

    assert send_pending_notifications(config, engine, now=NOW).outcomes == {"dead": 1}
    [row] = _rows(engine)
    assert (row.last_error or "").endswith("merge_guard_stopped alert misses the fact(s) reason "
                                           "(it needs: reason, planned_sets, records, connections)")
