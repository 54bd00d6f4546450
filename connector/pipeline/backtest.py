"""``relay backtest``: the people of a period decided again under the current rules and a candidate set.

The stored snapshots of the people seen since a date (``records``, kind ``person``, live) are
rebuilt as the sync rebuilds them (:func:`~connector.pipeline.records.person_from_snapshot`) and
replayed through the pure decision core (:func:`~connector.core.decide.decide_people`) twice:
under the rules in force and under a candidate rule set. Each side starts from a fresh
round-robin state and an empty assignment ledger of its own, and replays the records in the order
the syncs saw them (by ``last_seen``: one batch per connection and moment, a sync page), each batch
decided at that moment (so SLA due times follow business hours as they did). A person decided in
an earlier batch keeps that owner on a later record of theirs (one person, one owner), as a
sync's assignment ledger makes it.

What a replay takes from the store, read in one read-only transaction (nothing is written, and
no CRM is called):

* accounts: each connection's live account snapshots, indexed as a sync indexes them;
* owners: the CRM users the store knows (``assignments``: connection, CRM user id, email) and
  the roster of both rule sets (so that routing to a member with no assignment yet works);
* the owner a record shows: when it is one Relay wrote (an assignment of that record names that
  CRM user), the record is replayed without it, as Relay first saw it; any other owner (a contact
  owned in the CRM, a lead a rep owns) stays, and is kept or not as each rule set says;
* dispositions: from the records' own values under each side's ``dispositions.yaml`` (suppressed,
  held, or recycled once the recycle date has come), not from the ledger.

The comparison (:func:`compare`) is pure: owners (how many records change owner, examples with
both reasons), tiers, SLA due times, load per rep, fairness per round-robin group (each owner's
share of the group's picks against their share of its weight) and the outcome counts (assigned,
kept, nurture, unassigned, held, suppressed, not routed for consent, converted, quarantined).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from connector.config.loader import RelayConfig
from connector.core.decide import Disposed, decide_people
from connector.core.identity import AccountIndex, person_key
from connector.core.models import (
    Account,
    ExistingAssignment,
    LeadDecision,
    Owner,
    Person,
    RoutingState,
)
from connector.core.rules import GLOBAL_REGION, Rules
from connector.pipeline.records import account_from_snapshot, person_from_snapshot
from connector.store.db import read_snapshot
from connector.store.models import AssignmentRow, RecordRow
from connector.store.repositories._common import chunked, table_of

OutcomeState = Literal["assigned", "kept", "nurture", "unassigned", "held", "suppressed", "consent",
                       "converted", "quarantined"]
STATES: tuple[OutcomeState, ...] = ("assigned", "kept", "nurture", "unassigned", "held", "suppressed", "consent",
                                    "converted", "quarantined")
"""Every outcome a record can have, in the order a report lists them."""
EXAMPLES = 10
"""Owner changes a text report shows (``--json`` lists every one)."""
_HELD_ACTIONS = frozenset({"create_opportunity", "return_to_nurture", "disqualify"})


# --------------------------------------------------------------------------- what a replay takes


@dataclass(frozen=True)
class ReplayRecord:
    """One person record to replay: as the store last saw it, its identity and when.

    Attributes:
        person: The record, rebuilt from its snapshot (an owner Relay wrote taken off).
        relay_id: Its identity in the store (records sharing one are one person).
        seen_at: When a sync last read it: it is decided at that moment.
        owner_email: The owner it showed, when the store knows that CRM user (who a recycled
            person never goes back to).
    """

    person: Person
    relay_id: str | None
    seen_at: datetime
    owner_email: str | None = None


@dataclass
class ReplayInput:
    """Everything a replay reads, from the store or built in a test.

    Attributes:
        records: The people, in the order the syncs saw them.
        accounts: Each connection's live accounts.
        owners: The CRM users known (the store's assignments) and the roster.
        known_owner_emails: Emails the store knows a CRM user for.
        skipped: Records that cannot be replayed, by reason (their snapshot no longer fits, their
            object is no longer mapped).
    """

    records: list[ReplayRecord]
    accounts: dict[str, list[Account]] = field(default_factory=dict)
    owners: list[Owner] = field(default_factory=list)
    known_owner_emails: frozenset[str] = frozenset()
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Outcome:
    """What one rule set decides for one record.

    Attributes:
        ref: The record (``salesforce/Lead/00Q...``).
        label: Who it is (email, else name).
        state: ``assigned`` (an owner by Relay's routing), ``kept`` (the CRM's owner stays),
            ``nurture``, ``unassigned`` (nobody available), ``held`` / ``suppressed`` (a
            disposition), ``consent`` (not routed: consent.yaml), ``converted`` or ``quarantined``.
        owner: The owner's email (None: none, or a CRM user the store does not know).
        tier, rule, reason: The routing decision's tier, rule and reason (the quarantine reason
            for a quarantined record).
        score: The score.
        sla_due: The SLA deadline of a new assignment (None: no SLA).
        response_minutes: That SLA's response time.
        group: The round-robin rotation that picked the owner (``sales_reps:NA``), if any.
        pick: Which pick of that rotation it was (one pick per person, however many records).
    """

    ref: str
    label: str
    state: OutcomeState
    owner: str | None = None
    tier: str | None = None
    rule: str | None = None
    reason: str | None = None
    score: int | None = None
    sla_due: datetime | None = None
    response_minutes: int | None = None
    group: str | None = None
    pick: int | None = None


# --------------------------------------------------------------------------- the replay (pure)


def disposed_of(record: ReplayRecord, rules: Rules) -> Disposed | None:
    """What a record's own disposition means for its decision at ``record.seen_at`` under ``rules``.

    ``suppress``: suppressed; ``create_opportunity``, ``return_to_nurture``, ``disqualify``: held;
    ``recycle``: held until the disposition date plus ``recycle_days``, then recycled (never back to
    the owner it showed). No value, or one ``dispositions.yaml`` does not know: nothing.
    """
    spec = rules.dispositions
    raw = getattr(record.person, spec.field, None)
    value = raw.strip() if isinstance(raw, str) else ""
    disposition = spec.dispositions.get(value) if value else None
    if disposition is None:
        return None
    at = record.person.disposition_at
    note = f"{value} set {at.date().isoformat()}" if at is not None else f"{value} set"
    if disposition.action == "suppress":
        return Disposed("suppressed", note)
    if disposition.action == "recycle":
        due = at + timedelta(days=disposition.recycle_days or 0) if at is not None else None
        if due is not None and due <= record.seen_at:
            return Disposed("recycled", note, excluded=frozenset({record.owner_email} if record.owner_email else ()))
        return Disposed("held", f"{note}; recycled on {due.date().isoformat() if due else 'never'}")
    if disposition.action in _HELD_ACTIONS:
        return Disposed("held", note, nurture=disposition.action == "return_to_nurture")
    return None


def replay(data: ReplayInput, rules: Rules) -> list[Outcome]:
    """Decide ``data.records`` under ``rules`` as the syncs would have: one outcome per record, in order.

    A fresh round-robin state and an empty ledger: one batch per connection and moment
    (``seen_at``), decided at that moment; a person routed in an earlier batch keeps that owner
    on a later record of theirs.
    """
    state = RoutingState()
    ledger: dict[str, ExistingAssignment] = {}
    indexes = {connection: AccountIndex(accounts) for connection, accounts in data.accounts.items()}
    outcomes: list[Outcome] = []
    for (connection, at), grouped in groupby(data.records, key=lambda r: (r.person.ref.connection, r.seen_at)):
        batch = list(grouped)
        identities = {r.person.ref: r.relay_id for r in batch if r.relay_id}
        existing = {r.person.ref: ledger[key] for r in batch if (key := _person_of(r)) in ledger}
        disposed = {r.person.ref: d for r in batch if (d := disposed_of(r, rules)) is not None}
        index = indexes.setdefault(connection, AccountIndex())
        decisions, state = decide_people([r.person for r in batch], index, data.owners, rules, state, at,
                                         existing, identities, disposed)
        by_ref = {d.ref: d for d in decisions}
        for record in batch:
            decision = by_ref[record.person.ref]
            outcomes.append(_outcome(record, decision))
            routing = decision.routing
            if routing is not None and routing.owner_email and routing.source == "relay" \
                    and (key := _person_of(record)) is not None:
                ledger.setdefault(key, ExistingAssignment(
                    owner_email=routing.owner_email, tier=routing.tier, assigned_at=at, rule=routing.rule))
    return outcomes


def _person_of(record: ReplayRecord) -> str | None:
    """Whose record it is, as the assignment ledger finds a person: the store's relay id, else the email's key."""
    if record.relay_id:
        return record.relay_id
    key = person_key(record.person.email)
    return f"key:{key}" if key is not None else None


def _outcome(record: ReplayRecord, decision: LeadDecision) -> Outcome:
    person = record.person
    label = person.email or " ".join(x for x in (person.first_name, person.last_name) if x) or person.ref.crm_id
    ref = str(person.ref)
    score = decision.score.total if decision.score is not None else None
    if decision.quarantine_reason is not None:
        return Outcome(ref, label, "quarantined", reason=decision.quarantine_reason)
    routing = decision.routing
    if routing is None:
        return Outcome(ref, label, "converted", score=score)
    state: OutcomeState
    if routing.rule == "disposition_suppressed":
        state = "suppressed"
    elif routing.rule == "disposition_held":
        state = "held"
    elif routing.rule == "consent_no_routing":
        state = "consent"
    elif routing.source == "crm_owner":
        state = "kept"
    elif routing.owner_email:
        state = "assigned"
    elif routing.fallback == "none":
        state = "unassigned"
    else:
        state = "nurture"
    sla = decision.sla
    return Outcome(ref, label, state, owner=routing.owner_email, tier=routing.tier, rule=routing.rule,
                   reason=routing.reason, score=score, sla_due=sla.due_at if sla else None,
                   response_minutes=sla.response_minutes if sla else None,
                   group=routing.group if routing.source == "relay" else None,
                   pick=routing.position if routing.source == "relay" else None)


# --------------------------------------------------------------------------- the comparison (pure)


@dataclass(frozen=True)
class OwnerChange:
    """A record whose owner differs between the two rule sets."""

    ref: str
    label: str
    before: Outcome
    after: Outcome

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"ref": self.ref, "label": self.label, "before": _side(self.before), "after": _side(self.after)}


@dataclass(frozen=True)
class LoadRow:
    """How many records one owner gets under each rule set."""

    owner: str
    before: int
    after: int

    @property
    def delta(self) -> int:
        """``after - before``."""
        return self.after - self.before


@dataclass(frozen=True)
class Share:
    """One owner's part of one round-robin rotation under one rule set.

    Attributes:
        picks: How many people the rotation gave them.
        share: ``picks`` over the rotation's picks (None: the rotation picked nobody).
        weight: Their weight (None: not eligible in the rotation).
        weight_share: Their weight over the eligible members' weights: the share the rotation aims at.
    """

    picks: int
    share: float | None
    weight: int | None
    weight_share: float | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"picks": self.picks, "share": self.share, "weight": self.weight, "weight_share": self.weight_share}


@dataclass(frozen=True)
class FairnessRow:
    """One owner in one round-robin rotation: share against weight, before and after."""

    group: str
    owner: str
    before: Share
    after: Share

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"group": self.group, "owner": self.owner, "before": self.before.as_dict(),
                "after": self.after.as_dict()}


@dataclass(frozen=True)
class SlaShift:
    """How SLA due times move.

    Attributes:
        changed: Records whose due time differs (a due time gained or lost included).
        earlier, later: Of those with a due time on both sides, due earlier / later.
        gained, lost: A due time only after / only before.
        median_shift_minutes: Median of (after - before) over the records due on both sides that moved.
        mean_before, mean_after: Mean response minutes of the records with an SLA.
    """

    changed: int = 0
    earlier: int = 0
    later: int = 0
    gained: int = 0
    lost: int = 0
    median_shift_minutes: float | None = None
    mean_before: float | None = None
    mean_after: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dict(self.__dict__)


@dataclass
class BacktestReport:
    """What the candidate rules would change over the period.

    Attributes:
        since: The period's start (records seen since).
        connection: Only this connection's records (None: every one).
        current_version, candidate_version: ``Rules.version`` of each side.
        candidate_source: Where the candidate came from (None: no candidate, the current rules twice).
        records: Records replayed.
        skipped: Records that could not be replayed, by reason.
        owner_changes: Every record whose owner differs.
        tier_changes: (tier before, tier after) -> records, for tiers that differ.
        sla: How SLA due times move.
        states: Outcome -> (records before, records after).
        load: Per owner, records before and after.
        fairness: Per round-robin rotation and owner, share against weight.
        notes: What to keep in mind reading it.
    """

    current_version: str
    candidate_version: str
    since: datetime | None = None
    connection: str | None = None
    candidate_source: str | None = None
    records: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    owner_changes: list[OwnerChange] = field(default_factory=list)
    tier_changes: dict[tuple[str, str], int] = field(default_factory=dict)
    sla: SlaShift = field(default_factory=SlaShift)
    states: dict[str, tuple[int, int]] = field(default_factory=dict)
    load: list[LoadRow] = field(default_factory=list)
    fairness: list[FairnessRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def same_rules(self) -> bool:
        """No candidate was given, or it is the current rules: nothing can change."""
        return self.candidate_source is None or self.current_version == self.candidate_version

    @property
    def owners_by_rule(self) -> int:
        """Owner changes where the rule, tier or rotation differs (the rule change itself)."""
        return sum(1 for c in self.owner_changes if _by_rule(c))

    @property
    def owners_by_turn(self) -> int:
        """Owner changes under the same rule and rotation: the rotation's turn moved on (a ripple of the others)."""
        return len(self.owner_changes) - self.owners_by_rule

    @property
    def changed(self) -> bool:
        """Anything differs between the two sides."""
        return bool(self.owner_changes or self.tier_changes or self.sla.changed
                    or any(b != a for b, a in self.states.values()))

    def as_dict(self) -> dict[str, Any]:
        """The whole report, JSON-ready (every owner change, not only examples)."""
        return {
            "since": self.since.isoformat() if self.since else None, "connection": self.connection,
            "current_version": self.current_version, "candidate_version": self.candidate_version,
            "candidate_source": self.candidate_source, "same_rules": self.same_rules, "changed": self.changed,
            "records": self.records, "skipped": self.skipped,
            "owners_changed": len(self.owner_changes), "owners_changed_by_rule": self.owners_by_rule,
            "owners_changed_by_turn": self.owners_by_turn,
            "owner_changes": [c.as_dict() for c in self.owner_changes],
            "tier_changes": [{"before": b, "after": a, "records": n} for (b, a), n in self.tier_changes.items()],
            "sla": self.sla.as_dict(),
            "states": {s: {"before": b, "after": a} for s, (b, a) in self.states.items()},
            "load": [{"owner": r.owner, "before": r.before, "after": r.after, "delta": r.delta} for r in self.load],
            "fairness": [r.as_dict() for r in self.fairness],
            "notes": self.notes,
        }


