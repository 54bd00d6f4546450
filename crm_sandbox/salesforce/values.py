"""Field values: Salesforce's datetime format and the JSON-to-field coercion of writes.

Stored values are what the REST API answers: datetimes as
``2024-01-01T00:00:00.000+0000`` (always UTC, millisecond precision, so that
stored datetimes order correctly as strings), dates as ``YYYY-MM-DD``, numbers,
booleans and strings.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crm_sandbox.salesforce.describe import NUMBER_TYPES, Field

_DATETIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)


def format_datetime(value: datetime) -> str:
    """``2024-01-01T00:00:00.000+0000`` (UTC, milliseconds) as the REST API writes datetimes."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def truncate_ms(value: datetime) -> datetime:
    """``value`` at millisecond precision (as Salesforce stores datetimes)."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def parse_datetime(text: str) -> datetime | None:
    """Parse the datetime forms clients send (``Z``, ``+0000``, ``+00:00``, optional fraction).

    A bare date is midnight UTC. Returns None when ``text`` is not a datetime.
    """
    match = _DATETIME_RE.match(text.strip()) if isinstance(text, str) else None
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        value = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro, tzinfo=UTC)
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        value -= sign * offset
    return value


def parse_date(text: str) -> date | None:
    """Parse ``YYYY-MM-DD`` (None when not a date)."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def bulk_datetime(stored: str) -> str:
    """A stored datetime the way Bulk API CSV and SOAP messages write it (``...000Z``)."""
    return stored[:-5] + "Z" if stored.endswith("+0000") else stored


class ValueProblem(ValueError):
    """A value that cannot be deserialised into a field (Salesforce's ``JSON_PARSER_ERROR``)."""


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, int):
        return "VALUE_NUMBER_INT"
    if isinstance(value, float):
        return "VALUE_NUMBER_FLOAT"
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    return "VALUE_STRING"


def _problem(field: Field, value: Any, java_type: str) -> ValueProblem:
    shown = value if not isinstance(value, (dict, list)) else ("{" if isinstance(value, dict) else "[")
    return ValueProblem(
        f"Cannot deserialize instance of {java_type} from {_json_kind(value)} value {shown} "
        f"or request may be missing a required field (field {field.name})"
    )


def coerce(field: Field, value: Any) -> Any:
    """Turn a JSON value a client wrote into the stored value of ``field``.

    Raises:
        ValueProblem: when the value has the wrong JSON type for the field.
    """
    if value is None:
        return None
    kind = field.type
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _problem(field, value, "boolean")
    if kind in NUMBER_TYPES:
        number: float
        if isinstance(value, (bool, dict, list)):
            raise _problem(field, value, "double" if kind != "int" else "int")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _problem(field, value, "double" if kind != "int" else "int") from None
        if math.isnan(number) or math.isinf(number):
            raise _problem(field, value, "double")
        if kind == "int":
            if number != int(number) or abs(number) > 2**31 - 1:
                raise _problem(field, value, "int")
            return int(number)
        return number
    if kind == "date":
        if isinstance(value, str):
            parsed_date = parse_date(value)
            if parsed_date is None:
                as_datetime = parse_datetime(value)
                parsed_date = as_datetime.date() if as_datetime else None
            if parsed_date is not None:
                return parsed_date.isoformat()
        raise _problem(field, value, "date")
    if kind == "datetime":
        if isinstance(value, str):
            parsed = parse_datetime(value)
            if parsed is not None:
                return format_datetime(truncate_ms(parsed))
        raise _problem(field, value, "datetime")
    if isinstance(value, (dict, list)):
        raise _problem(field, value, "String" if kind not in ("id", "reference") else "ID")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)
