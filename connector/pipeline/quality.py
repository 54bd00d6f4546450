"""Data quality of a sync run, per lead source: completeness, duplicates, invalid emails and phones, enrichment.

Measured against the SOP targets in ``config/rules/quality.yaml`` (seed 002 "Data Management
SOP": completeness > 95 %, duplicates < 2 %). A people page measures the records it read and
decided (:func:`measure_page`, in memory: no SQL); the page's figures join the run's once the
page committed (``PagePlan.add_to``), so a page that rolls back counts nothing; the run stores
its figures in its final transaction, one row per lead source (:func:`store_run_quality`).

What counts:

* the population is the person records the run read and decided: not the records of the same
  person the core decided with them (siblings from the store), not quarantined records, not
  records decided again only to take an owner decided elsewhere (owner propagation);
* completeness: required values filled in, per cent of those measured; a required field the
  object's mapping does not read is not measured (listed under ``not_mapped``), never missing;
* duplicates: a record is a duplicate when the decision core put an older live record of the same
  person in this CRM beside it (``LeadDecision.duplicates``, whatever matcher fills it); the
  oldest record of a person is the original, so a person on file k times counts k - 1; converted
  leads are history, neither duplicates nor originals;
* invalid emails and phones: hygiene's ``invalid_email`` and ``invalid_phone`` findings, of the
  records that carry one;
* enrichment coverage: records enrichment gave a value, per cent of the records; ``None`` (not
  measured) until the sync passes what enrichment did (``enriched=`` of :func:`measure_page`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connector.config.mappings import ObjectMapping
from connector.core.models import LeadDecision, Person, RecordRef
from connector.core.rules import QualityRules
from connector.store.repositories import DataQualityIn, FieldFill, Repositories
from connector.store.repositories.data_quality import completeness_of, percent

NO_SOURCE = "(none)"
"""The lead source of records that give none."""
SOURCE_MAX = 255
"""Longest lead source kept (Salesforce's picklist values); a longer one is cut."""

_INVALID_EMAIL = "invalid_email"
_INVALID_PHONE = "invalid_phone"


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def source_of(person: Person) -> str:
    """The record's lead source as the figures group it: whitespace collapsed, or ``(none)``."""
    raw = person.lead_source
    if raw is None or not raw.strip():
        return NO_SOURCE
    return " ".join(raw.split())[:SOURCE_MAX]


@dataclass
class SourceFigures:
    """Counts of one lead source (or of a whole run) and the rates derived from them."""

    records: int = 0
    filled: Counter[str] = field(default_factory=Counter)
    """Required field -> records that had it filled in."""
    measured: Counter[str] = field(default_factory=Counter)
    """Required field -> records whose mapping reads it."""
    duplicates: int = 0
    emails: int = 0
    invalid_emails: int = 0
    phones: int = 0
    invalid_phones: int = 0
    enriched: int | None = None
    """Records enrichment gave a value; ``None`` while enrichment is not measured."""

    def add(self, other: SourceFigures) -> None:
        """Add ``other``'s counts to these (enrichment stays unmeasured only if both are)."""
        self.records += other.records
        self.filled.update(other.filled)
        self.measured.update(other.measured)
        self.duplicates += other.duplicates
        self.emails += other.emails
        self.invalid_emails += other.invalid_emails
        self.phones += other.phones
        self.invalid_phones += other.invalid_phones
        if other.enriched is not None:
            self.enriched = (self.enriched or 0) + other.enriched

    def fields(self, required: Iterable[str]) -> dict[str, FieldFill]:
        """Required field -> filled / measured, in the order of ``required``."""
        return {name: FieldFill(self.filled[name], self.measured[name]) for name in required}

    def completeness_percent(self, required: Iterable[str]) -> float | None:
        """Required values filled in, per cent of those measured (None: none measured)."""
        return completeness_of(self.fields(required))

    @property
    def duplicate_percent(self) -> float | None:
        return percent(self.duplicates, self.records)

    @property
    def enrichment_percent(self) -> float | None:
        return None if self.enriched is None else percent(self.enriched, self.records)

    def missing(self, required: Iterable[str]) -> dict[str, int]:
        """Required field -> records without it (of those measured), most missing first."""
        gaps = {name: self.measured[name] - self.filled[name] for name in required
                if self.measured[name] > self.filled[name]}
        return dict(sorted(gaps.items(), key=lambda kv: (-kv[1], kv[0])))

    def as_dict(self, rules: QualityRules) -> dict[str, Any]:
        """JSON-ready figures with each rate's verdict against its target."""
        required = rules.required_fields
        completeness = self.completeness_percent(required)
        duplicates = self.duplicate_percent
        return {
            "records": self.records,
            "completeness_percent": completeness,
            "completeness_met": None if completeness is None else completeness > rules.completeness_min_percent,
            "missing": self.missing(required),
            "duplicates": self.duplicates,
            "duplicate_percent": duplicates,
            "duplicates_met": None if duplicates is None else duplicates < rules.duplicates_max_percent,
            "emails": self.emails,
            "invalid_emails": self.invalid_emails,
            "phones": self.phones,
            "invalid_phones": self.invalid_phones,
            "enriched": self.enriched,
            "enrichment_percent": self.enrichment_percent,
        }


@dataclass
class QualityTally:
    """A page's or a run's data-quality counts, per lead source, with the targets they meet or miss."""

    rules: QualityRules
    sources: dict[str, SourceFigures] = field(default_factory=dict)

    def add(self, other: QualityTally) -> None:
        """Add another page's counts (the targets stay this tally's)."""
        for source, figures in other.sources.items():
            self.sources.setdefault(source, SourceFigures()).add(figures)

    @property
    def total(self) -> SourceFigures:
        """Every source added up."""
        total = SourceFigures()
        for figures in self.sources.values():
            total.add(figures)
        return total

    @property
    def not_mapped(self) -> list[str]:
        """Required fields no record's mapping read: not measured (the mapping, not the data, lacks them)."""
        total = self.total
        return [name for name in self.rules.required_fields if total.records and not total.measured[name]]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``relay sync --json`` prints it under ``quality``)."""
        rules = self.rules
        return {
            "targets": {"completeness_min_percent": rules.completeness_min_percent,
                        "duplicates_max_percent": rules.duplicates_max_percent},
            "required_fields": list(rules.required_fields),
            "not_mapped": self.not_mapped,
            "total": self.total.as_dict(rules),
            "sources": {source: self.sources[source].as_dict(rules) for source in sorted(self.sources)},
        }

    def rows(self, run_id: int, connection: str, measured_at: datetime) -> list[DataQualityIn]:
        """The store's rows of these figures, one per lead source."""
        rules = self.rules
        return [
            DataQualityIn(
                run_id=run_id, connection=connection, source=source, records=figures.records,
                fields=figures.fields(rules.required_fields), duplicates=figures.duplicates,
                emails=figures.emails, invalid_emails=figures.invalid_emails, phones=figures.phones,
                invalid_phones=figures.invalid_phones, enriched=figures.enriched,
                completeness_target=rules.completeness_min_percent,
                duplicates_target=rules.duplicates_max_percent, measured_at=measured_at,
            )
            for source, figures in sorted(self.sources.items()) if figures.records
        ]


