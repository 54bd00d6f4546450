"""The dashboard's figures (issue 12), one function per page, read from Relay's store.

Every function returns plain JSON-able dicts and reads in one short transaction. The counting is
done by the database (``GROUP BY`` over the period's rows, through the indexes of migration
``0016_console``: ``sla_clocks(started_at)``, ``sla_clocks(owner_email, started_at)``, open clocks by
``started_at``, ``audit_log(action, at)``, ``assignments(assigned_at)``, ``assignments(owner_email,
assigned_at)``, ``assignments(connection, owner_crm_id)``, ``api_calls(connection, at)``,
``data_quality(measured_at)``); Python only rolls up the few grouped rows (tiers x reps, sources x
days) and applies the rules (SLA tiers, roster, round-robin weights, SOP targets).

The pages and what each figure means:

* :func:`sla_figures`: SLA compliance by tier, team (the roster's region and role) and rep. A clock
  (one owner given one lead) *complies* when its lead was touched within the tier's SLA
  (``response_minutes * escalation_percent``: the moment it escalates to the manager, as
  ``relay report handoffs`` judges lead acceptance) and *misses* when it was touched later, or
  not at all by then; a clock still inside its SLA, one closed untouched before its SLA came due
  and one already touched when it started are not judged. Target: > 95 % (seed 002 "Sales
  Activity Standards"). Time to first touch (median, p90 by nearest rank; target < 1 hour), the
  open clocks whose SLA ends within the horizon, and the SLA steps fired (reminders,
  escalations, re-queues, nurture) from the audit log. Times are calendar time; with
  ``business_hours`` on, a note says so (the worker's steps follow the calendars).
* :func:`aging_figures`: open leads (open SLA clocks) by status (New, Contacted) and age in that
  status, those past the aging thresholds of sla.yaml, re-queues, returns to nurture and recycles
  per day, and the recycles waiting.
* :func:`funnel_figures`: :func:`connector.pipeline.handoff_report.handoff_report` itself (its
  definitions, targets and notes), shaped for the page.
* :func:`fairness_figures`: per rep of the roster, leads and Hot leads assigned, their round-robin
  picks against the share their weight gives them in each rotation, open pipeline and won amount
  of their deals, and their open load now (capacity: open SLA clocks, active or not).
* :func:`quality_figures`: the ``data_quality`` rows of the period added up (per source, per day,
  per connection), against quality.yaml's targets (completeness > 95 %, duplicates < 2 %).
* :func:`api_usage_figures`: per connection, the API budget now (``relay status``'s figures) and
  the calls counted per day and kind.

``owner`` (a Rep's email) limits the SLA and aging figures to the clocks and steps of that owner.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.engine import Engine

from connector.config.loader import RelayConfig
from connector.core.rules import GLOBAL_REGION, RoutingRules, TeamMember
from connector.pipeline.budget import connection_status
from connector.pipeline.handoff_report import Target, deal_outcome, handoff_report
from connector.store.db import read_snapshot
from connector.store.expressions import age, epoch, percentiles, seconds_between, utc_day
from connector.store.models import (
    ApiCallRow,
    AssignmentRow,
    AuditRow,
    DataQualityRow,
    DispositionRow,
    RecordRow,
    SlaClockRow,
)

log = logging.getLogger(__name__)

PERIODS: dict[str, int | None] = {"7d": 7, "30d": 30, "90d": 90, "365d": 365, "all": None}
"""The periods a page can show (days back from now; ``all``: everything)."""
DEFAULT_PERIOD = "30d"
SLA_TARGET = Target(">", 95, "percent", "seed 002 Sales Activity Standards: SLA compliance >95%")
FIRST_TOUCH_TARGET = Target("<", 60, "minutes", "seed 002 Metrics & KPIs: Lead Response Time <1 hour")
BREACH_HORIZON_MINUTES = 60
"""Open clocks whose SLA ends within this many minutes are "about to breach"."""
LIST_LIMIT = 50
"""Rows of a page's lists (about to breach, recent escalations)."""
SLA_STEPS = ("sla_reminder", "sla_escalated", "sla_requeued", "sla_nurtured", "sla_step_undelivered")
AGE_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("< 1 h", 3600), ("1-4 h", 4 * 3600), ("4-24 h", 86400), ("1-2 d", 2 * 86400), ("2-3 d", 3 * 86400),
    ("3-7 d", 7 * 86400), ("> 7 d", None))
"""Age buckets of a lead in its status (upper bound in seconds, exclusive)."""
UNKNOWN = "(unknown)"


def since_of(period: str, now: datetime) -> datetime | None:
    """The start of ``period`` (a key of :data:`PERIODS`) at ``now``; None for all time.

    Raises:
        KeyError: an unknown period.
    """
    days = PERIODS[period]
    return None if days is None else now - timedelta(days=days)


# --------------------------------------------------------------------------- SQL helpers


def _as_int(value: Any) -> int:
    return int(value or 0)


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _status(target: Target, part: int, whole: int) -> str:
    """``pass``, ``miss`` (exact, on the fraction) or ``n/a`` with nothing to judge."""
    if not whole:
        return "n/a"
    return "pass" if target.met(Fraction(100 * part, whole)) else "miss"


