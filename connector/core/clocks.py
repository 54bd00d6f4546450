"""SLA clocks that act: what is due for one owned lead, given its clock, its stage and the time.

Seed 001 item 37 (reminder to the rep at 50 % of the SLA, escalation to the manager at
100 %), item 49 (the hierarchy SDR -> manager -> director) and item 40 (aging: still New
48 h after the assignment -> the next available rep; still Contacted 72 h -> back to
nurture); seed 002 "Response Time SLAs" (the tiers' minutes). Every number comes from
``SlaPolicy`` (``config/rules/sla.yaml``).

Pure: the clock's state, the policy, the roster and ``now`` in; the due actions and the
next time anything is due out. Business hours are counted here too, from the team's
calendar (time zone, working days and hours, public holidays from the ``holidays``
package, which is data). Re-queue picks through the routing core's own round robin
(:func:`connector.core.routing.reassign`) with the person's previous owners excluded.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import holidays

from connector.core.models import RoutingState
from connector.core.routing import reassign
from connector.core.rules import WEEKDAYS, RoutingRules, SlaPolicy, SlaTier, WorkCalendar

Stage = Literal["new", "contacted", "other"]
"""Where a lead stands for its clock: untouched, contacted (touched), or further on (clock done)."""
Step = Literal["remind", "escalate_manager", "escalate_director", "requeue", "nurture"]
STEPS: tuple[Step, ...] = ("remind", "escalate_manager", "escalate_director", "requeue", "nurture")
"""Every step a clock can fire, in the order steps due at the same moment fire."""
TERMINAL: frozenset[str] = frozenset({"requeue", "nurture"})
"""Steps that end the owner's clock (a re-queued lead starts a new one with its new owner)."""
MAX_CALENDAR_DAYS = 3700
"""How far business-hours arithmetic looks ahead (ten years) before it calls a calendar empty."""


def stage_of(status: str | None, policy: SlaPolicy) -> Stage:
    """The clock stage of a lead status (the mapped canonical ``status``); blank is new."""
    if status is None or not status.strip():
        return "new"
    value = status.strip().lower()
    if value in _statuses(policy, "new"):
        return "new"
    if value in _statuses(policy, "contacted"):
        return "contacted"
    return "other"


def _statuses(policy: SlaPolicy, which: Literal["new", "contacted"]) -> frozenset[str]:
    values = policy.statuses.new if which == "new" else policy.statuses.contacted
    return frozenset(v.strip().lower() for v in values)


@dataclass(frozen=True, slots=True)
class ClockState:
    """One owner's clock on one lead, as stored.

    Attributes:
        tier: The SLA tier (``Hot``...); a tier the policy does not know has no steps.
        owner_email: The owner the clock runs for.
        started_at: When the owner got the lead (the assignment, or when Relay first saw
            an owner it did not set).
        stage: The lead's stage as last read from the CRM.
        stage_since: When that stage was first seen (``None``: since ``started_at``).
        first_touch_at: When the lead was first touched (status off new), if it was.
        fired: The steps already fired (never fired again).
    """

    tier: str
    owner_email: str
    started_at: datetime
    stage: Stage = "new"
    stage_since: datetime | None = None
    first_touch_at: datetime | None = None
    fired: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class ClockAction:
    """A step that is due.

    Attributes:
        step: Which step.
        due_at: When it became due.
        notify: Who the step's task is for: the owner (reminder), the manager or the director
            (escalations); ``None`` for re-queue and nurture (the pipeline picks the new owner).
        reason: Why, in words an admin reads in the audit log and the task.
    """

    step: Step
    due_at: datetime
    notify: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ClockVerdict:
    """What a clock does now.

    Attributes:
        actions: The steps due now, oldest first (when a terminal step is due, without the
            owner's reminder: a lead re-queued or nurtured is no longer theirs to be reminded of).
        next_due_at: When the next step not fired (nor in ``actions``) is due, if any.
        done: Nothing can ever fire again: the lead moved past contacted, or a terminal step fires.
    """

    actions: tuple[ClockAction, ...]
    next_due_at: datetime | None
    done: bool


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC recommended)")
    return value


# --------------------------------------------------------------------------- business hours


@lru_cache(maxsize=256)
def _public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))


def is_working_day(day: date, calendar: WorkCalendar) -> bool:
    """Whether ``day`` is a working day of ``calendar`` (a listed weekday, no holiday)."""
    if WEEKDAYS[day.weekday()] not in calendar.days or day in calendar.extra_holidays:
        return False
    return calendar.country is None or day not in _public_holidays(calendar.country, calendar.subdivision, day.year)


