"""The transform registry: CRM strings parsed, values written back, round trips exact."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import phonenumbers
import pycountry
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.config.mappings import SIMPLE_TRANSFORMS
from connector.crms import crm_unit
from connector.mapping.transforms import TRANSFORMS, TransformError, parse_datetime

CRMS = ("salesforce", "hubspot")
PICKLIST = {"map": {"HIGH": "High", "MEDIUM": "Normal", "LOW": "Low"}}


def read(name: str, value: Any, options: dict[str, Any] | None = None) -> Any:
    return TRANSFORMS[name].read(value, options or {})


def write(name: str, value: Any, crm: str, options: dict[str, Any] | None = None) -> Any:
    return TRANSFORMS[name].write(value, options or {}, crm_unit(crm).values)


def round_trip(name: str, value: Any, crm: str, options: dict[str, Any] | None = None) -> Any:
    return read(name, write(name, value, crm, options), options)


def test_every_transform_a_mapping_may_name_is_registered() -> None:
    assert set(TRANSFORMS) == {*SIMPLE_TRANSFORMS, "picklist"}


# --------------------------------------------------------------------- HubSpot sends strings


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("int", "12", 12),
        ("int", " 12 ", 12),
        ("int", "12.0", 12),
        ("int", 12.0, 12),  # Salesforce number custom fields come back as 12.0
        ("float", "1000000", 1_000_000.0),
        ("float", "1,250.5", 1250.5),
        ("bool", "true", True),
        ("bool", "false", False),
        ("bool", "TRUE", True),
        ("bool", True, True),
        ("datetime", "1704067200000", datetime(2024, 1, 1, tzinfo=UTC)),
        ("datetime", 1704067200123, datetime(2024, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)),
        ("datetime", "2024-01-01T00:00:00.000Z", datetime(2024, 1, 1, tzinfo=UTC)),
        ("datetime", "2024-01-01T00:00:00.000+0000", datetime(2024, 1, 1, tzinfo=UTC)),
        ("datetime", "2024-01-01T02:00:00+02:00", datetime(2024, 1, 1, tzinfo=UTC)),
        ("datetime", "2024-03-05T10:11:12Z", datetime(2024, 3, 5, 10, 11, 12, tzinfo=UTC)),
        ("date", "2024-02-29", date(2024, 2, 29)),
        ("date", "1709164800000", date(2024, 2, 29)),
        ("iso_country", "United States", "US"),
        ("iso_country", "deu", "DE"),
        ("iso_country", "UK", "GB"),
        ("iso_country", "gb", "GB"),
        ("iso_state", "California", "CA"),
        ("iso_state", "US-NY", "NY"),
        ("iso_state", "on", "ON"),
        ("e164_phone", "(415) 555-2671", "+14155552671"),
        ("e164_phone", "+44 20 7946 0958", "+442079460958"),
        ("lowercase", "Dana.Whitfield@Northwind.Example", "dana.whitfield@northwind.example"),
        ("strip", "  Globex  ", "Globex"),
    ],
)
def test_reading_crm_values(name: str, raw: Any, expected: Any) -> None:
    assert read(name, raw) == expected


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("int", "lots", "'lots' is not a whole number"),
        ("int", "12.5", "'12.5' is not a whole number"),
        ("int", True, "True is a true/false value, not a whole number"),
        ("float", "n/a", "'n/a' is not a number"),
        ("float", "nan", "'nan' is not a finite number"),
        ("bool", "maybe", "'maybe' is not true or false"),
        ("datetime", "yesterday", "'yesterday' is not an ISO-8601 datetime or millisecond timestamp"),
        ("date", "2023-02-29", "'2023-02-29' is not a real calendar date"),
        ("iso_country", "Atlantis", "'Atlantis' is not a country Relay recognises"),
        ("iso_state", "Nowhere Province", "'Nowhere Province' is not a state or province Relay recognises"),
        ("e164_phone", "555", "'555' is not a valid phone number"),
        ("lowercase", 42, "expected text for lowercase, got int 42"),
    ],
)
def test_bad_values_raise_a_clear_transform_error(name: str, raw: Any, message: str) -> None:
    with pytest.raises(TransformError) as caught:
        read(name, raw)
    assert str(caught.value).startswith(message)


def test_picklist_reads_with_default_and_rejects_unknown_without() -> None:
    assert read("picklist", "HIGH", PICKLIST) == "High"
    assert read("picklist", "URGENT", {**PICKLIST, "default": "Normal"}) == "Normal"
    with pytest.raises(TransformError, match=r"'URGENT' is not a picklist value in the mapping \(known: 'HIGH'"):
        read("picklist", "URGENT", PICKLIST)
    with pytest.raises(TransformError, match="'Critical' has no CRM picklist value"):
        write("picklist", "Critical", "hubspot", PICKLIST)


# --------------------------------------------------------------------- writing per CRM


def test_hubspot_gets_strings_and_salesforce_json_types() -> None:
    due = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert write("int", 85, "hubspot") == "85"
    assert write("int", 85, "salesforce") == 85
    assert write("float", 1_000_000.0, "hubspot") == "1000000"
    assert write("float", 12.5, "salesforce") == 12.5
    assert write("bool", False, "hubspot") == "false"
    assert write("bool", False, "salesforce") is False
    assert write("datetime", due, "hubspot") == "2024-05-06T05:08:09.123Z"
    assert write("datetime", due, "salesforce") == "2024-05-06T05:08:09.123Z"
    assert write("date", date(2024, 5, 6), "salesforce") == "2024-05-06"
    assert write("date", datetime(2024, 5, 6, 23, 30, tzinfo=timezone(timedelta(hours=-5))), "salesforce") == "2024-05-07"


def test_naive_datetimes_are_refused_on_write() -> None:
    with pytest.raises(TransformError, match="not a timezone-aware datetime"):
        write("datetime", datetime(2024, 1, 1), "salesforce")


# --------------------------------------------------------------------- round trips

aware_ms_datetimes = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
words = st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(value=st.integers(min_value=-(2**53), max_value=2**53), crm=st.sampled_from(CRMS))
def test_int_round_trip(value: int, crm: str) -> None:
    assert round_trip("int", value, crm) == value


@settings(max_examples=150, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False), crm=st.sampled_from(CRMS))
def test_float_round_trip(value: float, crm: str) -> None:
    assert round_trip("float", value, crm) == value


@settings(max_examples=20, deadline=None)
@given(value=st.booleans(), crm=st.sampled_from(CRMS))
def test_bool_and_negate_round_trip(value: bool, crm: str) -> None:
    assert round_trip("bool", value, crm) is value
    assert round_trip("negate", value, crm) is value


@settings(max_examples=150, deadline=None)
@given(value=aware_ms_datetimes, crm=st.sampled_from(CRMS))
def test_datetime_round_trip(value: datetime, crm: str) -> None:
    assert round_trip("datetime", value, crm) == value


@settings(max_examples=100, deadline=None)
@given(value=st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)), crm=st.sampled_from(CRMS))
def test_date_round_trip(value: date, crm: str) -> None:
    assert round_trip("date", value, crm) == value


@settings(max_examples=100, deadline=None)
@given(value=words, crm=st.sampled_from(CRMS))
def test_text_transforms_round_trip_their_canonical_form(value: str, crm: str) -> None:
    stripped, lowered, uppered = value.strip(), value.lower(), value.upper()
    assert round_trip("strip", stripped, crm) == stripped
    assert round_trip("lowercase", lowered, crm) == lowered
    assert round_trip("uppercase", uppered, crm) == uppered


@settings(max_examples=100, deadline=None)
@given(country=st.sampled_from([c.alpha_2 for c in pycountry.countries]), crm=st.sampled_from(CRMS))
def test_iso_country_round_trip(country: str, crm: str) -> None:
    assert round_trip("iso_country", country, crm) == country


@settings(max_examples=100, deadline=None)
@given(code=st.sampled_from(sorted({str(s.code).split("-", 1)[1] for s in pycountry.subdivisions})),
       crm=st.sampled_from(CRMS))
def test_iso_state_round_trip(code: str, crm: str) -> None:
    assert round_trip("iso_state", code, crm) == code


@settings(max_examples=100, deadline=None)
@given(region=st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)), crm=st.sampled_from(CRMS))
def test_e164_phone_round_trip(region: str, crm: str) -> None:
    example = phonenumbers.example_number(region)
    if example is None:
        return
    canonical = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert round_trip("e164_phone", canonical, crm) == canonical


@settings(max_examples=50, deadline=None)
@given(value=st.sampled_from(["High", "Normal", "Low"]), crm=st.sampled_from(CRMS))
def test_picklist_round_trip(value: str, crm: str) -> None:
    assert round_trip("picklist", value, crm, PICKLIST) == value


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00", "not-a-date"])
def test_an_unreadable_or_out_of_range_timestamp_is_a_transform_error(stamp: str) -> None:
    with pytest.raises(TransformError):
        parse_datetime(stamp)