def _by_rule(change: OwnerChange) -> bool:
    b, a = change.before, change.after
    return (b.rule, b.tier, b.group, b.state) != (a.rule, a.tier, a.group, a.state)


def compare(before: Sequence[Outcome], after: Sequence[Outcome], current: Rules, candidate: Rules) -> BacktestReport:
    """What differs between two replays of the same records (``before`` under ``current``, ``after`` under ``candidate``).

    The report's period, connection and candidate source are the caller's to fill in.

    Raises:
        ValueError: the two replays are not of the same records in the same order.
    """
    if [o.ref for o in before] != [o.ref for o in after]:
        raise ValueError("compare: the two replays must hold the same records in the same order")
    report = BacktestReport(current.version, candidate.version, records=len(before))
    tiers: Counter[tuple[str, str]] = Counter()
    for b, a in zip(before, after, strict=True):
        if b.owner != a.owner:
            report.owner_changes.append(OwnerChange(b.ref, b.label, b, a))
        if (b.tier or "-") != (a.tier or "-"):
            tiers[(b.tier or "-", a.tier or "-")] += 1
    report.tier_changes = dict(tiers.most_common())
    report.sla = sla_shift(before, after)
    counted_before, counted_after = Counter(o.state for o in before), Counter(o.state for o in after)
    report.states = {s: (counted_before[s], counted_after[s]) for s in STATES}
    report.load = load_per_owner(before, after)
    report.fairness = fairness(before, current, after, candidate)
    return report


