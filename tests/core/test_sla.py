"""SLA timers: seed 002 response times, reminder at 50%, escalation at 100%."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from connector.core.rules import Rules
from connector.core.sla import sla_for

from .helpers import NOW, team


@pytest.mark.parametrize(
    ("tier", "minutes", "priority"),
    [("Hot", 5, "High"), ("Warm", 60, "High"), ("Qualified", 1440, "Normal"), ("Cold", 2880, "Low")],
)
def test_response_minutes_per_tier(rules: Rules, tier: str, minutes: int, priority: str) -> None:
    sla = sla_for(tier, NOW, rules.sla, (team("marcus.chen"), team("dana.whitfield")))
    assert sla is not None
    assert sla.response_minutes == minutes
    assert sla.due_at == NOW + timedelta(minutes=minutes)
    assert sla.reminder_at == NOW + timedelta(minutes=minutes) / 2
    assert sla.escalate_at == sla.due_at
    assert sla.escalation_chain == (team("marcus.chen"), team("dana.whitfield"))
    assert sla.task_priority == priority


def test_hot_lead_reminder_after_two_and_a_half_minutes(rules: Rules) -> None:
    sla = sla_for("Hot", NOW, rules.sla)
    assert sla is not None
    assert sla.reminder_at - NOW == timedelta(seconds=150)


def test_nurture_has_no_sales_sla(rules: Rules) -> None:
    assert sla_for("Nurture", NOW, rules.sla) is None


def test_other_timezones_keep_the_same_instant(rules: Rules) -> None:
    tokyo = NOW.astimezone(timezone(timedelta(hours=9)))
    assert sla_for("Warm", tokyo, rules.sla).due_at == sla_for("Warm", NOW, rules.sla).due_at  # type: ignore[union-attr]


def test_naive_time_is_refused(rules: Rules) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sla_for("Hot", datetime(2026, 1, 1, 9, 0), rules.sla)
