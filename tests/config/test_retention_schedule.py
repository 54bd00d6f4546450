"""retention.yaml's ``schedule``: the shipped daily dry run, turned off, and mistakes named by file and key."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from connector import cli
from connector.cli import app
from connector.config.loader import load_config
from connector.config.relay import SyncSchedule
from connector.core.governance.rules import RetentionSchedule

if TYPE_CHECKING:
    from conftest import ConfigCopy

Problems = Callable[[], list[str]]
SHIPPED = 'schedule: {enabled: true, cron: "30 3 * * *", apply: false}'


def test_the_shipped_schedule_is_a_daily_dry_run_at_half_past_three(shipped: ConfigCopy) -> None:
    schedule = load_config(shipped.config_dir, shipped.mappings_dir, env={}).rules.retention.schedule
    assert (schedule.enabled, schedule.cron, schedule.apply) == (True, "30 3 * * *", False)
    assert schedule.crontab_fields() == {"minute": "30", "hour": "3", "day": "*", "month": "*", "day_of_week": "*"}


def test_the_schedule_can_be_turned_off_or_applied(shipped: ConfigCopy) -> None:
    shipped.edit("config/rules/retention.yaml", SHIPPED, "schedule: {enabled: false}")
    assert load_config(shipped.config_dir, shipped.mappings_dir, env={}).rules.retention.schedule.enabled is False
    shipped.edit("config/rules/retention.yaml", "schedule: {enabled: false}", 'schedule: {cron: "0 2 * * 0", apply: true}')
    schedule = load_config(shipped.config_dir, shipped.mappings_dir, env={}).rules.retention.schedule
    assert (schedule.enabled, schedule.cron, schedule.apply) == (True, "0 2 * * 0", True)


def test_schedule_mistakes_are_named_by_file_and_key(shipped: ConfigCopy, problems_of: Problems) -> None:
    shipped.edit("config/rules/retention.yaml", SHIPPED,
                 'schedule: {enabled: yes please, cron: "30 25 * * *", apply: false, every_minutes: 5}')
    problems = problems_of()
    assert problems == [
        "config/rules/retention.yaml:39: schedule.enabled: input should be a valid boolean, unable to interpret "
        "input (got 'yes please')",
        "config/rules/retention.yaml:39: schedule.cron: cron hour field '25': 25 is outside 0-23",
        "config/rules/retention.yaml:39: schedule.every_minutes: unknown key 'every_minutes' (allowed: enabled, "
        "cron, apply)",
    ]


def test_relay_config_validate_refuses_a_bad_cron(
        shipped: ConfigCopy, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped.edit("config/rules/retention.yaml", SHIPPED, 'schedule: {cron: "every night"}')
    monkeypatch.setenv("RELAY_CONFIG_DIR", str(shipped.config_dir))
    monkeypatch.setenv("RELAY_MAPPINGS_DIR", str(shipped.mappings_dir))
    monkeypatch.setattr(cli.console, "width", 200)
    monkeypatch.setattr(cli.err_console, "width", 200)

    result = CliRunner().invoke(app, ["config", "validate"])

    assert result.exit_code == 1, result.output
    assert "config/rules/retention.yaml:39: schedule.cron: cron expression 'every night' must have 5 fields " \
           "(minute hour day-of-month month day-of-week), e.g. '*/15 * * * *'" in result.output


@pytest.mark.parametrize("cron", ["61 * * * *", "*/0 * * * *", "0 9 * * mon", "* * * *"])
def test_one_cron_check_for_syncs_and_retention(cron: str) -> None:
    with pytest.raises(ValidationError) as sync:
        SyncSchedule.model_validate({"cron": cron})
    with pytest.raises(ValidationError) as retention:
        RetentionSchedule.model_validate({"cron": cron})
    assert sync.value.errors()[0]["msg"] == retention.value.errors()[0]["msg"]