def _clock_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def add_working_time(start: datetime, seconds: int, calendar: WorkCalendar | None) -> datetime:
    """The moment ``seconds`` of working time after ``start`` (calendar time when ``calendar`` is None).

    Working time is the calendar's hours on its working days in its time zone (DST
    included: a window is the wall-clock hours of that day); weekends, public holidays and
    nights do not count. The result is UTC.

    Raises:
        ValueError: ``start`` is naive, ``seconds`` negative, or the calendar has no working
            time in the next ``MAX_CALENDAR_DAYS`` days.
    """
    _aware(start, "start")
    if seconds < 0:
        raise ValueError(f"working time must not be negative ({seconds} s)")
    start = start.astimezone(UTC)
    if calendar is None or seconds == 0:
        return start + timedelta(seconds=seconds)
    zone = ZoneInfo(calendar.timezone)
    opens, closes = _clock_time(calendar.start), _clock_time(calendar.end)
    remaining = timedelta(seconds=seconds)
    day = start.astimezone(zone).date()
    for _ in range(MAX_CALENDAR_DAYS):
        if is_working_day(day, calendar):
            open_at = datetime.combine(day, opens, tzinfo=zone).astimezone(UTC)
            close_at = datetime.combine(day, closes, tzinfo=zone).astimezone(UTC)
            begin = max(open_at, start)
            if begin < close_at:
                available = close_at - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        day += timedelta(days=1)
    raise ValueError(f"calendar {calendar.timezone} has no working time in {MAX_CALENDAR_DAYS} days after "
                     f"{start.isoformat()}")


def calendar_for(owner_email: str, policy: SlaPolicy, routing: RoutingRules) -> WorkCalendar | None:
    """The owner's team calendar (by roster region), or ``None`` when business hours are off."""
    member = routing.member(owner_email)
    return policy.business_hours.calendar_for(member.region if member is not None else None)


# --------------------------------------------------------------------------- the clock


