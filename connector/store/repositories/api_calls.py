"""API call counts per connection, kind of call and sync run: the API budget made visible."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from connector.store.errors import InvalidStoreValue
from connector.store.models import CONNECTION_LEN, ApiCallRow
from connector.store.repositories._common import text_value, when

KIND_LEN = 100


class ApiCalls:
    """Repository of API call counts. The caller owns the transaction.

    One row per (connection, kind, run); adding to it is a single
    ``UPDATE ... SET count = count + n``, so concurrent writers never lose a call.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        connection: str,
        kind: str,
        count: int = 1,
        *,
        run_id: int | None = None,
        at: datetime | None = None,
    ) -> None:
        """Count ``count`` API calls of ``kind`` (e.g. ``"query"``, ``"composite"``, ``"batch_update"``).

        Args:
            connection: Connection that made the calls.
            kind: Method or endpoint kind.
            count: How many calls (non-negative).
            run_id: The sync run that made them, if any.
            at: When; defaults to now.
        """
        connection = text_value(connection, "api_calls.connection", CONNECTION_LEN)
        kind = text_value(kind, f"api_calls[{connection}].kind", KIND_LEN)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidStoreValue(
                f"api_calls[{connection}/{kind}].count: expected a non-negative integer, got {count!r}"
            )
        moment = when(at, f"api_calls[{connection}/{kind}].at")
        run_matches = ApiCallRow.run_id.is_(None) if run_id is None else ApiCallRow.run_id == run_id
        result = self._session.execute(
            update(ApiCallRow)
            .where(ApiCallRow.connection == connection, ApiCallRow.kind == kind, run_matches)
            .values(count=ApiCallRow.count + count, at=moment)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            self._session.execute(
                insert(ApiCallRow).values(
                    connection=connection, kind=kind, count=count, run_id=run_id, at=moment
                )
            )

    def totals(self, connection: str, *, run_id: int | None = None) -> dict[str, int]:
        """Return calls per kind made by ``connection`` (within one run, if ``run_id`` is given)."""
        query = (
            select(ApiCallRow.kind, func.sum(ApiCallRow.count))
            .where(ApiCallRow.connection == connection)
            .group_by(ApiCallRow.kind)
            .order_by(ApiCallRow.kind)
        )
        if run_id is not None:
            query = query.where(ApiCallRow.run_id == run_id)
        return {kind: int(total) for kind, total in self._session.execute(query)}

    def total(self, connection: str, *, run_id: int | None = None) -> int:
        """Return the number of calls made by ``connection`` (within one run, if given)."""
        return sum(self.totals(connection, run_id=run_id).values())
