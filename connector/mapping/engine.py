"""CRM records <-> canonical records, driven by the mapping files."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from connector.config.canonical import field_type
from connector.config.mappings import FieldMapping, ObjectMapping
from connector.crms import ValueStyle, crm_unit
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


@dataclass(frozen=True)
class _Plan:
    """What the engine needs of one object mapping, worked out once (mappings do not change at run time)."""

    mapping: ObjectMapping
    name: str
    crm: str
    entity: str
    style: ValueStyle
    read_fields: tuple[_FieldReader, ...]
    writable: dict[str, tuple[FieldMapping, ...]]
    written: Mapping[str, str]


@dataclass(frozen=True)
class _FieldReader:
    """One read field with its transform chain resolved: (reader, options) per step."""

    crm: str
    canonical: str
    steps: tuple[tuple[Callable[[Any, Any], Any], Any], ...]
    expected: str | None


_PLANS: dict[int, _Plan] = {}


def _plan(object_mapping: ObjectMapping) -> _Plan:
    plan = _PLANS.get(id(object_mapping))
    if plan is None or plan.mapping is not object_mapping:
        writable: dict[str, list[FieldMapping]] = {}
        for fm in object_mapping.write_fields():
            writable.setdefault(fm.canonical, []).append(fm)
        entity = object_mapping.entity
        plan = _Plan(
            mapping=object_mapping, name=object_mapping.name, crm=object_mapping.crm, entity=entity,
            style=crm_unit(object_mapping.crm).values,
            read_fields=tuple(
                _FieldReader(fm.crm, fm.canonical, tuple((TRANSFORMS[t.name].read, t.options) for t in fm.transform),
                             field_type(entity, fm.canonical))
                for fm in object_mapping.read_fields()
            ),
            writable={name: tuple(fms) for name, fms in writable.items()},
            written=MappingProxyType({name: fms[0].crm for name, fms in writable.items()}),
        )
        if len(_PLANS) > 1024:  # mappings reloaded many times (tests): never grow without bound
            _PLANS.clear()
        _PLANS[id(object_mapping)] = plan
    return plan


def as_read_back(object_mapping: ObjectMapping, values: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical values as Relay will read them back once written (a datetime at the CRM's millisecond).

    Each value goes through the write formatting and then the read transforms of the same CRM
    field, so a snapshot that takes on what Relay wrote equals what the next read brings back.
    Values of fields Relay does not read back stay as given.

    Raises:
        MappingError: a value has no writable mapping or cannot be formatted.
    """
    plan = _plan(object_mapping)
    readers = {field.crm: field for field in plan.read_fields}
    out: dict[str, Any] = {}
    for name, value in values.items():
        targets = plan.writable.get(name)
        if not targets:
            raise MappingError(f"{name!r} is not written to {plan.name}")
        reader = readers.get(targets[0].crm)
        if reader is None or reader.canonical != name:
            out[name] = value
            continue
        try:
            out[name] = _read_value(reader, _write_value(plan.style, targets[0], value))
        except TransformError as exc:
            raise MappingError(f"cannot write {plan.crm} {plan.name}: {name} -> {targets[0].crm}: {exc}") from None
    return out


def written_fields(object_mapping: ObjectMapping) -> Mapping[str, str]:
    """Canonical field -> the CRM field it is written to (the first, when several), for fields Relay writes."""
    return _plan(object_mapping).written


def record_meta(object_mapping: ObjectMapping, crm_record: Mapping[str, Any]) -> RecordMeta:
    """Read the id, last-modified time and deleted flag of a CRM record.

    Args:
        object_mapping: The object's mapping (names the three fields).
        crm_record: The record as the adapter returned it (flat, CRM-native field names).

    Returns:
        The bookkeeping values; an unreadable modified time or flag gives ``None``/``False``.
    """
    record = crm_record
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
        crm_record: The record as the adapter returned it (flat, CRM-native field names).

    Returns:
        ``(canonical values by canonical field name, problems)``.
    """
    plan = _plan(object_mapping)
    record = crm_record
    raw_id = record.get(object_mapping.id_field)
    record_id = None if raw_id is None else str(raw_id)
    canonical: dict[str, Any] = {}
    problems: list[MappingProblem] = []
    for field in plan.read_fields:
        if field.crm not in record:
            continue
        raw = record[field.crm]
        try:
            canonical[field.canonical] = _read_value(field, raw)
        except TransformError as exc:
            problems.append(MappingProblem(plan.name, record_id, field.crm, field.canonical, raw, str(exc)))
    return canonical, problems


def _read_value(field: _FieldReader, raw: Any) -> Any:
    value = raw
    if _is_empty(value):
        return None
    for read, options in field.steps:
        value = read(value, options)
        if _is_empty(value):
            return None
    return _check_type(field.expected, value)


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

    Values take the CRM unit's :class:`~connector.crms.ValueStyle`: all text (``""`` clears
    a property, as HubSpot wants) or JSON types (``None`` clears a field, as Salesforce wants). Datetimes are ISO-8601 UTC with milliseconds and Z,
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
    plan = _plan(object_mapping)
    result: dict[str, Any] = {}
    errors: list[str] = []
    for name, value in canonical_changes.items():
        targets = plan.writable.get(name)
        if not targets:
            errors.append(
                f"{name!r} is not written to {plan.name} (writable: {', '.join(plan.writable) or 'none'})"
            )
            continue
        for fm in targets:
            try:
                result[fm.crm] = _write_value(plan.style, fm, value)
            except TransformError as exc:
                errors.append(f"{name} -> {fm.crm}: {exc}")
    if errors:
        raise MappingError(f"cannot write {plan.crm} {plan.name}: " + "; ".join(errors))
    return result


def _write_value(style: ValueStyle, fm: FieldMapping, value: Any) -> Any:
    if value is None:
        return style.empty
    for step in reversed(fm.transform):
        value = TRANSFORMS[step.name].write(value, step.options, style)
    if isinstance(value, datetime):
        value = format_datetime(value)
    elif isinstance(value, date):
        value = value.isoformat()
    elif isinstance(value, str):
        value = strip_control_characters(value)
    if style.text_only and not isinstance(value, str):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        raise TransformError(f"{value!r} cannot be sent as a text value")
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
    plan = _plan(object_mapping)
    changes: dict[str, Any] = {}
    for name, value in desired.items():
        have_value = current.get(name)
        if name in plan.writable and type(value) is type(have_value) and value == have_value:
            continue  # equal values of one type format alike: no need to format them
        wanted = to_crm(object_mapping, {name: value})
        try:
            have = _formatted(plan, name, have_value)
        except (MappingError, TransformError):
            have = None
        if wanted != have:
            changes[name] = value
    return changes


def _formatted(plan: _Plan, name: str, value: Any) -> dict[str, Any]:
    return {fm.crm: _write_value(plan.style, fm, value) for fm in plan.writable.get(name, ())}
