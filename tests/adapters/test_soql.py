"""SOQL building: string literals that can never be closed by user data, names, the incremental query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.adapters.base import Cursor
from connector.adapters.errors import ConfigurationError
from connector.crms.salesforce.soql import (
    incremental_query,
    parse_salesforce_datetime,
    soql_datetime,
    soql_name,
    soql_quote,
)
from crm_sandbox.salesforce import soql as sandbox_soql

_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def read_literal(text: str, start: int = 0) -> tuple[str, int]:
    """Read one SOQL string literal the way Salesforce does: (value, index after the closing quote)."""
    assert text[start] == "'", f"no literal at {start}: {text!r}"
    out, i = [], start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1]
            if nxt.lower() not in _UNESCAPE and nxt not in _UNESCAPE:
                raise ValueError(f"invalid escape \\{nxt}")
            out.append(_UNESCAPE.get(nxt, _UNESCAPE.get(nxt.lower(), nxt)))
            i += 2
        elif ch == "'":
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise ValueError(f"unterminated literal: {text!r}")


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_string_round_trips_and_never_closes_the_literal_early(value: str) -> None:
    literal = soql_quote(value)
    decoded, end = read_literal(literal)
    assert decoded == value
    assert end == len(literal)


@pytest.mark.parametrize(
    "attack",
    ["x' OR Name != '", "\\' OR Id != null --", "abc\\", "'; DELETE", "O'Brien", "\\\\' OR '1'='1"],
)
def test_injection_attempts_stay_inside_the_literal(attack: str) -> None:
    query = f"SELECT Id FROM Lead WHERE Email = {soql_quote(attack)} ORDER BY Id"
    start = query.index("'")
    value, end = read_literal(query, start)
    assert value == attack
    assert query[end:] == " ORDER BY Id"


def test_soql_quote_refuses_non_strings() -> None:
    with pytest.raises(TypeError, match="int"):
        soql_quote(5)  # type: ignore[arg-type]


def test_datetime_literals_are_unquoted_utc_milliseconds() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    assert soql_datetime(when) == "2024-01-02T01:04:05.678Z"
    with pytest.raises(ValueError, match="naive"):
        soql_datetime(datetime(2024, 1, 1))


def test_salesforce_datetimes_parse_to_aware_utc() -> None:
    assert parse_salesforce_datetime("2024-01-01T10:00:00.000+0000") == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert parse_salesforce_datetime("2024-01-01T10:00:00.000+0100") == datetime(2024, 1, 1, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="yesterday"):
        parse_salesforce_datetime("yesterday")


@pytest.mark.parametrize("name", ["Email", "Relay_Score__c", "Owner.Name", "Who.Email"])
def test_api_names_are_accepted(name: str) -> None:
    assert soql_name(name) == name


@pytest.mark.parametrize("name", ["", "Email, (SELECT Id FROM User)", "1Field", "Name--", "a b", "Lead.", None])
def test_anything_else_is_refused_with_its_name(name: str) -> None:
    with pytest.raises(ConfigurationError, match="not a Salesforce API name"):
        soql_name(name)


def test_full_read_orders_by_modstamp_and_id() -> None:
    query = incremental_query("Lead", ["Email", "email", "Id"], None)
    assert query == "SELECT Id, SystemModstamp, IsDeleted, Email FROM Lead ORDER BY SystemModstamp, Id"


def test_incremental_read_uses_the_compound_cursor() -> None:
    cursor = Cursor(datetime(2024, 1, 1, tzinfo=UTC), "00Q000000000001AAA")
    query = incremental_query("Lead", ["Email"], cursor)
    assert query == (
        "SELECT Id, SystemModstamp, IsDeleted, Email FROM Lead "
        "WHERE SystemModstamp > 2024-01-01T00:00:00.000Z OR "
        "(SystemModstamp = 2024-01-01T00:00:00.000Z AND Id > '00Q000000000001AAA') "
        "ORDER BY SystemModstamp, Id"
    )


def test_a_hostile_cursor_id_is_quoted() -> None:
    cursor = Cursor(datetime(2024, 1, 1, tzinfo=UTC), "x') OR (Id != '")
    query = incremental_query("Lead", [], cursor)
    start = query.index("Id > ") + len("Id > ")
    value, end = read_literal(query, start)
    assert value == "x') OR (Id != '"
    assert query[end:] == ") ORDER BY SystemModstamp, Id"


def test_objects_without_isdeleted_are_read_without_it() -> None:
    assert "IsDeleted" not in incremental_query("User", ["Email"], None, include_deleted_flag=False)


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_the_sandbox_orgs_lexer_reads_every_quoted_string_back_to_itself(value: str) -> None:
    tokens = sandbox_soql.tokenize(f"SELECT Id FROM Lead WHERE LastName = {soql_quote(value)} ORDER BY Id")
    strings = [t for t in tokens if t.kind == "STRING"]
    assert [t.value for t in strings] == [value]
    assert [t.text for t in tokens if t.kind != "STRING"][-4:-1] == ["ORDER", "BY", "Id"]


def test_the_sandbox_org_accepts_the_incremental_query() -> None:
    cursor = Cursor(datetime(2024, 1, 1, 0, 0, 0, 123000, tzinfo=UTC), "00Q5e000000000FEAQ")
    query = sandbox_soql.parse(incremental_query("Lead", ["Email", "Relay_Score__c"], cursor))
    assert [".".join(p.canonical) for p in query.fields] == ["Id", "SystemModstamp", "IsDeleted", "Email", "Relay_Score__c"]


def test_a_hostile_cursor_id_reaches_the_org_as_one_bad_id() -> None:
    cursor = Cursor(datetime(2024, 1, 1, tzinfo=UTC), "00Q' OR Id != '")
    with pytest.raises(sandbox_soql.SoqlError, match="invalid ID field: 00Q' OR Id != '"):
        sandbox_soql.parse(incremental_query("Lead", ["Email"], cursor))
