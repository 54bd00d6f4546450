"""alerts.yaml: the seed defaults it ships, the problems it reports, its schema; templates and CRM links."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector.config.loader import load_config
from connector.config.problems import ConfigError
from connector.notify.alert import Alert, AlertKind, ChannelName, Recipient
from connector.notify.links import record_url
from connector.notify.settings import AlertsFile
from connector.notify.templates import render
from tests.notify.conftest import config_for

PACKAGED = Path(__file__).resolve().parents[2] / "connector" / "defaults"


def _alert(**changes: object) -> Alert:
    values: dict[str, object] = dict(
        kind=AlertKind.ASSIGNED, recipient=Recipient(email="olivia.grant@northwind.example", name="Olivia Grant"),
        lead="Ada Lovelace", company="Analytical Engines", score=86, category="Hot",
        reasons=("+15 behavioural demo_requested", "+10 demographic seniority: vp", "+8 firmographic revenue"),
        tier="Hot", due=datetime(2026, 12, 7, 14, 5, tzinfo=UTC),
        link="https://app.hubspot.com/contacts/62515/record/0-1/901", owner="olivia.grant@northwind.example",
        connection="hubspot", object="contacts", crm_id="901", routing_reason="Hot lead: senior rep round robin",
    )
    values.update(changes)
    return Alert(**values)  # type: ignore[arg-type]


def test_the_shipped_tiers_are_the_seeds() -> None:
    alerts = config_for(None).alerts
    assert alerts is not None and alerts.enabled
    hot, warm, qualified = (alerts.tiers[name] for name in ("Hot", "Warm", "Qualified"))
    assert hot.assigned is not None and hot.assigned.channels == [ChannelName.SMS, ChannelName.EMAIL]
    assert warm.assigned is not None and warm.assigned.channels == [ChannelName.EMAIL]
    assert qualified.assigned is not None and (qualified.assigned.to, qualified.assigned.queue) == ("queue", "sdr_team")
    assert alerts.queues["sdr_team"].name == "SDR queue"
    assert "Cold" in alerts.tiers and alerts.tiers["Cold"].assigned is None  # nurture: no sales alert
    for tier in alerts.tiers.values():  # seed 001 37.3 and 49.2: reminders and escalations go by email
        assert all(route is not None and ChannelName.EMAIL in route.channels
                   for route in (tier.reminder, tier.escalation_manager))


def test_unset_channels_are_not_configured_and_say_which_variable_to_set() -> None:
    alerts = config_for(None).alerts
    assert alerts is not None
    assert "RELAY_SMTP_HOST" in (alerts.channels.missing(ChannelName.EMAIL) or "")
    assert "RELAY_SLACK_WEBHOOK_URL" in (alerts.channels.missing(ChannelName.SLACK) or "")
    assert "RELAY_SMS_AUTH_TOKEN" in (alerts.channels.missing(ChannelName.SMS) or "")


def _copy(tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(PACKAGED / "config", tmp_path / "config")
    shutil.copytree(PACKAGED / "mappings", tmp_path / "mappings")
    return tmp_path / "config", tmp_path / "mappings"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(("old", "new", "key", "words"), [
    ("assigned: {channels: [sms, email]}", "assigned: {channels: [sms, pager]}", "tiers.Hot.assigned.channels[1]",
     "pager"),
    ("queue: sdr_team}", "queue: sdrs}", "tiers.Qualified.assigned.queue", "no queue 'sdrs'"),
    ("  Warm:                                    # seed 002", "  Lukewarm:                                # seed 002",
     "tiers.Lukewarm", "no SLA tier 'Lukewarm' in sla.yaml"),
    ('subject: "[Relay] New $tier lead', 'subject: "[Relay] New $tiers lead', "templates.assigned.subject",
     "unknown placeholder $tiers"),
    ('{phone: "+15555550105"', '{phone: "555-0105"', "people.olivia.grant@northwind.example.phone", "E.164"),
    ("max_attempts: 5 ", "max_attempts: 0 ", "delivery.max_attempts", ""),
])
def test_an_invalid_alerts_file_refuses_the_whole_config_naming_file_and_key(
    tmp_path: Path, old: str, new: str, key: str, words: str,
) -> None:
    config_dir, mappings_dir = _copy(tmp_path)
    alerts_file = config_dir / "rules" / "alerts.yaml"
    _edit(alerts_file, old, new)

    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, mappings_dir, env={})

    [problem] = caught.value.problems
    assert problem.file == str(alerts_file)
    assert problem.key_path == key
    assert words in problem.message
    assert problem.line is not None and new.split(":")[0].strip() in alerts_file.read_text().splitlines()[problem.line - 1]


def test_a_missing_secret_reference_is_named_like_relay_yaml_s(tmp_path: Path) -> None:
    config_dir, mappings_dir = _copy(tmp_path)
    _edit(config_dir / "rules" / "alerts.yaml", "${RELAY_SMTP_PASSWORD:-}", "${RELAY_SMTP_PASSWORD}")
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, mappings_dir, env={})
    [problem] = caught.value.problems
    assert (problem.key_path, problem.value) == ("channels.email.password", "${RELAY_SMTP_PASSWORD}")
    assert "RELAY_SMTP_PASSWORD is not set" in problem.message
    # Set, it loads, and the secret is the variable's.
    config = load_config(config_dir, mappings_dir, env={"RELAY_SMTP_PASSWORD": "s3cret"})
    assert config.alerts is not None and config.alerts.channels.email.password.get_secret_value() == "s3cret"


def test_without_an_alerts_file_the_config_loads_with_no_alerts(tmp_path: Path) -> None:
    config_dir, mappings_dir = _copy(tmp_path)
    (config_dir / "rules" / "alerts.yaml").unlink()
    assert load_config(config_dir, mappings_dir, env={}).alerts is None


def test_the_committed_schema_is_the_models() -> None:
    schema = AlertsFile.model_json_schema(mode="validation")
    rendered = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                "$id": "https://relay.example/schema/alerts.schema.json", **schema}
    committed = (PACKAGED / "config" / "schema" / "alerts.schema.json").read_text(encoding="utf-8")
    assert committed == json.dumps(rendered, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    first = (PACKAGED / "config" / "rules" / "alerts.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schema/alerts.schema.json"


def test_every_message_names_the_lead_the_score_and_why_the_deadline_and_the_link() -> None:
    alerts = config_for(None).alerts
    assert alerts is not None
    for kind in AlertKind:
        alert = _alert(kind=kind)
        message = render(alert, alerts.template(kind))
        for text in (message.subject + message.text, message.sms):
            assert "Ada Lovelace" in text and "86" in text
        assert "2026-12-07 14:05 UTC" in message.text and "2026-12-07 14:05 UTC" in message.sms
        assert "https://app.hubspot.com/contacts/62515/record/0-1/901" in message.text
        assert "https://app.hubspot.com/contacts/62515/record/0-1/901" in message.sms
    assigned = render(_alert(), alerts.template(AlertKind.ASSIGNED))
    assert "- +15 behavioural demo_requested\n- +10 demographic seniority: vp" in assigned.text  # the why, in full
    assert "+15 behavioural demo_requested; +10 demographic seniority: vp" in assigned.sms  # and in short
    assert assigned.subject == "[Relay] New Hot lead for you: Ada Lovelace, score 86"
    assert assigned.text.startswith("Hi Olivia Grant,")
    escalation = render(_alert(kind=AlertKind.ESCALATION_MANAGER), alerts.template(AlertKind.ESCALATION_MANAGER))
    assert "owned by olivia.grant@northwind.example" in escalation.text


def test_a_message_without_link_or_score_says_so_rather_than_printing_none() -> None:
    alerts = config_for(None).alerts
    assert alerts is not None
    message = render(_alert(link=None, score=None, category=None, reasons=(), company=None),
                     alerts.template(AlertKind.ASSIGNED))
    assert "None" not in message.text + message.sms
    assert "no CRM link" in message.text and "no scoring rule earned points" in message.text


def test_each_crm_unit_builds_the_link_to_its_records() -> None:
    config = config_for(None, SALESFORCE_INSTANCE_URL="https://northwind.my.salesforce.com")
    links = config.alerts.links if config.alerts is not None else {}
    assert record_url(config.connection("hubspot"), "contacts", "901", links.get("hubspot")) == \
        "https://app.hubspot.com/contacts/62515/record/0-1/901"
    assert record_url(config.connection("salesforce"), "Lead", "00Q5e00000AbCdE") == \
        "https://northwind.my.salesforce.com/lightning/r/Lead/00Q5e00000AbCdE/view"
    assert record_url(config.connection("hubspot"), "contacts", "901", {}) is None  # no portal id: no link
