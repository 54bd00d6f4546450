"""Column types and JSON helpers shared by the store's tables and repositories."""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

JsonDict = dict[str, Any]

QueriedJson = JSON().with_variant(JSONB(), "postgresql")
"""A JSON column the store reads *inside* (the report's and the dashboard's fields of a snapshot or an
audit entry): ``jsonb`` on PostgreSQL, parsed once when written, not again for every field read (the
funnel's six fields of 62,500 snapshots: 3.2 s from ``json``, 0.15 s from ``jsonb``). ``jsonb`` has no
NUL character: :func:`json_text` writes U+FFFD instead, on every backend."""

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT_CHARACTER = "\ufffd"


def scrub_text(value: str) -> str:
    """Return ``value`` with every lone surrogate replaced by U+FFFD.

    A lone surrogate (e.g. ``"\\ud800"``, what a CRM's broken JSON escape decodes to)
    is not valid Unicode: it cannot be encoded as UTF-8, so hashing it or handing it to
    SQLite or PostgreSQL would raise. Every text the store writes or hashes goes through
    this, so a value is stored, hashed and compared the same way everywhere.

    Args:
        value: Any text.

    Returns:
        The same text when it is valid Unicode (the common case, no copy), else the
        text with each surrogate code point replaced by U+FFFD.
    """
    if value.isascii() or _SURROGATE.search(value) is None:
        return value
    return _SURROGATE.sub(REPLACEMENT_CHARACTER, value)


class NaiveDatetimeError(ValueError):
    """A naive datetime reached the store, which keeps only aware UTC timestamps."""


