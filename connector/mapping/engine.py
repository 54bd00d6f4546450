"""CRM records <-> canonical records, driven by the mapping files."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from connector.config.canonical import field_type
from connector.config.mappings import FieldMapping, ObjectMapping
from connector.mapping.transforms import TRANSFORMS, TransformError, format_datetime, parse_datetime


@dataclass(frozen=True)
class MappingProblem:
    """One field of one record that could not be read.

    Attributes:
        object: CRM object (``Lead``, ``contacts``).
        record_id: The record's CRM id, when the record has one.
        field: The CRM field.
        canonical: The canonical field it maps to.
        value: The value as the CRM sent it.
        message: What is wrong with it.
    """

    object: str
    record_id: str | None
    field: str
    canonical: str
    value: Any
    message: str

    def __str__(self) -> str:
        return f"{self.object} {self.record_id or '(no id)'}: {self.field} -> {self.canonical}: {self.message}"


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Control characters (C0, DEL, C1) other than tab and newline: never written to a CRM."""


def strip_control_characters(text: str) -> str:
    """``text`` without control characters other than tab and newline (ESC, NUL, CR, DEL, C1...)."""
    return _CONTROL_CHARACTERS.sub("", text)


class MappingError(ValueError):
    """Canonical values that cannot be written to the CRM (a bug or a mapping gap)."""


@dataclass(frozen=True)
class RecordMeta:
    """The bookkeeping fields of a CRM record: id, last-modified and deleted flag."""

    record_id: str | None
    modified_at: datetime | None
    deleted: bool


def flatten(crm_record: Mapping[str, Any]) -> dict[str, Any]:
    """A HubSpot record ``{id, archived, properties: {...}}`` as one flat dict.

    Salesforce records (and already-flat records) come back unchanged, minus nothing;
    properties win over top-level keys of the same name.
    """
    properties = crm_record.get("properties")
    if not isinstance(properties, Mapping):
        return dict(crm_record)
    flat = {key: value for key, value in crm_record.items() if key != "properties"}
    flat.update(properties)
    return flat


def record_meta(object_mapping: ObjectMapping, crm_record: Mapping[str, Any]) -> RecordMeta:
    """Read the id, last-modified time and deleted flag of a CRM record.

    Args:
        object_mapping: The object's mapping (names the three fields).
        crm_record: The record as the CRM (or adapter) returned it.

    Returns:
        The bookkeeping values; an unreadable modified time or flag gives ``None``/``False``.
    """
    record = flatten(crm_record)
    raw_id = record.get(object_mapping.id_field)
    modified: datetime | None = None
    if object_mapping.modified_field and record.get(object_mapping.modified_field) not in (None, ""):
        try:
            modified = parse_datetime(record[object_mapping.modified_field])
        except TransformError:
            modified = None
    deleted = False
    if object_mapping.deleted_field:
        flag = record.get(object_mapping.deleted_field)
        deleted = flag is True or (isinstance(flag, str) and flag.strip().lower() == "true")
    return RecordMeta(None if raw_id is None else str(raw_id), modified, deleted)


def to_canonical(object_mapping: ObjectMapping, crm_record: Mapping[str, Any]) -> tuple[dict[str, Any], list[MappingProblem]]:
    """Read one CRM record into canonical fields.

    Fields the record does not carry are left out; empty values (``None``, ``""``) become
    ``None``. A value that cannot be read is left out and reported; it never raises.

    Args:
        object_mapping: How this object's fields map.
        crm_record: The CRM record (HubSpot records may keep their ``properties`` nesting).

    Returns:
        ``(canonical values by canonical field name, problems)``.
    """
    record = flatten(crm_record)
    raw_id = record.get(object_mapping.id_field)
    record_id = None if raw_id is None else str(raw_id)
    canonical: dict[str, Any] = {}
    problems: list[MappingProblem] = []
    for fm in object_mapping.read_fields():
        if fm.crm not in record:
            continue
        raw = record[fm.crm]
        try:
            canonical[fm.canonical] = _read_value(object_mapping.entity, fm, raw)
        except TransformError as exc:
            problems.append(MappingProblem(object_mapping.name, record_id, fm.crm, fm.canonical, raw, str(exc)))
    return canonical, problems