def sla_shift(before: Sequence[Outcome], after: Sequence[Outcome]) -> SlaShift:
    """How the SLA due times of the same records move from ``before`` to ``after``."""
    changed = earlier = later = gained = lost = 0
    shifts: list[float] = []
    for b, a in zip(before, after, strict=True):
        if b.sla_due == a.sla_due:
            continue
        changed += 1
        if b.sla_due is None:
            gained += 1
        elif a.sla_due is None:
            lost += 1
        else:
            minutes = (a.sla_due - b.sla_due).total_seconds() / 60
            shifts.append(minutes)
            earlier += minutes < 0
            later += minutes > 0
    response_before = [o.response_minutes for o in before if o.response_minutes is not None]
    response_after = [o.response_minutes for o in after if o.response_minutes is not None]
    return SlaShift(changed, earlier, later, gained, lost,
                    statistics.median(shifts) if shifts else None,
                    statistics.fmean(response_before) if response_before else None,
                    statistics.fmean(response_after) if response_after else None)


def load_per_owner(before: Sequence[Outcome], after: Sequence[Outcome]) -> list[LoadRow]:
    """Records per owner on each side (assigned by Relay or kept from the CRM), by owner."""
    counted_before = Counter(o.owner for o in before if o.owner)
    counted_after = Counter(o.owner for o in after if o.owner)
    return [LoadRow(owner, counted_before[owner], counted_after[owner])
            for owner in sorted(set(counted_before) | set(counted_after))]


