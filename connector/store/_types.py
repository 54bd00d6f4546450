"""Column types and JSON helpers shared by the store's tables and repositories."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

JsonDict = dict[str, Any]

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
    """
    return scrub_text(
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    )


def json_text(value: object) -> str:
    """Serialise ``value`` for a JSON column (the engines' ``json_serializer``).

    Like :func:`json.dumps`, but lone surrogates become U+FFFD, so no JSON value can make
    the database refuse the row.
    """
    return scrub_text(json.dumps(value, ensure_ascii=False))


def to_json_document(value: Any, where: str) -> Any:
    """Return ``value`` as plain JSON data (datetimes become ISO strings, lone surrogates U+FFFD).

    Args:
        value: The data to store in a JSON column.
        where: What the value is, named in the error.

    Raises:
        TypeError: If the value cannot be represented in JSON.
    """
    try:
        return json.loads(canonical_json(value))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: {exc}") from exc


def content_hash(value: object) -> str:
    """Return the SHA-256 hex digest of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
