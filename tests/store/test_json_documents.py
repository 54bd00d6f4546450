"""JSON documents the store keeps: the fast copy equals the old JSON round trip, and NaN is refused by name.

``to_json_document`` used to serialise every document to canonical JSON and parse it
back. It now copies plain JSON data with a type-checking walk and keeps the round trip
for anything else; the result must be the same data, in the same key order, so the
stored text and the content hashes of snapshots do not change.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.store import InvalidStoreValue
from connector.store._types import content_hash, json_text, to_json_document
from connector.store.repositories import Audit, AuditEntryIn, Records, SnapshotIn

from . import _reference as reference
from ._helpers import T0
from .conftest import Database

PURE = settings(max_examples=400, deadline=None)  # no database: cheap, so many examples


class Tier(StrEnum):
    HOT = "Hot"


class Rank(IntEnum):
    FIRST = 1


class Label(str):
    """A str subclass, as some libraries hand out."""


surrogates = st.sampled_from(["\ud800", "a\udfffb", "\udc80"])
texts = st.one_of(st.text(max_size=6), surrogates, st.sampled_from(["Zoë", "東京", "a\u2028b"]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
    st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1), timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])),
    st.dates(),
    st.decimals(places=2, allow_nan=False, allow_infinity=False),
    st.sampled_from([Tier.HOT, Rank.FIRST, Label("x"), (1, "a"), frozenset({"b", "a"}), {3, 1, 2}]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(texts, children, max_size=5),
    ),
    max_leaves=20,
)


def _result(action: Any) -> Any:
    try:
        return ("ok", action())
    except (TypeError, ValueError) as exc:
        return ("error", type(exc).__name__)


@PURE
@given(value=documents)
def test_a_document_is_the_same_data_in_the_same_order_as_the_old_json_round_trip(value: Any) -> None:
    new = _result(lambda: to_json_document(value, "where"))
    old = _result(lambda: reference.old_to_json_document(value))
    assert (new[0], new[1] if new[0] == "error" else None) == (old[0], old[1] if old[0] == "error" else None)
    if new[0] == "ok":
        assert new[1] == old[1]
        assert json.dumps(new[1], ensure_ascii=False) == json.dumps(old[1], ensure_ascii=False)  # order and types


@PURE
@given(value=st.dictionaries(st.one_of(texts, st.integers(), st.booleans(), st.none()), st.integers(), max_size=4))
def test_keys_that_are_not_text_go_the_old_way(value: dict[Any, Any]) -> None:
    new = _result(lambda: to_json_document(value, "where"))
    old = _result(lambda: reference.old_to_json_document(value))
    assert new == old


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


@PURE
@given(value=documents)
def test_a_column_reads_back_what_the_json_module_would(value: Any) -> None:
    """orjson writes the columns; the data read back is what json wrote before, NULs as U+FFFD (``jsonb``)."""
    try:
        document = to_json_document(value, "where")
    except TypeError:
        return
    old = _without_nul(json.loads(json.dumps(document, ensure_ascii=False)))
    back = json.loads(json_text(document))
    assert back == old
    assert json.dumps(back, ensure_ascii=False) == json.dumps(old, ensure_ascii=False)  # order and types


def test_column_text_of_what_orjson_refuses_is_written_by_json() -> None:
    assert json.loads(json_text({"big": 2**70, "label": Label("x"), "s": "a\ud800"})) == {
        "big": 2**70, "label": "x", "s": "a\ufffd"}


def test_the_canonical_text_and_its_hash_did_not_change() -> None:
    document = {"b": [1, 2.5, None, True], "a": "Zoë \ud800", "c": {"z": T0, "y": date(2026, 3, 2)}}
    text = '{"a":"Zoë \ufffd","b":[1,2.5,null,true],"c":{"y":"2026-03-02","z":"2026-03-02T09:00:00+00:00"}}'
    assert content_hash(document) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert json.dumps(to_json_document(document, "where"), ensure_ascii=False, separators=(",", ":")) == text


def test_the_document_is_a_copy() -> None:
    value = {"tags": ["a"], "nested": {"n": 1}}
    document = to_json_document(value, "where")
    document["tags"].append("b")
    document["nested"]["n"] = 2
    assert value == {"tags": ["a"], "nested": {"n": 1}}


@pytest.mark.parametrize(
    ("value", "path", "message"),
    [
        ({"revenue": float("nan")}, ".revenue", "nan is not a finite number"),
        ({"scores": [1, {"total": float("inf")}]}, r".scores\[1\].total", "inf is not a finite number"),
        ([float("-inf")], r"\[0\]", "-inf is not a finite number"),
        ({"seen": datetime(2026, 1, 1)}, ".seen", "naive datetime 2026-01-01T00:00:00 refused"),
        ({"owner": object()}, ".owner", "value of type object is not JSON serialisable"),
    ],
)
def test_what_json_cannot_hold_is_refused_naming_the_field(value: Any, path: str, message: str) -> None:
    with pytest.raises(TypeError, match=rf"^records\[sf-prod/Lead/00Q1\]\.canonical{path}: {message}"):
        to_json_document(value, "records[sf-prod/Lead/00Q1].canonical")


def test_nan_in_a_subclass_or_behind_a_subclass_is_refused_too() -> None:
    with pytest.raises(TypeError, match=r"^where: Out of range float values are not JSON compliant"):
        to_json_document({"rank": Rank.FIRST, "revenue": float("nan")}, "where")


def test_the_store_refuses_a_nan_naming_the_record_and_field_and_writes_nothing(db: Database) -> None:
    with db.sessions.begin() as session:
        with pytest.raises(InvalidStoreValue, match=r"records\[sf-prod/Lead/00Q2\]\.canonical\.annual_revenue: nan"):
            Records(session).upsert_snapshots(
                "sf-prod", "Lead",
                [SnapshotIn("00Q1", "person", {"n": 1}), SnapshotIn("00Q2", "person", {"annual_revenue": float("nan")})],
                seen_at=T0,
            )
        with pytest.raises(InvalidStoreValue, match=r"audit_log\[#0 Lead/00Q1 scored\]\.detail\.total: inf"):
            Audit(session).append_many(
                [AuditEntryIn("sf-prod", "scored", object_name="Lead", crm_id="00Q1", detail={"total": float("inf")})]
            )
        assert Records(session).get("sf-prod", "Lead", "00Q1") is None
        assert Audit(session).for_record("sf-prod", "Lead", "00Q1") == []


def test_decimals_sets_and_enums_are_stored_as_before(db: Database) -> None:
    canonical = {"revenue": Decimal("1250000.50"), "tags": {"b", "a"}, "tier": Tier.HOT, "rank": Rank.FIRST}
    with db.sessions.begin() as session:
        Records(session).upsert_snapshots("sf-prod", "Lead", [SnapshotIn("00Q1", "person", canonical)], seen_at=T0)
        stored = Records(session).get("sf-prod", "Lead", "00Q1")
    assert stored is not None
    assert stored.canonical == {"rank": 1, "revenue": "1250000.50", "tags": ["a", "b"], "tier": "Hot"}
    # SQLite gives the keys back as written (sorted); PostgreSQL's jsonb in its own order (shorter keys
    # first): nothing in Relay depends on the order of a snapshot's keys.
    order = ["rank", "tags", "tier", "revenue"] if db.backend == "postgresql" else ["rank", "revenue", "tags", "tier"]
    assert list(stored.canonical) == order
