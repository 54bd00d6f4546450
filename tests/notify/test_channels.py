"""The three channels over real SMTP and HTTP against the running sink, and the sink itself."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest

from connector.config.loader import RelayConfig
from connector.notify.alert import Alert, AlertKind, ChannelName, Recipient
from connector.notify.channels import ChannelError, Delivery, send
from connector.notify.templates import render
from crm_sandbox.common import FaultSettings
from crm_sandbox.notify import SANDBOX, NotifySandbox
from crm_sandbox.registry import get
from tests.notify.conftest import config_for

OLIVIA = Recipient(email="olivia.grant@northwind.example", name="Olivia Grant", phone="+15555550105",
                   slack="@olivia.grant")


def _alert() -> Alert:
    return Alert(kind=AlertKind.ASSIGNED, recipient=OLIVIA, lead="Ada Lovelace", company="Analytical Engines",
                 score=86, category="Hot", reasons=("+15 behavioural demo_requested",), tier="Hot",
                 due=datetime(2026, 12, 7, 14, 5, tzinfo=UTC), link="https://app.hubspot.com/contacts/62515/record/0-1/9",
                 owner=OLIVIA.email or "", connection="hubspot", object="contacts", crm_id="9")


def _send(config: RelayConfig, channel: ChannelName, address: str, key: str = "assigned:test:1") -> Delivery:
    alerts = config.alerts
    assert alerts is not None
    alert = _alert()
    return send(alerts.channels, channel, alert, address, render(alert, alerts.template(alert.kind)), key)


def test_an_email_arrives_over_smtp_with_subject_body_and_a_stable_message_id(
    sink: NotifySandbox, config: RelayConfig,
) -> None:
    delivery = _send(config, ChannelName.EMAIL, "olivia.grant@northwind.example")
    [mail] = sink.messages.all("email")
    assert mail.to == ("olivia.grant@northwind.example",) and mail.sender == "relay@northwind.example"
    assert mail.subject == "[Relay] New Hot lead for you: Ada Lovelace, score 86"
    assert "Contact them by 2026-12-07 14:05 UTC" in mail.text and "/record/0-1/9" in mail.text
    assert mail.headers["X-Relay-Notification"] == "assigned:test:1"
    assert delivery.provider_id == mail.headers["Message-ID"]
    _send(config, ChannelName.EMAIL, "olivia.grant@northwind.example")
    first, again = sink.messages.all("email")
    assert first.headers["Message-ID"] == again.headers["Message-ID"]  # a resend is recognisable as one


def test_a_slack_post_and_a_text_message_arrive_over_http(sink: NotifySandbox, config: RelayConfig) -> None:
    _send(config, ChannelName.SLACK, "@olivia.grant")
    delivery = _send(config, ChannelName.SMS, "+15555550105")

    [post] = sink.messages.all("slack")
    assert post.text.startswith("@olivia.grant *[Relay] New Hot lead for you: Ada Lovelace, score 86*")
    [sms] = sink.messages.all("sms")
    assert (sms.to, sms.sender) == (("+15555550105",), "+15555550199")
    assert sms.text.startswith("Relay: new Hot lead Ada Lovelace, score 86 (+15 behavioural demo_requested)")
    assert delivery.provider_id == sms.id and sms.id.startswith("SM")
    # The same messages, over HTTP.
    listed = httpx.get(f"{sink.url}/messages").json()
    assert listed["counts"] == {"slack": 1, "sms": 1}
    assert httpx.get(f"{sink.url}/messages", params={"channel": "sms"}).json()["messages"][0]["id"] == sms.id


def test_a_sink_answering_500_is_a_failure_another_attempt_may_pass(sink: NotifySandbox, config: RelayConfig) -> None:
    sink.faults.configure(FaultSettings(script=["server_error", "server_error"]))
    with pytest.raises(ChannelError, match=r"SMS API http://127\.0\.0\.1:\d+/sms/2010-04-01/Accounts/.* answered 500") as sms:
        _send(config, ChannelName.SMS, "+15555550105")
    with pytest.raises(ChannelError, match=r"Slack webhook http://127\.0\.0\.1:\d+/slack/services/… answered 500") as slack:
        _send(config, ChannelName.SLACK, "")
    assert sms.value.retriable and slack.value.retriable
    assert "sandboxwebhooksecret" not in str(slack.value)  # the webhook's secret path is not in errors
    assert sink.messages.all() == []


def test_smtp_refusing_for_now_is_retriable_and_a_bad_mailbox_is_not(sink: NotifySandbox, config: RelayConfig) -> None:
    sink.faults.configure(FaultSettings(script=[{"fault": "server_error", "path": "^/smtp/"}]))
    with pytest.raises(ChannelError, match=r"SMTP 127\.0\.0\.1:\d+ answered 451 4\.3\.0 The sink refused") as busy:
        _send(config, ChannelName.EMAIL, "olivia.grant@northwind.example")
    assert busy.value.retriable
    with pytest.raises(ChannelError, match=r"refused the recipient \(nobody@northwind\.invalid: 550") as gone:
        _send(config, ChannelName.EMAIL, "nobody@northwind.invalid")
    assert not gone.value.retriable


def test_wrong_sms_credentials_or_number_are_refused_for_good(sink: NotifySandbox) -> None:
    config = config_for(sink, RELAY_SMS_AUTH_TOKEN="wrong")
    with pytest.raises(ChannelError, match="answered 401") as refused:
        _send(config, ChannelName.SMS, "+15555550105")
    assert not refused.value.retriable
    with pytest.raises(ChannelError, match="is not a valid phone number") as bad:
        _send(config_for(sink), ChannelName.SMS, "0105")
    assert not bad.value.retriable and bad.value.args[0].count("answered 400") == 1


def test_an_unreachable_server_is_retriable(sink: NotifySandbox) -> None:
    config = config_for(sink, RELAY_SMTP_PORT="1", RELAY_SLACK_WEBHOOK_URL="http://127.0.0.1:1/slack/services/T/B/X")
    for channel, address in ((ChannelName.EMAIL, "olivia.grant@northwind.example"), (ChannelName.SLACK, "")):
        with pytest.raises(ChannelError) as caught:
            _send(config, channel, address)
        assert caught.value.retriable


def test_the_sink_is_a_sandbox_kind_whose_settings_point_relay_at_it(sink: NotifySandbox) -> None:
    assert get("notify") is SANDBOX and SANDBOX.default_port == 8725
    settings = sink.client_settings()
    assert settings.base_url == sink.url and settings.env["RELAY_SLACK_WEBHOOK_URL"] == sink.slack_webhook_url
    assert settings.env["RELAY_SMTP_PORT"] == str(sink.smtp.port) and settings.env["RELAY_SMTP_SECURITY"] == "none"
    assert httpx.get(f"{sink.url}/__sandbox/ledger").json()["server"] == "notify"
    # Slack's and Twilio's own refusals.
    assert httpx.post(f"{sink.url}/slack/services/T/B/other", json={"text": "x"}).text == "no_service"
    assert httpx.post(sink.slack_webhook_url, json={"blocks": []}).status_code == HTTPStatus.BAD_REQUEST
    anonymous = httpx.post(f"{sink.sms_base_url}/2010-04-01/Accounts/{sink.sms_account_sid}/Messages.json",
                           data={"To": "+15555550105", "From": "+15555550199", "Body": "hi"})
    assert anonymous.status_code == HTTPStatus.UNAUTHORIZED and anonymous.json()["code"] == 20003
    assert httpx.delete(f"{sink.url}/messages").json() == {"cleared": 0}


def test_the_sink_keeps_its_messages_in_its_state_file(tmp_path: Path) -> None:
    state = tmp_path / "notify.json"
    first = SANDBOX.start(state_file=state)
    try:
        httpx.post(first.url + "/slack/services/TSANDBOX0/BSANDBOX0/sandboxwebhooksecret", json={"text": "kept"})
    finally:
        first.stop()
    again = NotifySandbox(state_file=state)
    assert [m.text for m in again.messages.all()] == ["kept"]
