"""Queuing and sending alerts through the store: once per decision, retried, dead, skipped, never lost.

Each test runs on SQLite and on PostgreSQL (when RELAY_TEST_POSTGRES_URL is set); the messages
are read back from the running sink.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from connector.config.loader import RelayConfig
from connector.notify.alert import AlertKind
from connector.pipeline.alerts import LeadFacts, enqueue_alerts, send_pending_notifications
from connector.store.db import session_factory
from connector.store.models import NotificationStatus
from connector.store.repositories import Notification, Repositories
from crm_sandbox.common import FaultSettings
from crm_sandbox.notify import NotifySandbox
from tests.notify.conftest import config_for

NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
LEAD = LeadFacts(connection="hubspot", object="contacts", crm_id="901", name="Ada Lovelace",
                 company="Analytical Engines", score=86, category="Hot",
                 reasons=("+15 behavioural demo_requested", "+10 demographic seniority: vp"),
                 routing_reason="Hot lead: senior rep round robin")


def _enqueue(config: RelayConfig, engine: Engine, kind: AlertKind = AlertKind.ASSIGNED, *, owner: str =
             "olivia.grant@northwind.example", tier: str = "Hot", source: str = "assignment:hubspot/contacts/901@1",
             lead: LeadFacts = LEAD) -> int:
    with session_factory(engine).begin() as session:
        return enqueue_alerts(Repositories(session), kind, config=config, lead=lead, owner_email=owner, tier=tier,
                              due=NOW + timedelta(minutes=5), source_key=source, now=NOW)


def _rows(engine: Engine) -> list[Notification]:
    with session_factory(engine).begin() as session:
        return Repositories(session).notifications.all()


def test_a_hot_assignment_sends_one_sms_and_one_email_once(sink: NotifySandbox, config: RelayConfig,
                                                           engine: Engine) -> None:
    assert _enqueue(config, engine) == 2

    summary = send_pending_notifications(config, engine, now=NOW)

    assert summary.outcomes == {"sent": 2} and summary.errors == []
    [sms] = sink.messages.all("sms")
    [mail] = sink.messages.all("email")
    assert sms.to == ("+15555550105",) and "Ada Lovelace" in sms.text and "score 86" in sms.text
    assert mail.to == ("olivia.grant@northwind.example",)
    assert "https://app.hubspot.com/contacts/62515/record/0-1/901" in mail.text
    rows = {row.channel.value: row for row in _rows(engine)}
    assert {row.status for row in rows.values()} == {NotificationStatus.SENT}
    assert rows["sms"].provider_id == sms.id and rows["email"].provider_id == mail.headers["Message-ID"]
    assert rows["sms"].attempts == 1 and rows["sms"].sent_at == NOW
    assert send_pending_notifications(config, engine, now=NOW + timedelta(hours=1)).outcomes == {}
    assert len(sink.messages.all()) == 2


def test_the_same_decision_queued_twice_sends_each_message_once(sink: NotifySandbox, config: RelayConfig,
                                                                engine: Engine) -> None:
    assert _enqueue(config, engine) == 2
    assert _enqueue(config, engine) == 0  # replayed: nothing new
    send_pending_notifications(config, engine, now=NOW)
    assert _enqueue(config, engine) == 0  # replayed after sending: nothing new either
    send_pending_notifications(config, engine, now=NOW + timedelta(minutes=1))

    assert [m.channel for m in sink.messages.all()] == ["sms", "email"]
    assert len(_rows(engine)) == 2
    # Another decision about the same lead (a later assignment) is news.
    assert _enqueue(config, engine, source="assignment:hubspot/contacts/901@2") == 2


def test_a_failing_channel_is_retried_with_backoff_then_dead_with_its_error(
    sink: NotifySandbox, config: RelayConfig, engine: Engine,
) -> None:
    script: list[str | dict[str, Any]] = [{"fault": "server_error", "path": "^/sms/"}] * 5
    script += [{"fault": "server_error", "path": "^/smtp/"}] * 2
    sink.faults.configure(FaultSettings(script=script))
    _enqueue(config, engine)

    first = send_pending_notifications(config, engine, now=NOW)
    assert first.outcomes == {"failed": 2}
    assert any("answered 500" in error and "+15555550105" in error for error in first.errors)
    rows = {row.channel.value: row for row in _rows(engine)}
    assert rows["sms"].status is NotificationStatus.FAILED and rows["sms"].next_attempt_at == NOW + timedelta(seconds=30)
    assert "451 4.3.0" in (rows["email"].last_error or "")
    assert send_pending_notifications(config, engine, now=NOW + timedelta(seconds=10)).outcomes == {}  # backing off

    second = send_pending_notifications(config, engine, now=NOW + timedelta(seconds=30))
    assert second.outcomes == {"failed": 2}
    when = NOW + timedelta(seconds=30)
    outcomes = []
    for _ in range(3):  # each pass past the backoff: the email passes on its third attempt, the SMS never
        when += timedelta(hours=1)
        outcomes.append(dict(send_pending_notifications(config, engine, now=when).outcomes))
    assert outcomes == [{"failed": 1, "sent": 1}, {"failed": 1}, {"dead": 1}]

    rows = {row.channel.value: row for row in _rows(engine)}
    assert rows["sms"].status is NotificationStatus.DEAD and rows["sms"].attempts == 5
    assert "SMS API" in (rows["sms"].last_error or "") and "answered 500" in (rows["sms"].last_error or "")
    assert rows["email"].status is NotificationStatus.SENT
    assert sink.messages.all("sms") == [] and len(sink.messages.all("email")) == 1
    assert send_pending_notifications(config, engine, now=when + timedelta(days=1)).outcomes == {}  # dead stays dead


def test_a_refused_mailbox_is_dead_at_once(sink: NotifySandbox, config: RelayConfig, engine: Engine) -> None:
    assert _enqueue(config, engine, tier="Warm", owner="gone@northwind.invalid") == 1

    summary = send_pending_notifications(config, engine, now=NOW)

    [row] = _rows(engine)
    assert (row.status, row.attempts, summary.outcomes) == (NotificationStatus.DEAD, 1, {"dead": 1})
    assert "550 5.1.1 <gone@northwind.invalid>: mailbox unavailable" in (row.last_error or "")
    assert sink.messages.all() == []


def test_channels_that_are_not_configured_are_skipped_with_the_reason(engine: Engine) -> None:
    config = config_for(None)
    _enqueue(config, engine)

    summary = send_pending_notifications(config, engine, now=NOW)

    assert summary.outcomes == {}  # recorded as skipped when queued: no sender claims them, no pass pays for them
    rows = {row.channel.value: row for row in _rows(engine)}
    assert rows["email"].status is NotificationStatus.SKIPPED and rows["email"].attempts == 0
    assert "email is not configured" in (rows["email"].last_error or "")
    assert "RELAY_SMS_ACCOUNT_SID" in (rows["sms"].last_error or "")


def test_someone_without_a_phone_gets_no_sms_and_the_reason_is_kept(sink: NotifySandbox, config: RelayConfig,
                                                                    engine: Engine) -> None:
    assert _enqueue(config, engine, owner="liam.walsh@northwind.example") == 2
    send_pending_notifications(config, engine, now=NOW)
    rows = {row.channel.value: row for row in _rows(engine)}
    assert rows["sms"].status is NotificationStatus.SKIPPED
    assert rows["sms"].last_error == "no phone number for liam.walsh@northwind.example (alerts.yaml people)"
    assert [m.to for m in sink.messages.all()] == [("liam.walsh@northwind.example",)]


def test_qualified_leads_notify_the_sdr_queue_and_escalations_climb_the_roster(
    sink: NotifySandbox, config: RelayConfig, engine: Engine,
) -> None:
    lead = LeadFacts(connection="hubspot", object="contacts", crm_id="44", name="Alan Turing", score=48,
                     category="Qualified")
    owner = "chloe.martin@northwind.example"
    assert _enqueue(config, engine, tier="Qualified", owner=owner, lead=lead, source="a") == 2
    assert _enqueue(config, engine, AlertKind.REMINDER, tier="Qualified", owner=owner, lead=lead, source="r") == 1
    assert _enqueue(config, engine, AlertKind.ESCALATION_MANAGER, tier="Qualified", owner=owner, lead=lead,
                    source="m") == 1
    assert _enqueue(config, engine, AlertKind.ESCALATION_DIRECTOR, tier="Qualified", owner=owner, lead=lead,
                    source="d") == 1

    send_pending_notifications(config, engine, now=NOW)

    [post] = sink.messages.all("slack")
    assert post.text.startswith("#sdr-queue *[Relay] New Qualified lead for you: Alan Turing, score 48*")
    assert "Hi SDR queue," in post.text
    assert [(m.to, (m.subject or "").split(":")[0]) for m in sink.messages.all("email")] == [
        (("sdr-queue@northwind.example",), "[Relay] New Qualified lead for you"),
        (("chloe.martin@northwind.example",), "[Relay] Reminder"),
        (("tom.becker@northwind.example",), "[Relay] SLA breached"),   # her SDR manager (seed 001 37.3)
        (("dana.whitfield@northwind.example",), "[Relay] SLA escalation"),  # then the director (49.1)
    ]


def test_an_expired_claim_is_taken_over_and_the_first_sender_cannot_mark_it(config: RelayConfig,
                                                                            engine: Engine) -> None:
    _enqueue(config, engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        mine = Repositories(session).notifications.claim_due(now=NOW, limit=10, lease=timedelta(minutes=5))
    with sessions.begin() as session:
        assert Repositories(session).notifications.claim_due(now=NOW, limit=10, lease=timedelta(minutes=5)) == []
    later = NOW + timedelta(minutes=6)
    with sessions.begin() as session:
        theirs = Repositories(session).notifications.claim_due(now=later, limit=10, lease=timedelta(minutes=5))
    assert sorted(n.id for n in theirs) == sorted(n.id for n in mine) and {n.attempts for n in theirs} == {2}
    with sessions.begin() as session:
        assert Repositories(session).notifications.mark_sent(mine[0], provider_id="x", now=later) is False
        assert Repositories(session).notifications.mark_sent(theirs[0], provider_id="y", now=later) is True
