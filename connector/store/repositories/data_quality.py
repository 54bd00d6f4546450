"""Data-quality figures of sync runs, one row per run and lead source (for later reports)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from connector.store.errors import InvalidStoreValue
from connector.store.models import CONNECTION_LEN, SOURCE_LEN, DataQualityRow
from connector.store.repositories._common import aware, chunked, table_of, text_value

FIELD_NAME_LEN = 64


@dataclass(frozen=True)
class FieldFill:
    """How many records had a required field filled in, of those whose mapping reads it."""

    filled: int
    measured: int


def percent(part: int, whole: int) -> float | None:
    """``part`` per cent of ``whole``, rounded to two decimals (None when ``whole`` is 0)."""
    return round(100.0 * part / whole, 2) if whole else None


def completeness_of(fields: Mapping[str, FieldFill]) -> float | None:
    """Required values filled in, per cent of those measured (None: no field was measured)."""
    return percent(sum(f.filled for f in fields.values()), sum(f.measured for f in fields.values()))


@dataclass(frozen=True)
class DataQualityIn:
    """One run's figures for one lead source, to store (the rates are derived from the counts).

    Attributes:
        run_id: The sync run that measured them.
        connection: Its connection.
        source: The lead source (``(none)`` when the records gave none).
        records: Person records decided in the run with this source (at least one).
        fields: Required field -> how many records had it filled, of how many measured.
        duplicates: Records that are a second or later record of a person in the same CRM.
        emails: Records with an email; ``invalid_emails`` of them not a valid address.
        phones: Records with a phone; ``invalid_phones`` of them not a valid number.
        enriched: Records enrichment gave a value (None: not measured).
        completeness_target: Completeness must be above this (per cent).
        duplicates_target: Duplicates must be below this (per cent).
        measured_at: When the run stored them.
    """

    run_id: int
    connection: str
    source: str
    records: int
    fields: Mapping[str, FieldFill]
    duplicates: int
    emails: int
    invalid_emails: int
    phones: int
    invalid_phones: int
    enriched: int | None
    completeness_target: float
    duplicates_target: float
    measured_at: datetime


@dataclass(frozen=True)
class DataQualityRecord:
    """One run's stored figures for one lead source."""

    run_id: int
    connection: str
    source: str
    records: int
    fields: dict[str, FieldFill]
    completeness_percent: float | None
    duplicates: int
    duplicate_percent: float
    emails: int
    invalid_emails: int
    phones: int
    invalid_phones: int
    enriched: int | None
    completeness_target: float
    duplicates_target: float
    measured_at: datetime
    missing: dict[str, int] = field(default_factory=dict)
    """Required field -> records without it (of those measured)."""

    @property
    def completeness_met(self) -> bool | None:
        """Whether completeness is above its target (None: not measured)."""
        return None if self.completeness_percent is None else self.completeness_percent > self.completeness_target

    @property
    def duplicates_met(self) -> bool:
        """Whether the duplicate rate is below its target."""
        return self.duplicate_percent < self.duplicates_target


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidStoreValue(f"{where}: expected a non-negative integer, got {value!r}")
    return value


