"""Building SOQL safely: quoted string literals, datetime literals, names, the incremental query.

User data never reaches SOQL unescaped: every string literal goes through
:func:`soql_quote`, every field and object name through :func:`soql_name`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

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
    """Read a Salesforce datetime (``2024-01-01T00:00:00.000+0000``) as an aware UTC datetime."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a Salesforce datetime: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


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


def incremental_query(object: str, fields: Sequence[str], cursor: Cursor | None, *, include_deleted_flag: bool = True) -> str:
    """The SOQL of an incremental read after ``cursor`` (a full read when None).

    Ordered by (SystemModstamp, Id) and bounded by the compound cursor, so
    records sharing a SystemModstamp are never skipped::

        SELECT Id, SystemModstamp, ... FROM Lead
        WHERE SystemModstamp > 2024-01-01T00:00:00.000Z
           OR (SystemModstamp = 2024-01-01T00:00:00.000Z AND Id > '00Q...')
        ORDER BY SystemModstamp, Id
    """
    soql_name(object, what="object")
    required = ["Id", MODSTAMP, "IsDeleted"] if include_deleted_flag else ["Id", MODSTAMP]
    select = ", ".join(select_fields(fields, required))
    query = f"SELECT {select} FROM {object}"
    if cursor is not None:
        ts = soql_datetime(cursor.last_modified)
        query += f" WHERE {MODSTAMP} > {ts} OR ({MODSTAMP} = {ts} AND Id > {soql_quote(cursor.last_id)})"
    return query + f" ORDER BY {MODSTAMP}, Id"
