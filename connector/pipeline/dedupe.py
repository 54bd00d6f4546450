"""Duplicates across everything Relay has read: what merging them would do (``relay dedupe report``).

The person matcher (:mod:`connector.core.matching`) runs over the live person records of every
connection in the store, as the last sync left them. Each set of records that are one person
becomes:

* a **merge** for the records of one CRM object (two HubSpot contacts, two Salesforce leads):
  the survivor and each field's winning value, by the survivorship rules of ``matching.yaml``;
* a **link** when the person has records in several objects or CRMs (a HubSpot contact, a
  Salesforce lead and contact): one identity, nothing merged;
* pairs between ``review_at`` and ``match_at`` are **review** items for a data steward.

The blast-radius guard (``merge_guard``) says when the merges would be too many to make
without a person looking first. Nothing is written to a CRM or the store here.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from connector.config.loader import RelayConfig
from connector.core.matching import MatchResult, ScoredPair, match_people
from connector.core.matching.survivorship import Member, MergePlan, plan_merge
from connector.core.rules import MatchingRules, MergeGuard
from connector.store.db import session_factory
from connector.store.repositories import Records
from connector.store.repositories.merges import Reviews

_MATCHED = ("first_name", "last_name", "email", "phone", "company", "website", "title", "country", "state")


@dataclass(frozen=True)
class PlannedMerge:
    """A merge of one CRM object's duplicates, with the evidence for each record merged away."""

    source: str
    plan: MergePlan
    evidence: dict[str, tuple[float, str]]
    owners: dict[str, str] = field(default_factory=dict)
    """Each record's CRM owner id, where it has one."""


@dataclass
class DedupeReport:
    """What merging the duplicates would do (see the module docstring)."""

    records: int
    candidate_pairs: int
    merges: list[PlannedMerge] = field(default_factory=list)
    links: list[list[str]] = field(default_factory=list)
    reviews: list[ScoredPair] = field(default_factory=list)
    guard: str | None = None
    people: list[list[str]] = field(default_factory=list)
    """Every set of more than one record the matcher found to be one person (sorted keys)."""
    best_pair: dict[str, tuple[str, float, str]] = field(default_factory=dict)
    """For each record of those sets: the other record it scored best with, the score, the reasons."""

    @property
    def merged_away(self) -> int:
        """Records the merges would remove (the losers)."""
        return sum(len(m.plan.losers) for m in self.merges)

    def merges_by_source(self) -> dict[str, tuple[int, int]]:
        """Per ``connection/object``: (merges, records merged away)."""
        found: dict[str, tuple[int, int]] = {}
        for merge in self.merges:
            sets, away = found.get(merge.source, (0, 0))
            found[merge.source] = (sets + 1, away + len(merge.plan.losers))
        return dict(sorted(found.items()))


def _member(snapshot: Any) -> Member:
    canonical = snapshot.canonical
    return Member(
        key=f"{snapshot.connection}/{snapshot.object}/{snapshot.crm_id}",
        values=canonical,
        updated_at=_when(canonical.get("updated_at")),
        created_at=_when(canonical.get("created_at")),
    )


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _evidence(result: MatchResult) -> dict[tuple[str, str], tuple[float, str]]:
    """The score and reasons of each pair the matcher kept, by both orders of its ids."""
    found: dict[tuple[str, str], tuple[float, str]] = {}
    for pair in result.pairs():
        found[(pair.left, pair.right)] = found[(pair.right, pair.left)] = (pair.score, pair.reasons)
    return found


