"""Timestamps in the shapes the two CRMs use, and random instants before the anchor.

Instants are whole milliseconds since the Unix epoch (ints), as both CRMs store
them: integer arithmetic and a per-day string cache keep a 100,000-lead data set
(about a million timestamps) cheap to format.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

DAY = 86_400_000
HOUR = 3_600_000
MINUTE = 60_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAYS: dict[int, str] = {}


def to_ms(moment: datetime) -> int:
    """An aware datetime as milliseconds since the epoch (sub-millisecond part dropped)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def date_of(ms: int) -> date:
    """The UTC calendar day of an instant."""
    return date.fromordinal(_EPOCH_ORDINAL + ms // DAY)


def ms_of_date(day: date) -> int:
    """Midnight UTC of a day, in milliseconds since the epoch."""
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY


_SECONDS: dict[int, str] = {}
_MILLIS = tuple(f".{n:03d}" for n in range(1000))


def _clock_text(ms: int) -> str:
    days, rest = divmod(ms, DAY)
    day = _DAYS.get(days)
    if day is None:
        day = _DAYS[days] = date.fromordinal(_EPOCH_ORDINAL + days).isoformat() + "T"
    seconds, millis = divmod(rest, 1000)
    clock = _SECONDS.get(seconds)
    if clock is None:
        clock = _SECONDS[seconds] = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return day + clock + _MILLIS[millis]


def sf_datetime(ms: int) -> str:
    """Salesforce's datetime shape: ``2026-01-01T09:30:00.000+0000`` (UTC)."""
    return _clock_text(ms) + "+0000"


def hs_iso(ms: int) -> str:
    """HubSpot's datetime shape: ``2025-03-01T10:00:00.000Z`` (UTC)."""
    return _clock_text(ms) + "Z"


def days_before(rng: random.Random, moment: int, low: float, high: float) -> int:
    """An instant between ``low`` and ``high`` days before ``moment``."""
    return moment - int(low * DAY + rng.random() * (high - low) * DAY)


def recent_created(rng: random.Random, anchor: int) -> int:
    """A creation time skewed to the recent past: a tenth in the last day, most within 90 days."""
    roll = rng.random()
    if roll < 0.10:
        return days_before(rng, anchor, 0.001, 1.0)
    if roll < 0.35:
        return days_before(rng, anchor, 1.0, 14.0)
    if roll < 0.75:
        return days_before(rng, anchor, 14.0, 90.0)
    return days_before(rng, anchor, 90.0, 540.0)


def modified_after(rng: random.Random, created: int, anchor: int) -> int:
    """A last-modified time between ``created`` and ``anchor`` (often equal to ``created``)."""
    if rng.random() < 0.4:
        return created
    return created + int(rng.random() * (anchor - created))


def later(rng: random.Random, moment: int, max_days: float, anchor: int) -> int:
    """An instant a minute to ``max_days`` after ``moment``, never after ``anchor``."""
    return min(moment + MINUTE + int(rng.random() * (max_days * DAY - MINUTE)), anchor)