def rotation_weights(group: str, rules: Rules) -> dict[str, int]:
    """The members a round-robin rotation picks among under ``rules`` and their weights.

    ``group`` is the rotation's key as routing names it: ``sales_reps:NA`` (a group and region),
    ``sales_reps:*`` (every region), ``role:sales_manager:EMEA`` (a fallback role). Empty when the
    rules have no such group.
    """
    name, _, scope = group.rpartition(":")
    if name.startswith("role:"):
        role = name[len("role:"):]
    elif name in rules.routing.groups:
        role = rules.routing.groups[name].role
    else:
        return {}
    region = None if scope in ("*", "") else scope
    return {m.email: m.weight for m in rules.routing.members_with_role(role)
            if m.active and (region is None or m.region in (region, GLOBAL_REGION))}


def _picks(outcomes: Sequence[Outcome]) -> dict[str, Counter[str]]:
    """Per rotation, the people each owner was picked for (one pick per person, however many records)."""
    seen: set[tuple[str, int | None]] = set()
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for o in outcomes:
        if o.group is None or o.owner is None or (o.group, o.pick) in seen:
            continue
        seen.add((o.group, o.pick))
        found[o.group][o.owner] += 1
    return found


def fairness(before: Sequence[Outcome], current: Rules, after: Sequence[Outcome], candidate: Rules) -> list[FairnessRow]:
    """Per round-robin rotation either side used: each owner's share of its picks against their share of its weight."""
    picks_before, picks_after = _picks(before), _picks(after)
    rows: list[FairnessRow] = []
    for group in sorted(set(picks_before) | set(picks_after)):
        weights_before, weights_after = rotation_weights(group, current), rotation_weights(group, candidate)
        owners = [*weights_before, *(e for e in weights_after if e not in weights_before)]
        owners += sorted({*picks_before.get(group, {}), *picks_after.get(group, {})} - set(owners))
        for owner in owners:
            rows.append(FairnessRow(group, owner, _share(picks_before.get(group), weights_before, owner),
                                    _share(picks_after.get(group), weights_after, owner)))
    return rows