def _minutes(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds // 60} min {seconds % 60} s"


def schedule(state: ClockState, policy: SlaPolicy, routing: RoutingRules) -> dict[Step, tuple[datetime, str | None, str]]:
    """Every step this clock has, fired or not: step -> (due at, who is told, why).

    An untouched lead has the reminder, the two escalations (as far as the owner's manager
    chain reaches) and the New aging; a contacted lead has the Contacted aging (from when
    it was first seen contacted); a lead further on has none. Business hours count when
    the policy enables them.
    """
    _aware(state.started_at, "started_at")
    tier = policy.tier(state.tier)
    if tier is None:
        return {}
    calendar = calendar_for(state.owner_email, policy, routing)
    hours = " business" if calendar is not None else ""
    steps: dict[Step, tuple[datetime, str | None, str]] = {}
    if state.first_touch_at is None and state.stage == "new":
        _untouched_steps(steps, state, tier, policy, routing, calendar, hours)
    elif state.stage == "contacted" and policy.aging.contacted_minutes is not None:
        since = state.stage_since or state.first_touch_at or state.started_at
        seconds = policy.aging.contacted_minutes * 60
        steps["nurture"] = (add_working_time(since, seconds, calendar), None,
                            f"still Contacted {_minutes(seconds)}{hours} after the first touch "
                            f"(aging limit, SLA tier {tier.name}): back to nurture")
    return steps


def _untouched_steps(steps: dict[Step, tuple[datetime, str | None, str]], state: ClockState, tier: SlaTier,
                     policy: SlaPolicy, routing: RoutingRules, calendar: WorkCalendar | None, hours: str) -> None:
    sla = tier.response_minutes * 60
    owner = state.owner_email
    chain = routing.escalation_chain(owner)
    remind = sla * tier.reminder_percent // 100
    steps["remind"] = (add_working_time(state.started_at, remind, calendar), owner,
                       f"no first touch {_minutes(remind)}{hours} after the assignment "
                       f"({tier.reminder_percent} % of the {_minutes(sla)} SLA, tier {tier.name})")
    escalate = sla * tier.escalation_percent // 100
    escalate_at = add_working_time(state.started_at, escalate, calendar)
    if chain:
        steps["escalate_manager"] = (escalate_at, chain[0],
                                     f"SLA breached: no first touch {_minutes(escalate)}{hours} after the "
                                     f"assignment to {owner} (tier {tier.name}): escalated to the manager")
    if len(chain) > 1:
        further = tier.further_minutes * 60
        steps["escalate_director"] = (add_working_time(escalate_at, further, calendar), chain[1],
                                      f"still untouched {_minutes(further)}{hours} after the escalation to "
                                      f"{chain[0]} (tier {tier.name}): escalated to the next level")
    if policy.aging.new_minutes is not None:
        seconds = policy.aging.new_minutes * 60
        steps["requeue"] = (add_working_time(state.started_at, seconds, calendar), None,
                            f"still New {_minutes(seconds)}{hours} after the assignment to {owner} "
                            f"(aging limit, SLA tier {tier.name}): re-queued to the next available rep")


def evaluate(state: ClockState, policy: SlaPolicy, routing: RoutingRules, now: datetime) -> ClockVerdict:
    """The steps due at ``now`` that have not fired, and when the next one is due.

    A step is due once ``now`` reaches its time; a fired step never comes back. When a
    terminal step (re-queue, nurture) is due, the owner's reminder is dropped (they are
    losing the lead) but the escalations due with it still fire (the breach happened: with
    the defaults, a Qualified lead's director escalation and a Cold lead's manager
    escalation fall due together with the 48-hour re-queue). Once the lead moved past
    contacted (``stage`` other), nothing is left and the clock is done.

    Raises:
        ValueError: ``now`` or a time of the state is naive.
    """
    _aware(now, "now")
    steps = schedule(state, policy, routing)
    pending = sorted(
        ((at, STEPS.index(step), step, notify, reason) for step, (at, notify, reason) in steps.items()
         if step not in state.fired),
        key=lambda item: (item[0], item[1]),
    )
    due = [item for item in pending if item[0] <= now]
    terminal = next((item for item in due if item[2] in TERMINAL), None)
    if terminal is not None:  # the lead leaves its owner: no reminder for them, nothing after it
        due = [item for item in due if item[2] != "remind" and (item[0], item[1]) <= (terminal[0], terminal[1])]
    actions = tuple(ClockAction(step, at, notify, reason) for at, _, step, notify, reason in due)
    fired_now = {a.step for a in actions}
    later = [item[0] for item in pending if item[2] not in fired_now]
    done = terminal is not None or state.stage == "other"
    return ClockVerdict(actions, None if done or not later else min(later), done)


def next_due_at(state: ClockState, policy: SlaPolicy, routing: RoutingRules) -> datetime | None:
    """When the first step not fired yet is due (possibly past: the job fires it at once), if any."""
    if state.stage == "other":
        return None
    times = [at for step, (at, _, _) in schedule(state, policy, routing).items() if step not in state.fired]
    return min(times) if times else None


def requeue_group(clock_group: str | None, region: str | None, tier: str, policy: SlaPolicy,
                  routing: RoutingRules) -> list[str]:
    """The round-robin state keys a re-queued lead is offered to, in order.

    The lead's own group key first (``sales_reps:NA``), then the same group in every
    region; a lead assigned without a group (a named account, a rep by hand) goes to the
    group of the round-robin rule of its tier, else to ``aging.requeue_group``.
    """
    keys: list[str] = []
    if clock_group:
        keys.append(clock_group)
        own = clock_group.rpartition(":")[0]
        if f"{own}:*" not in keys:
            keys.append(f"{own}:*")
        return keys
    by_tier = next((r.group for r in routing.rules if r.action == "round_robin" and r.tier == tier and r.group), None)
    name = by_tier or policy.aging.requeue_group
    if name is None or name not in routing.groups:
        return keys
    if routing.groups[name].by_region:
        keys.append(f"{name}:{region or routing.default_region}")
    keys.append(f"{name}:*")
    return keys


def requeue_owner(
    keys: list[str],
    routing: RoutingRules,
    state: RoutingState,
    active_owners: Mapping[str, bool],
    exclude: Collection[str],
) -> tuple[str | None, str | None, RoutingState]:
    """The next available rep for a re-queued lead, never one in ``exclude`` (its previous owners).

    Returns:
        The rep's email, the group key it was picked in, and the new round-robin state
        (``None, None, state`` when every eligible rep already owned the person).
    """
    for key in keys:
        member, state = reassign(key, routing, state, active_owners, exclude)
        if member is not None:
            return member.email, key, state
    return None, None, state


__all__ = [
    "STEPS",
    "TERMINAL",
    "ClockAction",
    "ClockState",
    "ClockVerdict",
    "Stage",
    "Step",
    "add_working_time",
    "calendar_for",
    "evaluate",
    "is_working_day",
    "next_due_at",
    "requeue_group",
    "requeue_owner",
    "schedule",
    "stage_of",
]