def plan_dedupe(members: Sequence[Member], rules: MatchingRules,
                decisions: Mapping[tuple[str, str], bool] | None = None) -> DedupeReport:
    """Match ``members`` (every live person record) and plan merges, links and review items. Pure.

    ``decisions`` are data stewards' answers on pairs (``True``: the same person): they bind the
    matcher, and a decided pair is never a review item again.
    """
    result = match_people(({"id": m.key, **{k: m.values.get(k) for k in _MATCHED},
                            "source": m.values.get("lead_source")} for m in members), rules,
                          decisions=decisions)
    by_key = {m.key: m for m in members}
    evidence = _evidence(result)
    report = DedupeReport(records=len(members), candidate_pairs=result.candidate_pairs)
    for ids in result.clusters().values():
        report.people.append(sorted(ids))
        for key in ids:
            ranked = [(evidence[(key, other)][0], other, evidence[(key, other)][1]) for other in ids
                      if other != key and (key, other) in evidence]
            if ranked:
                score, other, reasons = max(ranked)
                report.best_pair[key] = (other, score, reasons)
        groups: dict[str, list[Member]] = defaultdict(list)
        for key in ids:
            groups[by_key[key].source].append(by_key[key])
        if len(groups) > 1:
            report.links.append(sorted(ids))
        for source, group in sorted(groups.items()):
            if len(group) < 2:
                continue
            plan = plan_merge(group, rules.survivorship)
            best: dict[str, tuple[float, str]] = {}
            for loser in plan.losers:
                scored = [evidence[(loser, other.key)] for other in group
                          if other.key != loser and (loser, other.key) in evidence]
                best[loser] = max(scored) if scored else (0.0, "joined through the set's other records")
            owners = {m.key: str(m.values["owner_id"]) for m in group if m.values.get("owner_id")}
            report.merges.append(PlannedMerge(source, plan, best, owners))
    decided = {tuple(sorted(pair)) for pair in (decisions or {})}
    report.reviews = [pair for pair in result.pairs()
                      if pair.decision == "review" and tuple(sorted((pair.left, pair.right))) not in decided]
    report.guard = guard_reason(rules.merge_guard, report.records, report.merged_away)
    return report


def guard_reason(guard: MergeGuard, records: int, away: int) -> str | None:
    """Why the blast-radius guard stops merging ``away`` of ``records`` records, or ``None``."""
    if away > guard.max_records:
        return f"{away} records would be merged away, more than merge_guard.max_records ({guard.max_records})"
    if records and away / records > guard.max_share:
        return (f"{away} of {records} records ({away / records:.1%}) would be merged away, "
                f"more than merge_guard.max_share ({guard.max_share:.0%})")
    return None


def dedupe_report(config: RelayConfig, engine: Engine) -> DedupeReport:
    """:func:`plan_dedupe` over the live person records of every configured connection in the store."""
    members: list[Member] = []
    with session_factory(engine)() as session:
        records = Records(session)
        for connection in sorted(config.relay.connections):
            members.extend(_member(s) for s in records.live_of_kind(connection, "person"))
        decisions = Reviews(session).decisions()
    return plan_dedupe(members, config.rules.matching, decisions)


def write_dedupe_report(path: Path, report: DedupeReport) -> int:
    """The report as CSV, a row per record acted on; returns the rows written.

    Columns: action (``merge``, ``link``, ``review``), set (the survivor, the link's first record,
    or the pair's left record), record, score, reasons, changes (``field: old -> new`` the
    survivor would take; on its own row).
    """
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("action", "set", "record", "score", "reasons", "changes"))
        for merge in report.merges:
            plan = merge.plan
            changes = "; ".join(f"{name}: {plan.survivor_values.get(name)!r} -> {value!r} (from "
                                f"{plan.values[name].from_key}, {plan.values[name].rule})"
                                for name, value in sorted(plan.updates.items()))
            writer.writerow(("merge", plan.survivor, plan.survivor, "", f"survivor ({plan.survivor_rule})", changes))
            rows += 1
            for loser in plan.losers:
                score, reasons = merge.evidence[loser]
                writer.writerow(("merge", plan.survivor, loser, f"{score:.2f}", reasons, ""))
                rows += 1
        for link in report.links:
            for key in link:
                writer.writerow(("link", link[0], key, "", "one person in several objects or CRMs", ""))
                rows += 1
        for pair in report.reviews:
            writer.writerow(("review", pair.left, pair.right, f"{pair.score:.2f}", pair.reasons, ""))
            rows += 1
    return rows


def review_rows(engine: Engine, *, open_only: bool = True) -> list[tuple[str, ...]]:
    """The review queue as table rows: id, status, score, both records side by side, the reasons.

    Each record is shown as the store last saw it (name, email, phone, company).
    """
    with session_factory(engine)() as session:
        items = Reviews(session).list("open" if open_only else None)
        records = Records(session)
        rows: list[tuple[str, ...]] = []
        for item in items:
            sides = []
            for key in (item.left_key, item.right_key):
                connection, obj, crm_id = key.split("/", 2)
                snapshot = records.get(connection, obj, crm_id)
                values = snapshot.canonical if snapshot is not None else {}
                shown = " ".join(str(values[k]) for k in ("first_name", "last_name") if values.get(k))
                extra = ", ".join(str(values[k]) for k in ("email", "phone", "company") if values.get(k))
                sides.append(f"{key}: {shown}" + (f" ({extra})" if extra else ""))
            rows.append((str(item.id), item.status, f"{item.score:.1f}", sides[0], sides[1], item.reasons))
    return rows