def _share(picks: Counter[str] | None, weights: Mapping[str, int], owner: str) -> Share:
    total = sum(picks.values()) if picks else 0
    mine = picks[owner] if picks else 0
    weight = weights.get(owner)
    weight_total = sum(weights.values())
    return Share(mine, mine / total if total else None, weight,
                 weight / weight_total if weight is not None and weight_total else None)


def _side(o: Outcome) -> dict[str, Any]:
    return {"state": o.state, "owner": o.owner, "tier": o.tier, "rule": o.rule, "reason": o.reason, "score": o.score,
            "sla_due": o.sla_due.isoformat() if o.sla_due else None, "group": o.group}


def backtest_replays(data: ReplayInput, current: Rules, candidate: Rules) -> BacktestReport:
    """Replay ``data`` under both rule sets and compare (pure: no store, no CRM)."""
    report = compare(replay(data, current), replay(data, candidate), current, candidate)
    report.skipped = dict(data.skipped)
    unknown = sorted({c.after.owner for c in report.owner_changes
                      if c.after.owner and c.after.owner not in data.known_owner_emails})
    if unknown:
        report.notes.append(f"the store knows no CRM user of {', '.join(unknown)} (no assignment yet): a sync "
                            "gives them an owner only once their user is active in the CRM")
    return report