def measure_page(
    rules: QualityRules,
    mapping: ObjectMapping,
    decisions: Iterable[LeadDecision],
    persons: Mapping[RecordRef, Person],
    *,
    enriched: Collection[RecordRef] | None = None,
) -> QualityTally:
    """Count one page's data quality, per lead source, from the core's decisions (no I/O).

    Args:
        rules: The required fields and targets (``config/rules/quality.yaml``).
        mapping: The page's object mapping: a required field it does not read is not measured.
        decisions: The decisions of the records to count (the page's own: no siblings); the
            quarantined ones are skipped.
        persons: Every record the core decided with them, by ref (the page's and their siblings):
            how old each duplicate is, and whether it is a converted lead.
        enriched: The records enrichment gave at least one value (``Enrichment.enriched``); None
            while the sync does not enrich (coverage is then not measured).

    Returns:
        The page's counts (add them to the run's with :meth:`QualityTally.add`).
    """
    read = {fm.canonical for fm in mapping.read_fields()}
    measured = [name for name in rules.required_fields if name in read]
    tally = QualityTally(rules)
    for decision in decisions:
        if decision.quarantined:
            continue
        person = decision.hygiene.person if decision.hygiene is not None else persons[decision.ref]
        source = source_of(person)
        figures = tally.sources.get(source)
        if figures is None:
            figures = tally.sources[source] = SourceFigures(enriched=None if enriched is None else 0)
        figures.records += 1
        for name in measured:
            figures.measured[name] += 1
            if not _blank(getattr(person, name)):
                figures.filled[name] += 1
        if not _blank(person.email):
            figures.emails += 1
        if not _blank(person.phone):
            figures.phones += 1
        for finding in decision.findings:
            if finding.code == _INVALID_EMAIL:
                figures.invalid_emails += 1
            elif finding.code == _INVALID_PHONE:
                figures.invalid_phones += 1
        if decision.duplicates and _is_duplicate(decision, persons):
            figures.duplicates += 1
        if enriched is not None and decision.ref in enriched:
            figures.enriched = (figures.enriched or 0) + 1
    return tally


def _age(ref: RecordRef, persons: Mapping[RecordRef, Person]) -> tuple[datetime, str, str]:
    """How a record ranks among its person's records: the oldest first, then by object and id.

    A record the core named but that is not at hand (or has no creation time) ranks as the oldest:
    it was on file before.
    """
    person = persons.get(ref)
    created = person.created_at if person is not None and person.created_at is not None else None
    return (created if created is not None else datetime.min.replace(tzinfo=UTC), ref.object, ref.crm_id)


def _is_duplicate(decision: LeadDecision, persons: Mapping[RecordRef, Person]) -> bool:
    """Whether an older live record of the same person (in this CRM) stands beside this one."""
    me = persons.get(decision.ref)
    if me is not None and me.is_converted:
        return False
    connection = decision.ref.connection
    mine = _age(decision.ref, persons)
    for other in decision.duplicates:
        if other.connection != connection:
            continue
        twin = persons.get(other)
        if twin is not None and twin.is_converted:
            continue
        if _age(other, persons) < mine:
            return True
    return False


def store_run_quality(repos: Repositories, tally: QualityTally | None, run_id: int, connection: str,
                      now: datetime) -> None:
    """Store a run's figures, one row per lead source (nothing when no person was decided)."""
    if tally is None:
        return
    rows = tally.rows(run_id, connection, now)
    if rows:
        repos.data_quality.record_many(rows)


__all__ = ["NO_SOURCE", "QualityTally", "SourceFigures", "measure_page", "source_of", "store_run_quality"]
