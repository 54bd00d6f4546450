"""Sync schedules: every N minutes or a five-field cron expression."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connector.config.relay import SyncSchedule


def test_interval_schedule() -> None:
    schedule = SyncSchedule(every_minutes=15)
    assert schedule.cron is None and schedule.crontab_fields() is None


def test_cron_schedule_gives_huey_crontab_fields() -> None:
    schedule = SyncSchedule.model_validate({"cron": " */15  8-18 * * 1-5 "})
    assert schedule.cron == "*/15 8-18 * * 1-5"
    assert schedule.crontab_fields() == {"minute": "*/15", "hour": "8-18", "day": "*", "month": "*", "day_of_week": "1-5"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cron": "*/15 * * *"}, "must have 5 fields"),
        ({"cron": "61 * * * *"}, "cron minute field '61': 61 is outside 0-59"),
        ({"cron": "*/0 * * * *"}, "a step (/N) must be at least 1"),
        ({"cron": "0 9 * * mon"}, "cron day of week field 'mon' is not valid"),
        ({"every_minutes": 0}, "greater than or equal to 1"),
        ({}, "give exactly one of every_minutes or cron"),
        ({"every_minutes": 5, "cron": "* * * * *"}, "give exactly one of every_minutes or cron"),
    ],
)
def test_bad_schedules_are_explained(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SyncSchedule.model_validate(data)
    assert message in str(caught.value)