# --------------------------------------------------------------------------- as text


@dataclass(frozen=True)
class Section:
    """One table of the text report: a title, its columns and rows of text."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]


def headline(report: BacktestReport) -> list[str]:
    """The lines above the tables: what was replayed under what, and the gist."""
    scope = f"connection {report.connection}" if report.connection else "every connection"
    since = f"since {report.since.strftime('%Y-%m-%d %H:%M')} UTC" if report.since else "in the store"
    lines = [f"backtest: {report.records:,} person record(s) seen {since} ({scope}), replayed under each rule set "
             "from a fresh round robin; nothing is written"]
    if report.candidate_source is None:
        lines.append(f"rules: the current rules {report.current_version} against themselves (give --rules DIR "
                     "to try a candidate)")
    else:
        lines.append(f"rules: current {report.current_version} (the configuration in force) -> candidate "
                     f"{report.candidate_version} ({report.candidate_source})")
    if report.skipped:
        lines.append(f"not replayed: {sum(report.skipped.values()):,} ("
                     + "; ".join(f"{why}: {n:,}" for why, n in report.skipped.items()) + ")")
    if not report.changed:
        lines.append("no change: every record gets the same owner, tier, SLA and outcome")
    else:
        lines.append(f"owners: {len(report.owner_changes):,} record(s) change owner ({report.owners_by_rule:,} by "
                     f"another rule, tier or rotation; {report.owners_by_turn:,} by a rotation's turn moving on)")
    return lines


def text_sections(report: BacktestReport, examples: int = EXAMPLES) -> list[Section]:
    """The report's tables, as text (``relay backtest`` prints them)."""
    sections: list[Section] = []
    if report.owner_changes:
        ordered = sorted(report.owner_changes, key=lambda c: not _by_rule(c))  # the rule's own changes first
        shown = ordered[:examples]
        title = f"owner changes (first {len(shown)} of {len(report.owner_changes):,}; --json lists every one)" \
            if len(report.owner_changes) > len(shown) else "owner changes"
        sections.append(Section(title, ("record", "owner before -> after", "why (before, after)"),
                                [(f"{c.ref}\n{c.label}", f"{_who(c.before)}\n-> {_who(c.after)}",
                                  f"{c.before.reason or '-'}\n{c.after.reason or '-'}") for c in shown]))
    if report.tier_changes:
        sections.append(Section("tiers", ("before", "after", "records"),
                                [(b, a, f"{n:,}") for (b, a), n in report.tier_changes.items()]))
    sla = report.sla
    shift = f"{sla.median_shift_minutes:+,.0f} min" if sla.median_shift_minutes is not None else "-"
    sections.append(Section("SLA due times", ("", ""), [
        ("due times that move", f"{sla.changed:,} (earlier {sla.earlier:,}, later {sla.later:,}, gained "
                                f"{sla.gained:,}, lost {sla.lost:,})"),
        ("median move", shift),
        ("mean response time", f"{_minutes(sla.mean_before)} -> {_minutes(sla.mean_after)}"),
    ]))
    sections.append(Section("outcomes", ("outcome", "before", "after", "delta"),
                            [(state, f"{b:,}", f"{a:,}", _delta(a - b)) for state, (b, a) in report.states.items()
                             if b or a]))
    sections.append(Section("load per rep (records owned)", ("owner", "before", "after", "delta"),
                            [(r.owner, f"{r.before:,}", f"{r.after:,}", _delta(r.delta)) for r in report.load]))
    if report.fairness:
        sections.append(Section("fairness per round-robin rotation (share of its picks against share of its weight)",
                                ("rotation", "owner", "before picks", "share", "weight", "after picks", "share",
                                 "weight"),
                                [(r.group, r.owner, f"{r.before.picks:,}", _percent(r.before.share),
                                  _percent(r.before.weight_share), f"{r.after.picks:,}", _percent(r.after.share),
                                  _percent(r.after.weight_share)) for r in report.fairness]))
    return sections