def _read_value(entity: str, fm: FieldMapping, raw: Any) -> Any:
    value = raw
    if _is_empty(value):
        return None
    for step in fm.transform:
        value = TRANSFORMS[step.name].read(value, step.options)
        if _is_empty(value):
            return None
    return _check_type(field_type(entity, fm.canonical), value)


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


_TYPE_CHECKS: dict[str, Any] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "datetime": lambda v: isinstance(v, datetime) and v.tzinfo is not None,
    "date": lambda v: isinstance(v, date) and not isinstance(v, datetime),
}


def _check_type(expected: str | None, value: Any) -> Any:
    if expected is None:
        return value
    if expected == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif _TYPE_CHECKS[expected](value):
        return float(value) if expected == "float" else value
    raise TransformError(f"{value!r} is not a {expected}; check the field's transforms")


def to_crm(object_mapping: ObjectMapping, canonical_changes: Mapping[str, Any]) -> dict[str, Any]:
    """Format canonical values for writing to the CRM.

    HubSpot gets every value as a string (``""`` clears a property); Salesforce gets JSON
    types (``None`` clears a field). Datetimes are ISO-8601 UTC with milliseconds and Z,
    dates ``YYYY-MM-DD``. Text loses its control characters other than tab and newline
    (an ESC or NUL typed or pasted into a source field never reaches a CRM).

    Args:
        object_mapping: How this object's fields map.
        canonical_changes: Canonical field name -> new value.

    Returns:
        CRM field name -> value to send.

    Raises:
        MappingError: a field has no writable mapping or a value cannot be formatted;
            the message lists every such field.
    """
    result: dict[str, Any] = {}
    errors: list[str] = []
    writable: dict[str, list[FieldMapping]] = {}
    for fm in object_mapping.write_fields():
        writable.setdefault(fm.canonical, []).append(fm)
    for name, value in canonical_changes.items():
        targets = writable.get(name)
        if not targets:
            errors.append(
                f"{name!r} is not written to {object_mapping.name} (writable: {', '.join(writable) or 'none'})"
            )
            continue
        for fm in targets:
            try:
                result[fm.crm] = _write_value(object_mapping.crm, fm, value)
            except TransformError as exc:
                errors.append(f"{name} -> {fm.crm}: {exc}")
    if errors:
        raise MappingError(f"cannot write {object_mapping.crm} {object_mapping.name}: " + "; ".join(errors))
    return result


def _write_value(crm: str, fm: FieldMapping, value: Any) -> Any:
    if value is None:
        return "" if crm == "hubspot" else None
    for step in reversed(fm.transform):
        value = TRANSFORMS[step.name].write(value, step.options, crm)
    if isinstance(value, datetime):
        value = format_datetime(value)
    elif isinstance(value, date):
        value = value.isoformat()
    elif isinstance(value, str):
        value = strip_control_characters(value)
    if crm == "hubspot" and not isinstance(value, str):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        raise TransformError(f"{value!r} cannot be sent to HubSpot as a property value")
    return value


def changed_fields(
    object_mapping: ObjectMapping, current: Mapping[str, Any], desired: Mapping[str, Any]
) -> dict[str, Any]:
    """The canonical values in ``desired`` that would change what the CRM holds.

    Compares what would be sent for the current and the desired value, so a score of
    ``72`` read back as ``72.0`` or a datetime with different microseconds is no change.

    Args:
        object_mapping: How this object's fields map.
        current: Canonical values as read from the CRM (``to_canonical``).
        desired: Canonical values Relay decided.

    Returns:
        The subset of ``desired`` worth writing.

    Raises:
        MappingError: a desired field has no writable mapping or cannot be formatted.
    """
    changes: dict[str, Any] = {}
    for name, value in desired.items():
        wanted = to_crm(object_mapping, {name: value})
        try:
            have = to_crm(object_mapping, {name: current.get(name)})
        except MappingError:
            have = None
        if wanted != have:
            changes[name] = value
    return changes
