"""Five-field cron expressions (minute hour day-of-month month day-of-week, UTC): checked once, here.

``config/relay.yaml``'s sync schedules (``connector.config.connection.SyncSchedule``) and
``retention.yaml``'s schedule (``connector.core.governance.rules.RetentionSchedule``) both take one;
the job worker matches it with ``huey.crontab(**crontab_fields(expression))``. Pure: text in, text out.
"""

from __future__ import annotations

import re

_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_CRON_NAMES = ("minute", "hour", "day of month", "month", "day of week")
CRONTAB_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
"""The keyword arguments of ``huey.crontab``, in the expression's order."""


def check_cron(expression: str) -> str:
    """Check a five-field cron expression (minute hour day-of-month month day-of-week).

    Args:
        expression: e.g. ``"*/15 * * * *"``.

    Returns:
        The expression with surrounding whitespace removed.

    Raises:
        ValueError: naming the field that is wrong.
    """
    fields = expression.split()
    if len(fields) != len(_CRON_RANGES):
        raise ValueError(
            f"cron expression {expression!r} must have 5 fields "
            "(minute hour day-of-month month day-of-week), e.g. '*/15 * * * *'"
        )
    for text, (low, high), name in zip(fields, _CRON_RANGES, _CRON_NAMES, strict=True):
        if not _CRON_FIELD.match(text):
            raise ValueError(f"cron {name} field {text!r} is not valid (use *, N, N-M, */N or lists)")
        if any(int(step) == 0 for step in re.findall(r"/(\d+)", text)):
            raise ValueError(f"cron {name} field {text!r}: a step (/N) must be at least 1")
        for number in re.findall(r"\d+", re.sub(r"/\d+", "", text)):
            if not low <= int(number) <= high:
                raise ValueError(f"cron {name} field {text!r}: {number} is outside {low}-{high}")
    return " ".join(fields)


def crontab_fields(expression: str) -> dict[str, str]:
    """A checked expression as ``huey.crontab`` keyword arguments.

    Returns:
        ``{"minute", "hour", "day", "month", "day_of_week"}`` -> field text.
    """
    return dict(zip(CRONTAB_FIELDS, expression.split(), strict=True))