def require_aware(value: datetime, where: str) -> datetime:
    """Return ``value`` converted to UTC, refusing naive datetimes.

    Args:
        value: The datetime to check.
        where: What the value is (e.g. ``"sync_cursors.last_modified"``), named in the error.

    Returns:
        The same instant in UTC.

    Raises:
        NaiveDatetimeError: If ``value`` has no timezone.
        TypeError: If ``value`` is not a datetime.
    """
    if not isinstance(value, datetime):
        raise TypeError(
            f"{where}: expected an aware datetime, got {type(value).__name__} {value!r}"
        )
    if value.tzinfo is UTC:  # the common case: already UTC, nothing to convert
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(
            f"{where}: naive datetime {value.isoformat()} refused; pass an aware datetime (UTC)"
        )
    return value.astimezone(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as an aware UTC datetime.

    PostgreSQL keeps it as ``timestamptz``. SQLite has no time zones, so the value is
    converted to UTC and stored without offset (the fixed-width text SQLAlchemy writes,
    which sorts in time order), then read back with ``tzinfo=UTC``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC before it is written; refuse naive ones."""
        if value is None:
            return None
        utc = require_aware(value, "timestamp column")
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)
        return utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return the stored value as an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return require_aware(value, "JSON value").isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"value of type {type(value).__name__} is not JSON serialisable: {value!r}")


# Built once: json.dumps with any non-default option builds a new encoder on every call.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
)
_PLAIN = json.JSONEncoder(ensure_ascii=False)


def canonical_json(value: object) -> str:
    """Serialise ``value`` to canonical JSON (sorted keys, no spaces, datetimes as ISO UTC).

    Lone surrogates (invalid Unicode) in keys or strings become U+FFFD (see
    :func:`scrub_text`), so the text can always be encoded as UTF-8.

    Args:
        value: A JSON-like structure; datetimes must be aware.

    Returns:
        The canonical JSON text.

    Raises:
        TypeError: If a value cannot be represented in JSON.
        ValueError: If a number is NaN or infinite (JSON has neither), or a
            datetime is naive.
    """
    return scrub_text(_CANONICAL.encode(value))


_ORJSON_EXACT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
"""What orjson would write differently from :mod:`json` (datetimes, subclasses, dataclasses) it refuses instead."""


def json_text(value: object) -> str:
    """Serialise ``value`` for a JSON column (the engines' ``json_serializer``).

    Like :func:`json.dumps` (without its spaces), but lone surrogates and NUL characters become
    U+FFFD, so no JSON value can make the database refuse the row (PostgreSQL's ``jsonb`` has no NUL). Plain JSON data is written by orjson
    (five times faster than :mod:`json` on the store's documents); what orjson
    refuses (a lone surrogate, an integer beyond 64 bits, a subclass, a datetime) takes
    :mod:`json`. The repositories hand only documents checked by :func:`to_json_document`,
    which refuses NaN and infinity (orjson would write ``null``).
    """
    try:
        text = orjson.dumps(value, option=_ORJSON_EXACT).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        text = scrub_text(_PLAIN.encode(value))
    return _NUL_ESCAPE.sub(_NUL_REPLACED, text) if _NUL_TEXT in text else text


_NUL_TEXT = "\\u0000"
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
"""``\\u0000`` in JSON text that escapes a NUL: preceded by an even run of backslashes (an odd run
means the backslash itself is escaped, and ``u0000`` is plain text)."""
_NUL_REPLACED = r"\1\\ufffd"


class _Fallback(Exception):
    """The value holds something only the :mod:`json` module path reproduces exactly."""


class _Refused(Exception):
    """A value JSON cannot hold; ``path`` is filled in while the recursion unwinds (innermost first)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []


_isfinite = math.isfinite
_LONGEST_INT_BITS = 14_000
"""Beyond about 4,300 digits Python refuses to turn an int into text: let the json module say so."""


def _clean_text(value: str) -> str:
    """``value`` if it is valid Unicode; a lone surrogate sends the whole value to the slow path."""
    if value.isascii() or _SURROGATE.search(value) is None:
        return value
    raise _Fallback


def _plain(value: Any) -> Any:
    """A fresh copy of ``value`` as :func:`json.loads` of its canonical JSON would return it.

    Handles what the store is given in practice: exact ``dict`` (string keys, returned in
    sorted order as the canonical text has them), ``list``, ``tuple``, ``str``, ``int``,
    ``bool``, ``float``, ``None``, plus aware datetimes, dates, decimals and sets (as
    :func:`_json_default` turns them into JSON). Anything else (a subclass such as an
    ``IntEnum``, a non-string key, a lone surrogate) raises :class:`_Fallback`, and the
    caller takes the exact ``json`` round trip instead. The scalars of a dict or list are
    handled in its loop, without a call each: they are most of a document.

    Raises:
        _Fallback: The value needs the slow path.
        _Refused: A number is NaN or infinite, a datetime is naive, or a type has no JSON
            form; ``path`` names where.
    """
    kind = type(value)
    if kind is dict:
        copy: dict[str, Any] = {}
        try:
            keys = sorted(value)
        except TypeError:  # keys of mixed types: json.dumps(sort_keys=True) decides what happens
            raise _Fallback from None
        for key in keys:
            if type(key) is not str or not (key.isascii() or _SURROGATE.search(key) is None):
                raise _Fallback
            item = value[key]
            kind = type(item)
            if kind is str:
                if not (item.isascii() or _SURROGATE.search(item) is None):
                    raise _Fallback
                copy[key] = item
            elif (item is None or kind is bool or (kind is int and item.bit_length() < _LONGEST_INT_BITS)
                  or (kind is float and _isfinite(item))):
                copy[key] = item
            else:
                try:
                    copy[key] = _plain(item)
                except _Refused as exc:
                    exc.path.append(f".{key}")
                    raise
        return copy
    if kind is list or kind is tuple:
        items = []
        for index, item in enumerate(value):
            kind = type(item)
            if kind is str:
                if not (item.isascii() or _SURROGATE.search(item) is None):
                    raise _Fallback
                items.append(item)
            elif (item is None or kind is bool or (kind is int and item.bit_length() < _LONGEST_INT_BITS)
                  or (kind is float and _isfinite(item))):
                items.append(item)
            else:
                try:
                    items.append(_plain(item))
                except _Refused as exc:
                    exc.path.append(f"[{index}]")
                    raise
        return items
    if kind is str:
        return _clean_text(value)
    if value is None or kind is bool:
        return value
    if kind is int:
        if value.bit_length() < _LONGEST_INT_BITS:
            return value
        raise _Fallback
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Refused(f"{value!r} is not a finite number; JSON has no NaN or infinity")
        if kind is float:
            return value
        raise _Fallback
    if isinstance(value, str | int | dict | list | tuple):  # subclasses: json encodes them its own way
        raise _Fallback
    if isinstance(value, datetime) and (value.tzinfo is None or value.utcoffset() is None):
        raise _Refused(f"naive datetime {value.isoformat()} refused; pass an aware datetime (UTC)")
    try:
        converted = _json_default(value)
    except (TypeError, ValueError) as exc:
        raise _Refused(str(exc)) from None
    return _plain(converted)


def _round_trip(value: Any) -> Any:
    """The exact, slow path: ``json.loads`` of the canonical JSON text."""
    return json.loads(canonical_json(value))


def to_json_document(value: Any, where: str) -> Any:
    """Return ``value`` as plain JSON data (datetimes become ISO strings, lone surrogates U+FFFD).

    The result is a fresh structure equal to ``json.loads(canonical_json(value))``: dict
    keys in sorted order, tuples and sets as lists, aware datetimes, dates and decimals as
    strings. Plain JSON-ready data (the common case) is copied by a type-checking walk
    instead of being serialised and parsed again; anything the walk does not reproduce
    exactly (a subclass of a JSON type, a non-string key, a lone surrogate) takes the
    ``json`` round trip.

    Args:
        value: The data to store in a JSON column.
        where: What the value is, named in the error.

    Raises:
        TypeError: If the value cannot be represented in JSON (an unsupported type, a
            naive datetime, NaN or infinity); the message names ``where`` and the path
            inside the value, e.g. ``records[sf-prod/Lead/00Q1].canonical.revenue``.
    """
    try:
        return _plain(value)
    except _Fallback:
        pass
    except _Refused as exc:
        raise TypeError(f"{where}{''.join(reversed(exc.path))}: {exc.message}") from None
    except RecursionError:  # a structure that contains itself: the json module names it
        pass
    try:
        return _round_trip(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: {exc}") from exc


def content_hash(value: object) -> str:
    """Return the SHA-256 hex digest of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
