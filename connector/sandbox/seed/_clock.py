"""Timestamps in the shapes the two CRMs use, and random instants before the anchor."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta


def sf_datetime(moment: datetime) -> str:
    """Salesforce's datetime shape: ``2026-01-01T09:30:00.000+0000`` (UTC)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "+0000"


def hs_iso(moment: datetime) -> str:
    """HubSpot's datetime shape: ``2025-03-01T10:00:00.000Z`` (UTC)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def iso_date(day: date) -> str:
    """A date as ``YYYY-MM-DD``."""
    return day.isoformat()


def before(rng: random.Random, anchor: datetime, max_days: float, min_days: float = 0.0) -> datetime:
    """An instant between ``max_days`` and ``min_days`` before ``anchor``, to the millisecond."""
    seconds = rng.uniform(min_days * 86400.0, max_days * 86400.0)
    moment = anchor - timedelta(seconds=seconds)
    return moment.replace(microsecond=(moment.microsecond // 1000) * 1000)


def recent_created(rng: random.Random, anchor: datetime) -> datetime:
    """A creation time skewed to the recent past: a tenth in the last day, most within 90 days."""
    roll = rng.random()
    if roll < 0.10:
        return before(rng, anchor, 1.0, 0.001)
    if roll < 0.35:
        return before(rng, anchor, 14.0, 1.0)
    if roll < 0.75:
        return before(rng, anchor, 90.0, 14.0)
    return before(rng, anchor, 540.0, 90.0)


def modified_after(rng: random.Random, created: datetime, anchor: datetime) -> datetime:
    """A last-modified time between ``created`` and ``anchor`` (often equal to ``created``)."""
    if rng.random() < 0.4:
        return created
    span = (anchor - created).total_seconds()
    moment = created + timedelta(seconds=rng.uniform(0.0, span))
    return moment.replace(microsecond=(moment.microsecond // 1000) * 1000)