def _who(o: Outcome) -> str:
    if o.owner:
        return o.owner if o.state != "kept" else f"{o.owner} (kept)"
    return f"({o.state})"


def _delta(value: int) -> str:
    return f"{value:+,}" if value else "0"


def _percent(value: float | None) -> str:
    return f"{value * 100:.1f} %" if value is not None else "-"


def _minutes(value: float | None) -> str:
    return f"{value:,.0f} min" if value is not None else "-"


# --------------------------------------------------------------------------- reading the store


def backtest(engine: Engine, config: RelayConfig, *, since: datetime, candidate: Rules | None = None,
             candidate_source: str | None = None, connection: str | None = None) -> BacktestReport:
    """Replay the people seen since ``since`` under the rules in force and ``candidate``; report what changes.

    One read-only transaction (rolled back: nothing is written) and no CRM call.

    Args:
        engine: The store.
        config: The configuration in force: its rules are the current side; its mappings rebuild the records.
        since: Aware: the people a sync read at or after it.
        candidate: The candidate rules (None: the current rules against themselves).
        candidate_source: Where the candidate came from (a directory), for the report.
        connection: Only this connection's people.

    Raises:
        ValueError: ``since`` is naive.
    """
    if since.tzinfo is None or since.utcoffset() is None:
        raise ValueError(f"backtest: since must be an aware datetime, got {since.isoformat()}")
    current = config.rules
    other = candidate if candidate is not None else current
    with read_snapshot(engine) as conn, Session(bind=conn) as session:
        data = read_replay(session, config, since=since.astimezone(UTC), connection=connection,
                           rosters=(current, other))
    report = backtest_replays(data, current, other)
    report.since, report.connection = since.astimezone(UTC), connection
    report.candidate_source = candidate_source if candidate is not None else None
    if candidate is not None and report.same_rules:
        report.notes.insert(0, "the candidate rules are the current rules (same version): nothing can change")
    return report