def _target(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise InvalidStoreValue(f"{where}: expected a percentage 0..100, got {value!r}")
    return float(value)


def _values(entry: DataQualityIn) -> dict[str, Any]:
    """The row of ``entry``, every count checked (the error names the run, source and key)."""
    where = f"data_quality[run {entry.run_id}, source {entry.source!r}]"
    connection = text_value(entry.connection, f"{where}.connection", CONNECTION_LEN)
    source = text_value(entry.source, f"{where}.source", SOURCE_LEN)
    records = _count(entry.records, f"{where}.records")
    if records == 0:
        raise InvalidStoreValue(f"{where}.records: a source with no records has no figures to store")
    fields: dict[str, dict[str, int]] = {}
    for name, fill in entry.fields.items():
        name = text_value(name, f"{where}.fields", FIELD_NAME_LEN)
        filled, measured = _count(fill.filled, f"{where}.fields.{name}.filled"), \
            _count(fill.measured, f"{where}.fields.{name}.measured")
        if not filled <= measured <= records:
            raise InvalidStoreValue(f"{where}.fields.{name}: filled {filled} of {measured} measured, "
                                    f"of {records} records: expected filled <= measured <= records")
        fields[name] = {"filled": filled, "measured": measured}
    for part, whole in (("duplicates", "records"), ("emails", "records"), ("phones", "records"),
                        ("invalid_emails", "emails"), ("invalid_phones", "phones")):
        count, limit = _count(getattr(entry, part), f"{where}.{part}"), getattr(entry, whole)
        if count > limit:
            raise InvalidStoreValue(f"{where}.{part}: {count} is more than the {limit} {whole}")
    if entry.enriched is not None and _count(entry.enriched, f"{where}.enriched") > records:
        raise InvalidStoreValue(f"{where}.enriched: {entry.enriched} is more than the {records} records")
    duplicate_percent = percent(entry.duplicates, records)
    assert duplicate_percent is not None  # records > 0
    return {
        "run_id": entry.run_id, "source": source, "connection": connection, "records": records,
        "fields": fields,
        "completeness_percent": completeness_of({k: FieldFill(**v) for k, v in fields.items()}),
        "duplicates": entry.duplicates, "duplicate_percent": duplicate_percent,
        "emails": entry.emails, "invalid_emails": entry.invalid_emails,
        "phones": entry.phones, "invalid_phones": entry.invalid_phones, "enriched": entry.enriched,
        "completeness_target": _target(entry.completeness_target, f"{where}.completeness_target"),
        "duplicates_target": _target(entry.duplicates_target, f"{where}.duplicates_target"),
        "measured_at": aware(entry.measured_at, f"{where}.measured_at"),
    }


def _record(row: DataQualityRow) -> DataQualityRecord:
    fields = {name: FieldFill(int(v["filled"]), int(v["measured"])) for name, v in dict(row.fields).items()}
    return DataQualityRecord(
        run_id=row.run_id, connection=row.connection, source=row.source, records=row.records, fields=fields,
        completeness_percent=row.completeness_percent, duplicates=row.duplicates,
        duplicate_percent=row.duplicate_percent, emails=row.emails, invalid_emails=row.invalid_emails,
        phones=row.phones, invalid_phones=row.invalid_phones, enriched=row.enriched,
        completeness_target=row.completeness_target, duplicates_target=row.duplicates_target,
        measured_at=row.measured_at,
        missing={name: f.measured - f.filled for name, f in fields.items() if f.measured > f.filled},
    )


class DataQuality:
    """Repository of the data-quality figures of sync runs. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def record_many(self, entries: Sequence[DataQualityIn]) -> None:
        """Store a run's figures, one row per lead source, in one statement per 500 rows.

        A run records its figures once (at its end): a second row for the same run and source
        is refused by the primary key.

        Raises:
            InvalidStoreValue: a count is negative or inconsistent (naming the run, source and key).
        """
        rows = [_values(entry) for entry in entries]
        table = table_of(DataQualityRow)
        for chunk in chunked(rows):
            self._session.execute(insert(table), list(chunk))

    def for_run(self, run_id: int) -> list[DataQualityRecord]:
        """The figures of one run, by source."""
        rows = self._session.scalars(
            select(DataQualityRow).where(DataQualityRow.run_id == run_id).order_by(DataQualityRow.source)
        )
        return [_record(row) for row in rows]

    def for_connection(self, connection: str, *, since: datetime | None = None) -> list[DataQualityRecord]:
        """The figures of a connection's runs (measured at ``since`` or later), oldest run first."""
        query = select(DataQualityRow).where(DataQualityRow.connection == connection)
        if since is not None:
            query = query.where(DataQualityRow.measured_at >= aware(since, "data_quality since"))
        rows = self._session.scalars(query.order_by(DataQualityRow.run_id, DataQualityRow.source))
        return [_record(row) for row in rows]
