"""Round-robin positions: where each group's rotation stands, saved with the page's decisions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.store.models import RoundRobinRow
from connector.store.repositories._common import (
    is_postgresql,
    json_object,
    text_value,
    upsert,
    when,
)

GROUP_KEY_LEN = 200


class RoundRobin:
    """Repository of round-robin positions. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def load(
        self, group_keys: Iterable[str] | None = None, *, for_update: bool = False
    ) -> dict[str, dict[str, Any]]:
        """Return the saved state of each round-robin group.

        Args:
            group_keys: Only these groups; ``None`` for all. Groups never saved are absent.
            for_update: Lock the rows (PostgreSQL) so concurrent routers take turns;
                SQLite transactions are serialised anyway.

        Returns:
            Group key → state (the JSON the routing stage saved).
        """
        query = select(RoundRobinRow)
        if group_keys is not None:
            query = query.where(RoundRobinRow.group_key.in_(list(group_keys)))
        if for_update and is_postgresql(self._session):
            query = query.with_for_update()
        rows = self._session.scalars(
            query.order_by(RoundRobinRow.group_key).execution_options(populate_existing=True)
        )
        return {row.group_key: dict(row.state) for row in rows}

    def save(self, states: Mapping[str, Mapping[str, Any]], *, now: datetime | None = None) -> None:
        """Save the state of each group in ``states`` (insert or replace)."""
        at = when(now, "round_robin_positions.updated_at")
        for group_key, state in states.items():
            key = text_value(group_key, "round_robin_positions.group_key", GROUP_KEY_LEN)
            upsert(
                self._session,
                RoundRobinRow,
                {
                    "group_key": key,
                    "state": json_object(state, f"round_robin_positions[{key}].state"),
                    "updated_at": at,
                },
                conflict_columns=["group_key"],
                update_columns=["state", "updated_at"],
            )