def read_replay(session: Session, config: RelayConfig, *, since: datetime, connection: str | None = None,
                rosters: Sequence[Rules] = ()) -> ReplayInput:
    """The people seen since ``since`` (live person snapshots), their accounts and the owners the store knows.

    Reads only. ``rosters``: rule sets whose team members count as owners too.
    """
    records = table_of(RecordRow)
    query = select(records).where(records.c.kind == "person", records.c.last_seen >= since,
                                  records.c.deleted.is_(False), records.c.merged_into.is_(None))
    if connection is not None:
        query = query.where(records.c.connection == connection)
    rows = list(session.execute(query.order_by(records.c.last_seen, records.c.connection, records.c.object,
                                               records.c.crm_id)))
    owners, known = _known_owners(session)
    emails = {(o.connection, o.id): o.email for o in owners}
    written = _relay_owners(session, [(r.connection, r.object, r.crm_id) for r in rows])
    data = ReplayInput(records=[], known_owner_emails=frozenset(known))
    for row in rows:
        if row.connection not in config.relay.connections:
            data.skipped[f"connection {row.connection} is not in relay.yaml"] += 1
            continue
        try:
            mapping = config.object_mapping(row.connection, row.object)
        except KeyError:
            data.skipped[f"{row.connection} {row.object} is not mapped"] += 1
            continue
        if mapping.entity != "person":
            data.skipped[f"{row.connection} {row.object} no longer maps people"] += 1
            continue
        mapped = person_from_snapshot(row.connection, mapping, row.crm_id, dict(row.canonical), row.last_seen)
        person = mapped.model
        if not isinstance(person, Person):
            data.skipped[f"{row.connection} {row.object}: the stored snapshot no longer fits"] += 1
            continue
        owner_email = emails.get((row.connection, person.owner_id)) if person.owner_id else None
        if person.owner_id and person.owner_id in written.get((row.connection, row.object, row.crm_id), ()):
            person = person.model_copy(update={"owner_id": None})  # Relay's own decision: decided afresh
        data.records.append(ReplayRecord(person, row.relay_id, row.last_seen, owner_email))
    for name in sorted({r.person.ref.connection for r in data.records}):
        found = session.execute(select(records).where(records.c.connection == name, records.c.kind == "account",
                                                      records.c.deleted.is_(False), records.c.merged_into.is_(None))
                                .order_by(records.c.object, records.c.crm_id))
        data.accounts[name] = [a for a in (account_from_snapshot(r.connection, r.object, r.crm_id, dict(r.canonical))
                                           for r in found) if a is not None]
    roster = sorted({m.email for rules in rosters for m in rules.routing.team})
    data.owners = owners + [Owner(id=f"roster:{email}", email=email, connection=None) for email in roster]
    return data


def _known_owners(session: Session) -> tuple[list[Owner], set[str]]:
    """The CRM users the assignment ledger names (connection, user id, email), all taken as active."""
    table = table_of(AssignmentRow)
    rows = session.execute(select(table.c.connection, table.c.owner_crm_id, table.c.owner_email)
                           .where(table.c.owner_crm_id.is_not(None)).distinct()
                           .order_by(table.c.connection, table.c.owner_crm_id))
    owners: dict[tuple[str, str], Owner] = {}
    for connection, crm_id, email in rows:
        owners.setdefault((connection, crm_id), Owner(id=crm_id, email=email, connection=connection))
    return list(owners.values()), {o.email.strip().lower() for o in owners.values() if o.email}


def _relay_owners(session: Session, refs: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str, str], set[str]]:
    """Per record, the CRM users Relay ever assigned it to (an owner it shows that is one of them is Relay's)."""
    table = table_of(AssignmentRow)
    by_object: dict[tuple[str, str], list[str]] = defaultdict(list)
    for connection, obj, crm_id in refs:
        by_object[(connection, obj)].append(crm_id)
    found: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for (connection, obj), crm_ids in sorted(by_object.items()):
        for batch in chunked(sorted(crm_ids)):
            rows = session.execute(select(table.c.crm_id, table.c.owner_crm_id).where(
                table.c.connection == connection, table.c.object == obj, table.c.crm_id.in_(list(batch)),
                table.c.owner_crm_id.is_not(None)))
            for crm_id, owner in rows:
                found[(connection, obj, crm_id)].add(owner)
    return found
