"""The CRM's clock as its Date headers tell it: a skew is used, a difference within a header's precision is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from connector.adapters._paging import ServerClock

LOCAL = datetime(2026, 12, 6, 12, 0, 0, 700_000, tzinfo=UTC)


def _date(when: datetime) -> dict[str, str]:
    return {"Date": format_datetime(when.replace(microsecond=0), usegmt=True)}


def test_a_server_an_hour_ahead_moves_the_clock_an_hour() -> None:
    clock = ServerClock(lambda: LOCAL)
    clock.observe(_date(LOCAL + timedelta(hours=1)))
    assert abs(clock.now() - (LOCAL + timedelta(hours=1))) < timedelta(seconds=1)


def test_a_server_two_minutes_behind_holds_the_clock_back() -> None:
    clock = ServerClock(lambda: LOCAL)
    clock.observe(_date(LOCAL - timedelta(minutes=2)))
    assert clock.now() <= LOCAL - timedelta(minutes=2)


def test_whole_seconds_and_transit_time_are_not_taken_for_a_skew() -> None:
    clock = ServerClock(lambda: LOCAL)
    clock.observe(_date(LOCAL - timedelta(seconds=1)), received=LOCAL + timedelta(milliseconds=150))
    assert clock.offset == timedelta(0)
    assert clock.now() == LOCAL


def test_without_a_date_header_the_local_clock_is_used() -> None:
    clock = ServerClock(lambda: LOCAL)
    clock.observe({"Content-Type": "application/json"})
    assert clock.offset is None and clock.now() == LOCAL
