"""Building SOQL safely: quoted string literals, datetime literals, names, the incremental query.

User data never reaches SOQL unescaped: every string literal goes through
:func:`soql_quote`, every field and object name through :func:`soql_name`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connector.adapters.base import Cursor
from connector.adapters.errors import ConfigurationError

MODSTAMP = "SystemModstamp"

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")


def soql_quote(value: str) -> str:
    """A SOQL string literal for ``value``: quotes, backslashes and control characters escaped.

    Example:
        >>> soql_quote("O'Brien \\\\ Co")
        "'O\\\\'Brien \\\\\\\\ Co'"
    """
    if not isinstance(value, str):
        raise TypeError(f"soql_quote takes a string, got {type(value).__name__}: {value!r}")
    return "'" + "".join(_ESCAPES.get(ch, ch) for ch in value) + "'"


_ID_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def is_salesforce_id(value: str) -> bool:
    """Whether ``value`` is a Salesforce record id: 15 letters and digits, or 18 whose last 3 are its checksum.

    Salesforce refuses a whole query (``INVALID_QUERY_FILTER_OPERATOR: invalid ID field``) for
    one malformed id in ``Id IN (...)``. The 18-character form adds, for each 5-character
    block, the letter or digit whose bits say which of the block's characters are upper case.

    Example:
        >>> is_salesforce_id("00Q5e0000000001EAA"), is_salesforce_id("00Q5e0000000001"), is_salesforce_id("0" * 18)
        (True, True, False)
    """
    if len(value) not in (15, 18) or not value.isascii() or not value.isalnum():
        return False
    if len(value) == 15:
        return True
    suffix = "".join(_ID_SUFFIX[sum(1 << bit for bit, ch in enumerate(value[block:block + 5]) if "A" <= ch <= "Z")]
                     for block in (0, 5, 10))
    return value[15:].upper() == suffix


def soql_datetime(value: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC, milliseconds): ``2024-01-01T00:00:00.000Z``.

    Sub-millisecond parts are dropped (Salesforce keeps milliseconds), which only
    ever moves a lower bound earlier, never skipping a record.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"SOQL datetimes must be timezone-aware, got naive {value!r}")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_salesforce_datetime(value: str) -> datetime:
    """Read a Salesforce datetime (``2024-01-01T00:00:00.000+0000``) as an aware UTC datetime.

    Raises:
        ValueError: ``value`` is not a datetime (or lies outside what Python can hold in UTC).
    """
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"not a Salesforce datetime: {value!r}") from exc


def salesforce_position(record: Mapping[str, Any]) -> Cursor | None:
    """The cursor position of a row, ``(SystemModstamp, Id)``; None when either is missing or unreadable."""
    record_id, stamp = record.get("Id"), record.get(MODSTAMP)
    if not isinstance(record_id, str) or not record_id or not isinstance(stamp, str) or not stamp:
        return None
    try:
        return Cursor(parse_salesforce_datetime(stamp), record_id)
    except ValueError:
        return None


def soql_name(name: str, *, what: str = "field") -> str:
    """Check a field or object API name (``Email``, ``Owner.Name``, ``Relay_Score__c``) for SOQL.

    Raises:
        ConfigurationError: the name is not a plain API name (so it cannot smuggle SOQL in).
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"{what} name {name!r} is not a Salesforce API name (letters, digits, underscores, dots)",
            crm="salesforce", code="INVALID_NAME",
        )
    return name


def select_fields(fields: Sequence[str], required: Sequence[str] = ("Id", MODSTAMP)) -> list[str]:
    """The SELECT list: the required fields first, then ``fields``, each once (case-insensitive)."""
    seen: set[str] = set()
    out: list[str] = []
    for name in [*required, *fields]:
        soql_name(name)
        if name.lower() not in seen:
            seen.add(name.lower())
            out.append(name)
    return out


def incremental_query(
    object: str,
    fields: Sequence[str],
    cursor: Cursor | None,
    *,
    include_deleted_flag: bool = True,
    until: datetime | None = None,
) -> str:
    """The SOQL of an incremental read after ``cursor`` (a full read when None), up to ``until``.

    Ordered by (SystemModstamp, Id) and bounded by the compound cursor, so
    records sharing a SystemModstamp are never skipped; ``until`` (the read's
    high-water mark) bounds it from above, so that a change made while the read
    pages is left for the next read instead of being jumped over::

        SELECT Id, SystemModstamp, ... FROM Lead
        WHERE (SystemModstamp > 2024-01-01T00:00:00.000Z
           OR (SystemModstamp = 2024-01-01T00:00:00.000Z AND Id > '00Q...'))
          AND SystemModstamp <= 2024-01-02T00:00:00.000Z
        ORDER BY SystemModstamp, Id
    """
    soql_name(object, what="object")
    required = ["Id", MODSTAMP, "IsDeleted"] if include_deleted_flag else ["Id", MODSTAMP]
    select = ", ".join(select_fields(fields, required))
    query = f"SELECT {select} FROM {object}"
    conditions: list[str] = []
    if cursor is not None:
        ts = soql_datetime(cursor.last_modified)
        conditions.append(f"{MODSTAMP} > {ts} OR ({MODSTAMP} = {ts} AND Id > {soql_quote(cursor.last_id)})")
    if until is not None:
        conditions.append(f"{MODSTAMP} <= {soql_datetime(until)}")
    if len(conditions) == 1:
        query += f" WHERE {conditions[0]}"
    elif conditions:
        query += " WHERE " + " AND ".join(f"({condition})" for condition in conditions)
    return query + f" ORDER BY {MODSTAMP}, Id"
