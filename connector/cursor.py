"""A position in an object's change stream, and the one rule that orders CRM ids.

Shared by the adapters (which read from a position) and the store (which keeps it and
refuses to move it backwards): both must agree on which of two positions is further, or a
checkpoint could be refused, or worse accepted, wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def id_order_key(crm_id: str | None) -> tuple[int, int, str]:
    """Order CRM ids the way the CRMs page them: numeric ids (HubSpot) by value, others as text.

    ``None`` and ``""`` sort first (no id read yet at that timestamp: the position before every
    record of it).

    Example:
        >>> sorted(["10", "9", "011"], key=id_order_key)
        ['9', '10', '011']
    """
    if not crm_id:
        return (0, 0, "")
    if crm_id.isascii() and crm_id.isdigit():  # '²'.isdigit() is True, and int('²') fails
        return (1, int(crm_id), crm_id)
    return (2, 0, crm_id)


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in an object's change stream: (last-modified timestamp, record id).

    The pair, not the timestamp alone, because many records can share a
    timestamp (one Salesforce composite call stamps all its rows alike). Cursors
    compare by timestamp, then id by :func:`id_order_key` (numerically for numeric ids),
    the rule the store also uses, so "only moves forward" is ``new >= old``.

    Attributes:
        last_modified: Aware UTC datetime (naive datetimes are refused).
        last_id: The CRM id of the last record at that timestamp.
    """

    last_modified: datetime
    last_id: str = field(compare=False)
    id_order: tuple[int, int, str] = field(init=False, repr=False, compare=True)
    """How ids compare: :func:`id_order_key`."""

    def __post_init__(self) -> None:
        if not isinstance(self.last_modified, datetime):
            raise TypeError(f"Cursor.last_modified must be a datetime, got {self.last_modified!r}")
        if self.last_modified.tzinfo is None or self.last_modified.utcoffset() is None:
            raise ValueError(f"Cursor.last_modified must be timezone-aware (UTC), got naive {self.last_modified!r}")
        if not isinstance(self.last_id, str):
            raise TypeError(f"Cursor.last_id must be a string, got {self.last_id!r}")
        object.__setattr__(self, "last_modified", self.last_modified.astimezone(UTC))
        object.__setattr__(self, "id_order", id_order_key(self.last_id))

    def to_json(self) -> dict[str, str]:
        """The cursor as JSON for a checkpoint: ``{"last_modified": ISO-8601, "last_id": ...}``."""
        return {"last_modified": self.last_modified.isoformat(), "last_id": self.last_id}

    @classmethod
    def from_json(cls, data: Any) -> Cursor:
        """Read a cursor written by :meth:`to_json`; raises ``ValueError`` naming what is wrong."""
        if not isinstance(data, dict) or "last_modified" not in data or "last_id" not in data:
            raise ValueError(f"a cursor is {{'last_modified': ISO-8601, 'last_id': str}}, got {data!r}")
        try:
            when = datetime.fromisoformat(str(data["last_modified"]).replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"cursor last_modified is not an ISO-8601 datetime: {data['last_modified']!r}") from exc
        return cls(when, str(data["last_id"]))

    def __str__(self) -> str:
        return f"({self.last_modified.isoformat()}, {self.last_id})"