def _target(target: Target) -> dict[str, Any]:
    return {"op": target.op, "value": target.value, "unit": target.unit, "text": target.describe(),
            "source": target.source}


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).isoformat()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _check_moments(now: datetime, since: datetime | None) -> None:
    for name, value in (("now", now), ("since", since)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError(f"dashboard: {name} must be an aware datetime, got {value.isoformat()}")


# --------------------------------------------------------------------------- the roster


def _roster(routing: RoutingRules) -> dict[str, TeamMember]:
    return {m.email.strip().lower(): m for m in routing.team}


def _rotation_members(key: str, routing: RoutingRules) -> list[TeamMember]:
    """The active members a round-robin rotation (``sales_reps:NA``, ``role:director:*``) chooses among."""
    name, _, scope = key.rpartition(":")
    if name.startswith("role:"):
        role = name[len("role:"):]
    elif name in routing.groups:
        role = routing.groups[name].role
    else:
        return []
    region = None if scope in ("*", "") else scope
    return [m for m in routing.team
            if m.role == role and m.active and (region is None or m.region in (region, GLOBAL_REGION))]


# --------------------------------------------------------------------------- SLA


def _tier_seconds(config: RelayConfig) -> dict[str, float]:
    """Tier -> seconds from the clock's start to its SLA breach (its escalation to the manager)."""
    return {t.name: t.response_minutes * 60 * t.escalation_percent / 100 for t in config.rules.sla.tiers}


def sla_figures(engine: Engine, config: RelayConfig, *, now: datetime, since: datetime | None = None,
                owner: str | None = None, horizon_minutes: int = BREACH_HORIZON_MINUTES) -> dict[str, Any]:
    """SLA compliance by tier, team and rep, time to first touch, clocks about to breach, SLA steps fired.

    Args:
        engine: The store.
        config: The configuration (SLA tiers, roster).
        now: Aware: what is breached or still within its SLA is judged at it.
        since: Only clocks started (steps fired) at or after it; None: all time.
        owner: Only this owner's clocks and steps (a Rep's own figures).
        horizon_minutes: An open clock whose SLA ends within this many minutes is about to breach.
    """
    _check_moments(now, since)
    owner = owner.strip().lower() if owner else None
    tiers = _tier_seconds(config)
    roster = _roster(config.rules.routing)
    c = SlaClockRow.__table__.c
    with read_snapshot(engine) as conn:
        threshold = case(tiers, value=c.tier, else_=None) if tiers else literal(None)
        took = seconds_between(conn, c.first_touch_at, c.started_at)
        touched = and_(c.first_touch_at.is_not(None), c.first_touch_at > c.started_at)
        closed_before_due = and_(c.status == "closed", c.closed_at.is_not(None),
                                 seconds_between(conn, c.closed_at, c.started_at) < threshold)
        met = and_(touched, took <= threshold)
        missed = or_(and_(touched, took > threshold),
                     and_(c.first_touch_at.is_(None), age(conn, now, c.started_at) >= threshold,
                          not_(closed_before_due)))
        scope: list[ColumnElement[bool]] = []
        if since is not None:
            scope.append(c.started_at >= since)
        if owner is not None:
            scope.append(c.owner_email == owner)
        rows = conn.execute(
            select(c.tier, c.owner_email, c.region, func.count().label("clocks"),
                   func.sum(case((met, 1), else_=0)).label("met"),
                   func.sum(case((missed, 1), else_=0)).label("missed"),
                   func.sum(case((and_(c.first_touch_at.is_not(None), c.first_touch_at <= c.started_at), 1),
                                 else_=0)).label("already"),
                   func.sum(case((touched, 1), else_=0)).label("touched"),
                   func.sum(case((and_(touched, took <= 3600), 1), else_=0)).label("within_hour"),
                   func.sum(case((c.status == "open", 1), else_=0)).label("open"))
            .where(*scope).group_by(c.tier, c.owner_email, c.region)).all()
        n, median_s, p90_s = percentiles(conn, took, [*scope, touched], SlaClockRow.__table__)
        breaching = _about_to_breach(conn, tiers, now, owner, horizon_minutes)
        steps = _steps(conn, since, owner)
    by_tier: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    by_team: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    by_rep: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    total = [0, 0, 0, 0, 0]
    for row in rows:
        counts = (_as_int(row.clocks), _as_int(row.met), _as_int(row.missed), _as_int(row.open),
                  _as_int(row.within_hour))
        member = roster.get((row.owner_email or "").lower())
        region = member.region if member is not None else (row.region or UNKNOWN)
        role = member.role if member is not None else UNKNOWN
        for bucket in (by_tier[row.tier], by_team[(region, role)], by_rep[row.owner_email], total):
            for i, value in enumerate(counts):
                bucket[i] += value

    def line(counts: Sequence[int], **keys: Any) -> dict[str, Any]:
        clocks, met_n, missed_n, open_n, _ = counts
        judged = met_n + missed_n
        return {**keys, "clocks": clocks, "open": open_n, "met": met_n, "missed": missed_n, "judged": judged,
                "compliance_percent": _percent(met_n, judged), "status": _status(SLA_TARGET, met_n, judged)}

    order = {t.name: i for i, t in enumerate(config.rules.sla.tiers)}
    notes = []
    if config.rules.sla.business_hours.enabled:
        notes.append("sla.yaml business_hours is on: these figures count calendar time, the worker's steps "
                     "count business hours")
    unknown = sorted(t for t in by_tier if t not in tiers)
    if unknown:
        notes.append(f"clocks of tier(s) sla.yaml does not define ({', '.join(unknown)}) are not judged")
    reps = []
    for email, rep_counts in by_rep.items():
        member = roster.get((email or "").lower())
        reps.append(line(rep_counts, email=email, name=member.name if member else email,
                         role=member.role if member else UNKNOWN, region=member.region if member else UNKNOWN))
    return {
        "now": now.isoformat(), "since": _iso(since), "owner": owner,
        "target": _target(SLA_TARGET), "first_touch_target": _target(FIRST_TOUCH_TARGET),
        "total": line(total),
        "tiers": [line(by_tier[t], tier=t, sla_minutes=tiers[t] / 60 if t in tiers else None)
                  for t in sorted(by_tier, key=lambda t: (order.get(t, len(order)), t))],
        "teams": [line(counts, region=region, role=role) for (region, role), counts in sorted(by_team.items())],
        "reps": sorted(reps, key=lambda r: (r["compliance_percent"] is None, r["compliance_percent"] or 0,
                                            r["email"] or "")),
        "first_touch": {
            "measured": n, "median_minutes": round(median_s / 60, 2) if median_s is not None else None,
            "p90_minutes": round(p90_s / 60, 2) if p90_s is not None else None,
            "within_hour": total[4], "within_hour_percent": _percent(total[4], n),
            "status": "n/a" if median_s is None else
            ("pass" if FIRST_TOUCH_TARGET.met(Fraction(median_s) / 60) else "miss"),
        },
        "about_to_breach": breaching,
        "horizon_minutes": horizon_minutes,
        "steps": steps,
        "notes": notes,
    }


def _about_to_breach(conn: Connection, tiers: Mapping[str, float], now: datetime, owner: str | None,
                     horizon_minutes: int) -> dict[str, Any]:
    """Open, untouched clocks whose SLA ends within the horizon (soonest first), and those past it still open."""
    c = SlaClockRow.__table__.c
    horizon = timedelta(minutes=horizon_minutes)
    base = [c.status == "open", c.first_touch_at.is_(None)]
    if owner is not None:
        base.append(c.owner_email == owner)
    soon = [and_(c.tier == tier, c.started_at > now - timedelta(seconds=s),
                 c.started_at <= now - timedelta(seconds=s) + horizon) for tier, s in tiers.items()]
    past = [and_(c.tier == tier, c.started_at <= now - timedelta(seconds=s)) for tier, s in tiers.items()]
    if not soon:
        return {"count": 0, "breached_open": 0, "items": []}
    count = _as_int(conn.execute(select(func.count()).select_from(SlaClockRow.__table__)
                                 .where(*base, or_(*soon))).scalar())
    breached = _as_int(conn.execute(select(func.count()).select_from(SlaClockRow.__table__)
                                    .where(*base, or_(*past))).scalar())
    breach_epoch = epoch(conn, c.started_at) + case(dict(tiers), value=c.tier, else_=None)
    rows = conn.execute(select(c.connection, c.object, c.crm_id, c.owner_email, c.tier, c.started_at,
                               breach_epoch.label("breach"))
                        .where(*base, or_(*soon)).order_by(breach_epoch, c.id).limit(LIST_LIMIT)).all()
    items = []
    for row in rows:
        breach_at = datetime.fromtimestamp(float(row.breach), UTC)
        items.append({"connection": row.connection, "object": row.object, "crm_id": row.crm_id,
                      "owner_email": row.owner_email, "tier": row.tier, "started_at": _iso(row.started_at),
                      "breach_at": breach_at.isoformat(),
                      "minutes_left": round((breach_at - now).total_seconds() / 60, 1)})
    return {"count": count, "breached_open": breached, "items": items}


def _steps(conn: Connection, since: datetime | None, owner: str | None) -> dict[str, Any]:
    """SLA steps fired (audit ``sla_*``): counts by step and the latest ones."""
    a = AuditRow.__table__.c
    where: list[ColumnElement[bool]] = [a.action.in_(SLA_STEPS)]
    if since is not None:
        where.append(a.at >= since)
    if owner is not None:
        where.append(a.detail["owner_email"].as_string() == owner)
    step = a.detail["step"].as_string()
    counts = {f"{action}/{name}": _as_int(n) for action, name, n in conn.execute(
        select(a.action, step, func.count()).where(*where).group_by(a.action, step))}
    recent = conn.execute(select(a.at, a.action, a.connection, a.object, a.crm_id, a.detail)
                          .where(*where).order_by(a.at.desc(), a.id.desc()).limit(LIST_LIMIT)).all()
    by_step: dict[str, int] = defaultdict(int)
    for key, n in counts.items():
        action, _, name = key.partition("/")
        by_step[name if action != "sla_step_undelivered" else "undelivered"] += n
    return {
        "reminders": by_step.get("remind", 0),
        "escalations_manager": by_step.get("escalate_manager", 0),
        "escalations_director": by_step.get("escalate_director", 0),
        "requeues": by_step.get("requeue", 0),
        "nurtured": by_step.get("nurture", 0),
        "undelivered": by_step.get("undelivered", 0),
        "recent": [{"at": _iso(r.at), "action": r.action, "step": (r.detail or {}).get("step"),
                    "connection": r.connection, "object": r.object, "crm_id": r.crm_id,
                    "owner_email": (r.detail or {}).get("owner_email"),
                    "notify_email": (r.detail or {}).get("notify_email"), "tier": (r.detail or {}).get("tier"),
                    "problem": (r.detail or {}).get("problem")} for r in recent],
    }


# --------------------------------------------------------------------------- aging


def aging_figures(engine: Engine, config: RelayConfig, *, now: datetime, since: datetime | None = None,
                  owner: str | None = None) -> dict[str, Any]:
    """Open leads by status and age in it, past the aging thresholds, re-queues, returns to nurture, recycles.

    The open leads are now (open SLA clocks, whatever the period); ``since`` bounds the re-queues,
    returns to nurture and recycles counted per day.
    """
    _check_moments(now, since)
    owner = owner.strip().lower() if owner else None
    aging = config.rules.sla.aging
    c = SlaClockRow.__table__.c
    with read_snapshot(engine) as conn:
        in_status = age(conn, now, c.stage_since)
        whens = [(in_status < bound, literal(label)) for label, bound in AGE_BUCKETS if bound is not None]
        bucket = case(*whens, else_=literal(AGE_BUCKETS[-1][0]))
        limits = {"new": aging.new_minutes, "contacted": aging.contacted_minutes}
        clock_age = age(conn, now, case((c.stage == "new", c.started_at), else_=c.stage_since))
        overdue = or_(*[and_(c.stage == stage, clock_age >= minutes * 60)
                        for stage, minutes in limits.items() if minutes is not None]) \
            if any(v is not None for v in limits.values()) else literal(False)
        where: list[ColumnElement[bool]] = [c.status == "open"]
        if owner is not None:
            where.append(c.owner_email == owner)
        rows = conn.execute(select(c.stage, bucket.label("bucket"), func.count(),
                                   func.sum(case((overdue, 1), else_=0)))
                            .where(*where).group_by(c.stage, bucket)).all()
        events = _aging_events(conn, since, owner)
        waiting = _recycles_waiting(conn, now, owner)
    labels = [label for label, _ in AGE_BUCKETS]
    table: dict[str, dict[str, int]] = {}
    overdue_by_stage: dict[str, int] = defaultdict(int)
    for stage, label, n, late in rows:
        table.setdefault(stage, dict.fromkeys(labels, 0))[label] = _as_int(n)
        overdue_by_stage[stage] += _as_int(late)
    order = ["new", "contacted", "other"]
    statuses = [{"status": stage, "label": {"new": "New", "contacted": "Contacted"}.get(stage, stage.title()),
                 "buckets": table[stage], "total": sum(table[stage].values()),
                 "past_threshold": overdue_by_stage[stage],
                 "threshold_hours": _hours(limits.get(stage))}
                for stage in sorted(table, key=lambda s: order.index(s) if s in order else len(order))]
    return {"now": now.isoformat(), "since": _iso(since), "owner": owner, "buckets": labels,
            "statuses": statuses, "open_total": sum(s["total"] for s in statuses),
            "thresholds": {"new_hours": aging.new_minutes / 60 if aging.new_minutes else None,
                           "contacted_hours": aging.contacted_minutes / 60 if aging.contacted_minutes else None},
            **events, "recycles_waiting": waiting}


def _hours(minutes: int | None) -> float | None:
    return minutes / 60 if minutes else None


_AGING_ACTIONS = {"sla_requeued": "requeues", "sla_nurtured": "nurtured", "recycled": "recycles"}


def _aging_events(conn: Connection, since: datetime | None, owner: str | None) -> dict[str, Any]:
    a = AuditRow.__table__.c
    where: list[ColumnElement[bool]] = [a.action.in_(tuple(_AGING_ACTIONS))]
    if since is not None:
        where.append(a.at >= since)
    if owner is not None:  # the owner the lead was taken from, or who got the recycled lead
        where.append(or_(and_(a.action != "recycled", a.detail["owner_email"].as_string() == owner),
                         and_(a.action == "recycled", or_(a.detail["returned_by"].as_string() == owner,
                                                          a.detail["new_owner_email"].as_string() == owner))))
    day = utc_day(conn, a.at)
    rows = conn.execute(select(day.label("day"), a.action, func.count()).where(*where)
                        .group_by(day, a.action).order_by(day)).all()
    totals = dict.fromkeys(_AGING_ACTIONS.values(), 0)
    days: dict[str, dict[str, int]] = {}
    for when, action, n in rows:
        key = _AGING_ACTIONS[action]
        totals[key] += _as_int(n)
        days.setdefault(str(when), dict.fromkeys(_AGING_ACTIONS.values(), 0))[key] = _as_int(n)
    return {"events": totals, "events_by_day": [{"day": d, **counts} for d, counts in sorted(days.items())]}


def _recycles_waiting(conn: Connection, now: datetime, owner: str | None) -> dict[str, int]:
    d = DispositionRow.__table__.c
    where: list[ColumnElement[bool]] = [d.status == "waiting"]
    if owner is not None:
        where.append(d.owner_email == owner)
    soon = case((d.recycle_at <= now, "due"), (d.recycle_at <= now + timedelta(days=30), "30d"),
                (d.recycle_at <= now + timedelta(days=60), "60d"), else_="later")
    found = {str(k): _as_int(n) for k, n in conn.execute(select(soon, func.count()).where(*where).group_by(soon))}
    return {key: found.get(key, 0) for key in ("due", "30d", "60d", "later")}


# --------------------------------------------------------------------------- funnel and handoffs


def funnel_figures(engine: Engine, config: RelayConfig, *, now: datetime,
                   since: datetime | None = None) -> dict[str, Any]:
    """The funnel and handoff metrics of ``relay report handoffs`` (its definitions, targets and notes)."""
    _check_moments(now, since)
    report = handoff_report(engine, config=config, now=now, since=since).as_dict()
    metrics = {m["key"]: m for t in report["transitions"].values() for m in t["metrics"]}
    stages = [("lead", "Leads", "leads"), ("mql", "MQL", "mql"), ("sql", "SQL", "sql"),
              ("opportunity", "Opportunities", "opportunities"), ("won", "Closed Won", "closed_won")]
    rates = ["lead_to_mql", "mql_to_sql", "sql_to_opportunity", "opportunity_to_won", "lead_acceptance"]
    times = ["lead_response", "lead_response_p90", "time_to_approval", "time_to_handoff", "time_to_kickoff"]
    return {
        "now": report["now"], "since": report["since"],
        "stages": [{"key": key, "label": label, "count": metrics[name]["value"]} for key, label, name in stages],
        "rates": [metrics[k] for k in rates if k in metrics],
        "times": [metrics[k] for k in times if k in metrics],
        "report": report,
    }


# --------------------------------------------------------------------------- fairness


def fairness_figures(engine: Engine, config: RelayConfig, *, now: datetime,
                     since: datetime | None = None) -> dict[str, Any]:
    """Per rep: leads, Hot leads, round-robin picks against their weights, pipeline, open load (capacity)."""
    _check_moments(now, since)
    routing = config.rules.routing
    roster = _roster(routing)
    a = AssignmentRow.__table__.c
    k = SlaClockRow.__table__.c
    with read_snapshot(engine) as conn:
        where: list[ColumnElement[bool]] = [a.assigned_at >= since] if since is not None else []
        assigned = conn.execute(select(a.owner_email, func.count(), func.sum(case((a.tier == "Hot", 1), else_=0)))
                                .where(*where).group_by(a.owner_email)).all()
        clock_where: list[ColumnElement[bool]] = [k.group_key.is_not(None)]
        if since is not None:
            clock_where.append(k.started_at >= since)
        picks = conn.execute(select(k.group_key, k.owner_email, func.count()).where(*clock_where)
                             .group_by(k.group_key, k.owner_email)).all()
        load = conn.execute(select(k.owner_email, func.count()).where(k.status == "open")
                            .group_by(k.owner_email)).all()
        pipeline, notes = _pipeline(conn, config)
    reps: dict[str, dict[str, Any]] = {}

    def rep(email: str) -> dict[str, Any]:
        email = (email or "").strip().lower()
        if email not in reps:
            member = roster.get(email)
            reps[email] = {"email": email, "name": member.name if member else email,
                           "role": member.role if member else UNKNOWN,
                           "region": member.region if member else UNKNOWN,
                           "active": member.active if member else None,
                           "weight": member.weight if member else None, "in_roster": member is not None,
                           "leads": 0, "hot_leads": 0, "round_robin": 0, "open_load": 0,
                           "open_pipeline": 0.0, "open_deals": 0, "won_amount": 0.0, "won_deals": 0}
        return reps[email]

    for member in routing.team:
        if any(g.role == member.role for g in routing.groups.values()):
            rep(member.email)
    for email, n, hot in assigned:
        entry = rep(email)
        entry["leads"] += _as_int(n)
        entry["hot_leads"] += _as_int(hot)
    for email, n in load:
        rep(email)["open_load"] += _as_int(n)
    for email, figures in pipeline.items():
        entry = rep(email)
        for key, value in figures.items():
            entry[key] += value
    rotations: dict[str, dict[str, int]] = defaultdict(dict)
    for key, email, n in picks:
        rotations[str(key)][(email or "").lower()] = _as_int(n)
        rep(email)["round_robin"] += _as_int(n)
    shown = []
    for key in sorted(rotations):
        counts = rotations[key]
        members = _rotation_members(key, routing)
        weights = {m.email: m.weight for m in members}
        total_weight = sum(weights.values())
        total = sum(counts.values())
        lines = []
        for email in sorted(set(counts) | set(weights)):
            expected = 100.0 * weights.get(email, 0) / total_weight if total_weight else None
            actual = _percent(counts.get(email, 0), total)
            lines.append({"email": email, "name": roster[email].name if email in roster else email,
                          "weight": weights.get(email), "picks": counts.get(email, 0),
                          "share_percent": actual,
                          "expected_percent": round(expected, 2) if expected is not None else None,
                          "deviation_points": round(actual - expected, 2)
                          if actual is not None and expected is not None else None})
        shown.append({"rotation": key, "picks": total, "members": lines})
    leads_total = sum(r["leads"] for r in reps.values())
    hot_total = sum(r["hot_leads"] for r in reps.values())
    for entry in reps.values():
        entry["lead_share_percent"] = _percent(entry["leads"], leads_total)
        entry["hot_share_percent"] = _percent(entry["hot_leads"], hot_total)
        entry["open_pipeline"] = round(entry["open_pipeline"], 2)
        entry["won_amount"] = round(entry["won_amount"], 2)
    return {"now": now.isoformat(), "since": _iso(since),
            "reps": sorted(reps.values(), key=lambda r: (-r["leads"], r["email"])),
            "rotations": shown, "totals": {"leads": leads_total, "hot_leads": hot_total},
            "notes": notes}


def _pipeline(conn: Connection, config: RelayConfig) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Open pipeline and won amount per deal owner (by email), from the live deal snapshots.

    Grouped by the database per (connection, owner, pipeline, stage); each group's stage outcome
    comes from stages.yaml; a deal owner's CRM id is named by the assignments and clocks Relay made
    for that user (a user Relay never assigned a lead to is shown by CRM id).
    """
    r = RecordRow.__table__.c
    owner_id = r.canonical["owner_id"].as_string()
    pipeline = r.canonical["pipeline"].as_string()
    stage = r.canonical["stage"].as_string()
    amount = r.canonical["amount"].as_float()
    rows = conn.execute(select(r.connection, owner_id.label("owner"), pipeline.label("pipeline"),
                               stage.label("stage"), func.count(), func.sum(amount))
                        .where(r.kind == "deal", r.deleted.is_(False), r.merged_into.is_(None))
                        .group_by(r.connection, owner_id, pipeline, stage)).all()
    ids = {(row.connection, row.owner) for row in rows if row.owner}
    emails: dict[tuple[str, str], str] = {}
    a = AssignmentRow.__table__.c
    k = SlaClockRow.__table__.c
    for connection, crm_id in ids:
        found = conn.execute(select(a.owner_email).where(a.connection == connection, a.owner_crm_id == crm_id)
                             .limit(1)).scalar()
        if found is None:
            found = conn.execute(select(k.owner_email).where(k.connection == connection, k.owner_crm_id == crm_id)
                                 .limit(1)).scalar()
        if found is not None:
            emails[(connection, crm_id)] = str(found).lower()
    out: dict[str, dict[str, Any]] = {}
    unknown = 0
    for row in rows:
        who = emails.get((row.connection, row.owner)) if row.owner else None
        key = who or f"{row.connection}:{row.owner or '(no owner)'}"
        figures = out.setdefault(key, {"open_pipeline": 0.0, "open_deals": 0, "won_amount": 0.0, "won_deals": 0})
        _, outcome = deal_outcome(config.rules.stages, row.pipeline, row.stage)
        n, total = _as_int(row[4]), float(row[5] or 0)
        if outcome == "won":
            figures["won_deals"] += n
            figures["won_amount"] += total
        elif outcome == "lost":
            continue
        else:
            unknown += n if outcome is None else 0
            figures["open_deals"] += n
            figures["open_pipeline"] += total
    notes = [f"{unknown} deal(s) in a pipeline or stage stages.yaml does not know: counted as open"] if unknown else []
    return out, notes


# --------------------------------------------------------------------------- data quality


def quality_figures(engine: Engine, config: RelayConfig, *, now: datetime,
                    since: datetime | None = None) -> dict[str, Any]:
    """The data-quality figures of the period's sync runs, added up per source, per day and per connection.

    Completeness is exact: each required field's filled and measured counts are summed by the
    database (``data_quality.fields``), then filled over measured.
    """
    _check_moments(now, since)
    rules = config.rules.quality
    required = list(rules.required_fields)
    q = DataQualityRow.__table__.c
    with read_snapshot(engine) as conn:
        sums = [func.sum(q.records), func.sum(q.duplicates), func.sum(q.emails), func.sum(q.invalid_emails),
                func.sum(q.phones), func.sum(q.invalid_phones), func.sum(q.enriched),
                func.sum(case((q.enriched.is_not(None), q.records), else_=0)), func.count()]
        for name in required:
            sums.append(func.sum(func.coalesce(q.fields[(name, "filled")].as_integer(), 0)))
            sums.append(func.sum(func.coalesce(q.fields[(name, "measured")].as_integer(), 0)))
        where = [q.measured_at >= since] if since is not None else []
        day = utc_day(conn, q.measured_at)
        by_source = conn.execute(select(q.connection, q.source, *sums).where(*where)
                                 .group_by(q.connection, q.source)).all()
        by_day = conn.execute(select(day.label("day"), *sums).where(*where).group_by(day).order_by(day)).all()
        latest = conn.execute(select(q.connection, func.max(q.run_id)).where(*where).group_by(q.connection)).all()

    def figures(row: Sequence[Any], offset: int) -> dict[str, Any]:
        records, dups, emails, bad_emails, phones, bad_phones, enriched, enrich_measured, runs = \
            (_as_int(v) for v in row[offset:offset + 9])
        fields = {}
        filled_total = measured_total = 0
        for i, name in enumerate(required):
            filled, measured = _as_int(row[offset + 9 + 2 * i]), _as_int(row[offset + 10 + 2 * i])
            fields[name] = {"filled": filled, "measured": measured, "percent": _percent(filled, measured)}
            filled_total += filled
            measured_total += measured
        completeness = _percent(filled_total, measured_total)
        duplicates = _percent(dups, records)
        return {
            "records": records, "rows": runs, "fields": fields,
            "completeness_percent": completeness,
            "completeness_status": "n/a" if completeness is None else
            ("pass" if Fraction(filled_total * 100, measured_total) > Fraction(rules.completeness_min_percent)
             else "miss"),
            "duplicates": dups, "duplicate_percent": duplicates,
            "duplicates_status": "n/a" if duplicates is None else
            ("pass" if Fraction(dups * 100, records) < Fraction(rules.duplicates_max_percent) else "miss"),
            "emails": emails, "invalid_emails": bad_emails, "invalid_email_percent": _percent(bad_emails, emails),
            "phones": phones, "invalid_phones": bad_phones, "invalid_phone_percent": _percent(bad_phones, phones),
            "enriched": enriched if enrich_measured else None,
            "enrichment_percent": _percent(enriched, enrich_measured),
        }

    sources = [{"connection": row[0], "source": row[1], **figures(row, 2)} for row in by_source]
    connections: dict[str, list[Any]] = {}
    for row in by_source:
        acc = connections.setdefault(row[0], [0] * (9 + 2 * len(required)))
        for i, value in enumerate(row[2:]):
            acc[i] += _as_int(value)
    total = [0] * (9 + 2 * len(required))
    for acc in connections.values():
        for i, value in enumerate(acc):
            total[i] += value
    return {
        "now": now.isoformat(), "since": _iso(since),
        "targets": {"completeness_min_percent": rules.completeness_min_percent,
                    "duplicates_max_percent": rules.duplicates_max_percent,
                    "completeness_text": f"> {rules.completeness_min_percent:g} %",
                    "duplicates_text": f"< {rules.duplicates_max_percent:g} %"},
        "required_fields": required,
        "total": figures(total, 0),
        "connections": [{"connection": name, **figures(acc, 0)} for name, acc in sorted(connections.items())],
        "sources": sorted(sources, key=lambda s: (s["connection"], s["source"])),
        "days": [{"day": str(row[0]), **figures(row, 1)} for row in by_day],
        "latest_runs": {str(name): _as_int(run) for name, run in latest},
    }


# --------------------------------------------------------------------------- API usage


def api_usage_figures(engine: Engine, config: RelayConfig, *, now: datetime,
                      since: datetime | None = None) -> dict[str, Any]:
    """Per connection: its API budget now (window, day, reserve, what the CRM said) and calls per day and kind."""
    _check_moments(now, since)
    out: list[dict[str, Any]] = []
    for name, settings in config.relay.connections.items():
        status = connection_status(name, settings, engine)
        out.append({
            "name": name, "kind": status.kind,
            "window": _use(status.window), "window_seconds": status.window_seconds,
            "day": _use(status.day), "seen": status.seen,
            "outbox_pending": status.outbox_pending,
            "last_run": {"id": status.last_run.id, "status": str(status.last_run.status),
                         "started_at": _iso(status.last_run.started_at)} if status.last_run else None,
        })
    c = ApiCallRow.__table__.c
    with read_snapshot(engine) as conn:
        day = utc_day(conn, c.at)
        where = [c.at >= since] if since is not None else []
        rows = conn.execute(select(c.connection, day.label("day"), c.kind, func.sum(c.count)).where(*where)
                            .group_by(c.connection, day, c.kind).order_by(day)).all()
    days: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    kinds: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for connection, when, kind, n in rows:
        days[connection].setdefault(str(when), {})[kind] = _as_int(n)
        kinds[connection][kind] += _as_int(n)
    for entry in out:
        name = str(entry["name"])
        entry["calls_by_day"] = [{"day": d, "calls": sum(k.values()), "kinds": k}
                                 for d, k in sorted(days.get(name, {}).items())]
        entry["calls_by_kind"] = dict(sorted(kinds.get(name, {}).items()))
        entry["calls_total"] = sum(kinds.get(name, {}).values())
    return {"now": now.isoformat(), "since": _iso(since), "connections": out}


def _use(limit: Any) -> dict[str, Any] | None:
    if limit is None:
        return None
    return {"used": limit.used, "limit": limit.limit, "reserve": limit.reserve,
            "percent": _percent(limit.used, limit.limit)}


# --------------------------------------------------------------------------- the "why" page


def explain(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One audit entry of ``Console.person``'s trail, with a one-line summary of what it says.

    The score's breakdown (components and rules), the routing rule that fired with its tier and
    reason, the SLA (tier, deadline), and what was written to which CRM are pulled out of the entry's
    detail; the detail itself is kept whole.
    """
    detail = dict(entry.get("detail") or {})
    action = str(entry.get("action"))
    record = f"{entry.get('connection')}/{entry.get('object')}/{entry.get('crm_id')}"
    score = detail.get("score") if isinstance(detail.get("score"), dict) else (
        detail if action == "scored" else None)
    out: dict[str, Any] = {"at": entry.get("at"), "action": action, "record": record,
                           "connection": entry.get("connection"),
                           "rules_version": entry.get("rules_version"), "detail": detail}
    if isinstance(score, dict) and "total" in score:
        out["score"] = {"total": score.get("total"), "category": score.get("category"),
                        "components": {k: score.get(k) for k in ("demographic", "firmographic", "behavioural")
                                       if k in score},
                        "items": [i for i in score.get("items") or [] if isinstance(i, dict)]}
    if action == "assigned":
        out["routing"] = {"rule": detail.get("rule"), "owner_email": detail.get("owner_email"),
                          "tier": detail.get("tier"), "reason": detail.get("reason"),
                          "group": detail.get("group"), "region": detail.get("region")}
    sla = detail.get("sla")
    if isinstance(sla, dict):
        out["sla"] = {"tier": sla.get("tier"), "due": sla.get("due_at"), "minutes": sla.get("response_minutes"),
                      "escalation_chain": sla.get("escalation_chain"), "step": None, "schedule": None}
    elif action.startswith("sla_"):
        out["sla"] = {"tier": detail.get("tier"), "due": detail.get("due_at"), "minutes": None,
                      "escalation_chain": None, "step": detail.get("step"), "schedule": detail.get("schedule")}
    if action in ("field_update", "task_created") and isinstance(detail.get("fields"), dict):
        out["written"] = {"crm": entry.get("connection"), "object": entry.get("object"),
                          "fields": detail["fields"]}
    out["summary"] = _summary(action, detail, out)
    return out


def _summary(action: str, detail: Mapping[str, Any], shown: Mapping[str, Any]) -> str:
    if "score" in shown:
        s = shown["score"]
        text = f"score {s['total']} ({s['category']})"
        if action == "scored":
            return text
    if action == "assigned":
        r = shown["routing"]
        return f"rule {r['rule']} -> {r['owner_email']}, tier {r['tier']}: {r['reason']}"
    if action == "field_update":
        return "wrote " + ", ".join(sorted(detail.get("fields") or {}))
    if action == "task_created":
        fields = detail.get("fields") or {}
        return f"task: {fields.get('Subject') or fields.get('hs_task_subject') or ''}".strip()
    if action.startswith("sla_"):
        return f"{detail.get('step') or detail.get('stage') or ''} tier {detail.get('tier')}: " \
               f"{detail.get('reason') or detail.get('owner_email') or ''}".strip()
    for key in ("reason", "message", "value", "code"):
        if detail.get(key):
            return str(detail[key])
    return action


class FigureCache:
    """Each page's figures computed at most once per ``ttl`` seconds per key (page, period, owner).

    A page over a large store groups tens of thousands of rows (a 30-day period of a million
    decisions: about 80,000 SLA clocks, a few hundred milliseconds to seconds on SQLite); people
    opening the dashboard should not each pay for it. A fresh entry is served as it is; a stale one
    is served at once while one background thread computes it again (so a page never waits for a
    refresh once it was computed); a missing one is computed by the request. A failed refresh keeps
    the last figures and logs why. ``ttl`` 0: no caching (every call computes).
    """

    def __init__(self, ttl: float = 60.0, *, max_entries: int = 512,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, dict[str, Any]]] = {}
        self._refreshing: set[Hashable] = set()

    def __contains__(self, key: Hashable) -> bool:
        """Whether figures of ``key`` are held (fresh or stale)."""
        with self._lock:
            return key in self._entries

    def get(self, key: Hashable, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The figures of ``key``: cached, or computed by ``compute`` (see the class)."""
        if self.ttl <= 0:
            return compute()
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            stale = entry is not None and now - entry[0] >= self.ttl
            start = stale and key not in self._refreshing
            if start:
                self._refreshing.add(key)
        if entry is None:
            value = compute()
            self._store(key, value)
            return value
        if start:
            threading.Thread(target=self._refresh, args=(key, compute), name="relay-dashboard-refresh",
                             daemon=True).start()
        return entry[1]

    def _store(self, key: Hashable, value: dict[str, Any]) -> None:
        with self._lock:
            if key not in self._entries and len(self._entries) >= self.max_entries:
                oldest = min(self._entries, key=lambda k: self._entries[k][0])
                del self._entries[oldest]
            self._entries[key] = (self._clock(), value)

    def _refresh(self, key: Hashable, compute: Callable[[], dict[str, Any]]) -> None:
        try:
            self._store(key, compute())
        except Exception as exc:  # the last figures stay; the next stale read tries again
            log.warning("dashboard figures %r could not be refreshed: %s: %s", key, type(exc).__name__, exc)
        finally:
            with self._lock:
                self._refreshing.discard(key)


def day_range(since: datetime | None, now: datetime) -> list[str]:
    """Every UTC day from ``since`` to ``now`` as ``YYYY-MM-DD`` (for charts with no gaps; at most 400)."""
    if since is None:
        return []
    start: date = since.astimezone(UTC).date()
    end: date = now.astimezone(UTC).date()
    days: list[str] = []
    while start <= end and len(days) < 400:
        days.append(start.isoformat())
        start += timedelta(days=1)
    return days


__all__ = [
    "AGE_BUCKETS",
    "DEFAULT_PERIOD",
    "PERIODS",
    "SLA_TARGET",
    "FigureCache",
    "aging_figures",
    "api_usage_figures",
    "day_range",
    "explain",
    "fairness_figures",
    "funnel_figures",
    "quality_figures",
    "since_of",
    "sla_figures",
]
