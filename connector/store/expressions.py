"""SQL expressions the report and the dashboard compute in the database, on SQLite and PostgreSQL alike.

Times: seconds since 1970 of a timestamp column, differences to the millisecond (so 60 minutes is
exactly 3600 on both backends), the UTC day as text. Percentiles: the median and p90 (nearest rank)
of a column. JSON: a field of a document column as text or number, and what kind of JSON value it
holds (SQLite's ``json_type`` and PostgreSQL's ``jsonb_typeof`` name them differently).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Integer,
    Numeric,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy import text as text_clause

JsonKind = Literal["string", "number", "boolean", "true", "null"]


def epoch(conn: Connection, column: Any) -> ColumnElement[Any]:
    """Seconds since 1970 of a timestamp column, computed by the database."""
    if conn.dialect.name == "postgresql":
        return func.extract("epoch", column)
    return (func.julianday(column) - 2440587.5) * 86400.0


def millis(conn: Connection, seconds: ColumnElement[Any]) -> ColumnElement[Any]:
    """Seconds rounded to the millisecond (PostgreSQL rounds numerics to a number of places, not doubles)."""
    if conn.dialect.name == "postgresql":
        return func.round(cast(seconds, Numeric), 3)
    return func.round(seconds, 3)


def seconds_between(conn: Connection, later: Any, earlier: Any) -> ColumnElement[Any]:
    """``later - earlier`` in seconds, to the millisecond."""
    return millis(conn, epoch(conn, later) - epoch(conn, earlier))


def age(conn: Connection, now: datetime, column: Any) -> ColumnElement[Any]:
    """``now - column`` in seconds, to the millisecond."""
    return millis(conn, literal(now.timestamp()) - epoch(conn, column))


def utc_day(conn: Connection, column: Any) -> ColumnElement[Any]:
    """The UTC day of a timestamp column as ``YYYY-MM-DD`` text."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)


