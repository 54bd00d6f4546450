"""Sync cursors only move forward; a full resync resets them explicitly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from connector.store import CursorMovedBackwards, InvalidStoreValue
from connector.store.repositories import Cursors, id_order_key

from .conftest import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_cursor_starts_absent_and_keeps_what_the_last_page_reached(db: Database) -> None:
    with db.sessions.begin() as session:
        cursors = Cursors(session)
        assert cursors.get("sf-prod", "Lead") is None
        cursors.advance("sf-prod", "Lead", T0, "00Q000000000001")
        cursors.advance("sf-prod", "Lead", T0 + timedelta(minutes=5), "00Q000000000009")
        cursors.advance("sf-prod", "Contact", T0, None)

    with db.sessions() as session:
        lead = Cursors(session).get("sf-prod", "Lead")
        assert [cursor.object for cursor in Cursors(session).all("sf-prod")] == ["Contact", "Lead"]
    assert lead is not None
    assert lead.position == (T0 + timedelta(minutes=5), "00Q000000000009")
    assert lead.last_modified.tzinfo is not None


def test_a_cursor_refuses_to_move_backwards(db: Database) -> None:
    with db.sessions.begin() as session:
        Cursors(session).advance("sf-prod", "Lead", T0, "00Q000000000005")

    with db.sessions.begin() as session, pytest.raises(CursorMovedBackwards) as earlier:
        Cursors(session).advance("sf-prod", "Lead", T0 - timedelta(seconds=1), "00Q000000000009")
    with db.sessions.begin() as session, pytest.raises(CursorMovedBackwards):
        Cursors(session).advance("sf-prod", "Lead", T0, "00Q000000000004")

    assert "sf-prod/Lead" in str(earlier.value) and "reset" in str(earlier.value)
    with db.sessions() as session:
        cursor = Cursors(session).get("sf-prod", "Lead")
    assert cursor is not None and cursor.position == (T0, "00Q000000000005")


def test_repeating_the_same_page_is_accepted(db: Database) -> None:
    with db.sessions.begin() as session:
        cursors = Cursors(session)
        cursors.advance("hubspot", "contacts", T0, "951")
        again = cursors.advance("hubspot", "contacts", T0, "951")
    assert again.position == (T0, "951")


def test_hubspot_numeric_ids_order_by_value_not_text(db: Database) -> None:
    assert id_order_key("10") > id_order_key("9")
    with db.sessions.begin() as session:
        cursors = Cursors(session)
        cursors.advance("hubspot", "contacts", T0, "9")
        assert cursors.advance("hubspot", "contacts", T0, "10").last_id == "10"
        with pytest.raises(CursorMovedBackwards):
            cursors.advance("hubspot", "contacts", T0, "8")


def test_the_database_refuses_a_backwards_cursor_even_through_raw_sql(db: Database) -> None:
    with db.sessions.begin() as session:
        Cursors(session).advance("sf-prod", "Lead", T0, "00Q1")
    with pytest.raises(IntegrityError, match="only move forward"), db.engine.begin() as connection:
        connection.execute(
            text("UPDATE sync_cursors SET last_modified = :earlier WHERE connection = 'sf-prod'"),
            {
                "earlier": "2020-01-01 00:00:00.000000"
                if db.backend == "sqlite"
                else T0 - timedelta(days=1)
            },
        )


def test_a_full_resync_resets_the_cursor_explicitly(db: Database) -> None:
    with db.sessions.begin() as session:
        cursors = Cursors(session)
        cursors.advance("sf-prod", "Lead", T0, "00Q1")
        cursors.advance("sf-prod", "Contact", T0, "0031")
        cursors.advance("hubspot", "contacts", T0, "1")
    with db.sessions.begin() as session:
        cursors = Cursors(session)
        assert cursors.reset("sf-prod", "Lead") == 1
        cursors.advance("sf-prod", "Lead", T0 - timedelta(days=365), None)
        assert cursors.reset("sf-prod") == 2
    with db.sessions() as session:
        cursors = Cursors(session)
        assert cursors.all("sf-prod") == []
        assert cursors.get("hubspot", "contacts") is not None


def test_times_in_other_zones_are_stored_as_the_same_instant_in_utc(db: Database) -> None:
    paris = timezone(timedelta(hours=1))
    with db.sessions.begin() as session:
        Cursors(session).advance(
            "sf-prod", "Lead", datetime(2026, 3, 2, 10, 0, tzinfo=paris), "00Q1"
        )
    with db.sessions() as session:
        cursor = Cursors(session).get("sf-prod", "Lead")
    assert cursor is not None
    assert cursor.last_modified == T0
    assert cursor.last_modified.utcoffset() == timedelta(0)


def test_naive_times_are_refused_naming_the_cursor(db: Database) -> None:
    with (
        db.sessions.begin() as session,
        pytest.raises(InvalidStoreValue, match=r"sync_cursors\[sf-prod/Lead\].last_modified"),
    ):
        Cursors(session).advance("sf-prod", "Lead", datetime(2026, 3, 2, 9, 0), "00Q1")


positions = st.tuples(
    st.integers(min_value=0, max_value=50).map(lambda minutes: T0 + timedelta(minutes=minutes)),
    st.one_of(st.none(), st.integers(min_value=1, max_value=300).map(str)),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(positions, min_size=1, max_size=12))
def test_the_stored_cursor_is_the_furthest_position_ever_accepted(
    db: Database, steps: list[tuple[datetime, str | None]]
) -> None:
    with db.sessions.begin() as session:
        cursors = Cursors(session)
        cursors.reset("prop", "contacts")
        furthest: tuple[datetime, str | None] | None = None
        for modified, last_id in steps:
            key = (modified, id_order_key(last_id))
            if furthest is not None and key < (furthest[0], id_order_key(furthest[1])):
                with pytest.raises(CursorMovedBackwards):
                    cursors.advance("prop", "contacts", modified, last_id)
            else:
                cursors.advance("prop", "contacts", modified, last_id)
                furthest = (modified, last_id)
        stored = cursors.get("prop", "contacts")
    assert stored is not None and stored.position == furthest