def percentiles(conn: Connection, value: ColumnElement[Any], where: Sequence[ColumnElement[bool]],
                table: Any) -> tuple[int, float | None, float | None]:
    """How many values, their median (the mean of the two middle ones for an even count) and p90
    (nearest rank: the ceil(0.9 n)-th smallest), computed by the database.

    PostgreSQL: ``percentile_cont(0.5)`` and ``percentile_disc(0.9)``; SQLite: the count, then
    the rows at those ranks (``ORDER BY ... LIMIT ... OFFSET``).
    """
    if conn.dialect.name == "postgresql":
        row = conn.execute(select(func.count(), func.percentile_cont(0.5).within_group(value),
                                  func.percentile_disc(0.9).within_group(value))
                           .select_from(table).where(*where)).one()
        n = int(row[0] or 0)
        return n, (float(row[1]) if row[1] is not None else None), (float(row[2]) if row[2] is not None else None)
    n = int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar() or 0)
    if not n:
        return 0, None, None
    ordered = select(value.label("v")).select_from(table).where(*where).order_by(value)
    middle = [float(v) for v in conn.execute(ordered.limit(1 if n % 2 else 2).offset((n - 1) // 2)).scalars()]
    rank = math.ceil(0.9 * n) - 1
    p90 = conn.execute(ordered.limit(1).offset(rank)).scalar()
    return n, sum(middle) / len(middle), float(p90) if p90 is not None else None


# --------------------------------------------------------------------------- inside a JSON column

_SQLITE_KINDS: dict[str, tuple[str, ...]] = {
    "string": ("text",), "number": ("integer", "real"), "boolean": ("true", "false"), "true": ("true",),
    "null": ("null",)}
_WHITESPACE = " \t\n\r\f\v"
"""What :meth:`str.strip` removes that matters in CRM values (``trim`` alone removes only spaces)."""


class JsonFields:
    """Fields of a JSON document column, read in SQL on either backend: as text, as a number, their kind.

    On SQLite every field read parses the whole document again (about 7 µs for a 1 KB snapshot);
    :meth:`packed` reads the fields a query needs in one parse (``json_extract`` of several paths: a
    small JSON array, in a materialised CTE), and the fields are then read from that array. On
    PostgreSQL the column is ``jsonb`` (parsed once when written) and is read directly.
    """

    def __init__(self, conn: Connection, document: Any, keys: Sequence[str] | None = None) -> None:
        """``keys``: the document is a :meth:`pack` of these keys (SQLite), else the document itself."""
        self.postgresql = conn.dialect.name == "postgresql"
        self.document = document
        self.index = {key: i for i, key in enumerate(keys)} if keys is not None and not self.postgresql else None

    @staticmethod
    def pack(conn: Connection, document: Any, keys: Sequence[str]) -> ColumnElement[Any]:
        """The fields ``keys`` of ``document`` in one read (SQLite: a JSON array; PostgreSQL: the document)."""
        if conn.dialect.name == "postgresql":
            return document
        paths = [f'$."{key}"' for key in keys]
        return func.json_extract(document, *(paths if len(paths) > 1 else [*paths, *paths]))

    def _path(self, key: str) -> str:
        return f"$[{self.index[key]}]" if self.index is not None else f'$."{key}"'

    def text(self, key: str) -> ColumnElement[Any]:
        """The field as text (NULL when it is missing or JSON null; a number as its digits)."""
        if self.postgresql:
            return self.document[key].as_string()
        return func.json_extract(self.document, self._path(key))

    def number(self, key: str) -> ColumnElement[Any]:
        """The field as a number; use it only where :meth:`is_` says ``number``."""
        if self.postgresql:
            return cast(self.document[key].as_string(), Numeric)
        return cast(func.json_extract(self.document, self._path(key)), Float)

    def is_(self, key: str, kind: JsonKind) -> ColumnElement[bool]:
        """Whether the field holds a JSON value of ``kind`` (``true``: the value true itself)."""
        if self.postgresql:
            if kind == "true":
                return and_(func.jsonb_typeof(self.document[key]) == "boolean",
                            self.document[key].as_string() == "true")
            return func.jsonb_typeof(self.document[key]) == kind
        return func.json_type(self.document, self._path(key)).in_(_SQLITE_KINDS[kind])

    def kind(self, key: str) -> ColumnElement[Any]:
        """``string``, ``number``, ``boolean``, ``null``, ``object`` or ``array`` (PostgreSQL's names; SQLite's
        translated); NULL when the field is missing."""
        if self.postgresql:
            return func.jsonb_typeof(self.document[key])
        kind = func.json_type(self.document, self._path(key))
        return case((kind == "text", "string"), (kind.in_(("integer", "real")), "number"),
                    (kind.in_(("true", "false")), "boolean"), else_=kind)


def stripped(conn: Connection, text: ColumnElement[Any]) -> ColumnElement[Any]:
    """``text`` without leading and trailing whitespace, as :meth:`str.strip` has it for CRM values."""
    if conn.dialect.name == "postgresql":
        return func.btrim(text, _WHITESPACE)
    return func.trim(text, _WHITESPACE)


def iso_date_prefix(conn: Connection, text: ColumnElement[Any]) -> ColumnElement[bool]:
    """Whether ``text`` starts with a valid ISO date (``YYYY-MM-DD``, a day its month has) that ends it or
    is followed by ``T`` or a space. Whatever follows is not checked."""
    head = func.substr(text, 1, 10)
    if conn.dialect.name == "postgresql":
        shaped = head.regexp_match("^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
        month_end = func.make_date(cast(func.substr(head, 1, 4), Integer), cast(func.substr(head, 6, 2), Integer), 1) \
            + text_clause("interval '1 month - 1 day'")
        valid: ColumnElement[bool] = case(
            (shaped, cast(func.substr(head, 9, 2), Integer) <= func.extract("day", month_end)), else_=False)
    else:  # a modifier makes SQLite normalise the date: 2026-02-30 becomes 2026-03-02
        valid = and_(head.op("GLOB")("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"), func.date(head, "+0 days") == head)
    return and_(valid, or_(func.length(text) == 10, func.substr(text, 11, 1).in_(("T", " "))))


__all__ = ["JsonFields", "JsonKind", "age", "epoch", "iso_date_prefix", "millis", "percentiles",
           "seconds_between", "stripped", "utc_day"]
