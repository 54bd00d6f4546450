"""The transform registry: one small pure function per direction for each transform.

``read`` turns a CRM value into a canonical value; ``write`` turns a canonical value
back into what the CRM expects (its unit's :class:`~connector.crms.ValueStyle` says how:
every value as text, as HubSpot properties travel, or with its JSON type). Both raise ``TransformError`` on a bad value;
the engine turns that into a problem for the one field, never a failed batch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from typing import Any

import phonenumbers
import pycountry

from connector.crms import ValueStyle

Options = Mapping[str, Any]


class TransformError(ValueError):
    """A value the transform cannot convert; the message says why in plain words."""


@dataclass(frozen=True)
class Transform:
    """A registered transform: how to read a CRM value and how to write it back."""

    read: Callable[[Any, Options], Any]
    write: Callable[[Any, Options, ValueStyle], Any]


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TransformError(f"expected text for {what}, got {type(value).__name__} {value!r}")
    return value


def _same(value: Any, options: Options, style: ValueStyle) -> Any:
    return value


# ----------------------------------------------------------------------------- text


def _read_strip(value: Any, options: Options) -> str:
    return _text(value, "strip").strip()


def _read_lowercase(value: Any, options: Options) -> str:
    return _text(value, "lowercase").lower()


def _read_uppercase(value: Any, options: Options) -> str:
    return _text(value, "uppercase").upper()


# ----------------------------------------------------------------------------- numbers


def _read_int(value: Any, options: Options) -> int:
    if isinstance(value, bool):
        raise TransformError(f"{value!r} is a true/false value, not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise TransformError(f"{value!r} is not a whole number")
        return int(value)
    text = _text(value, "a whole number").strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise TransformError(f"{value!r} is not a whole number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise TransformError(f"{value!r} is not a whole number")
    return int(number)


def _write_int(value: Any, options: Options, style: ValueStyle) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TransformError(f"{value!r} is not a whole number")
    return str(value) if style.text_only else value


def _read_float(value: Any, options: Options) -> float:
    if isinstance(value, bool):
        raise TransformError(f"{value!r} is a true/false value, not a number")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        try:
            number = float(_text(value, "a number").strip().replace(",", ""))
        except ValueError:
            raise TransformError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise TransformError(f"{value!r} is not a finite number")
    return number


def _write_float(value: Any, options: Options, style: ValueStyle) -> float | str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TransformError(f"{value!r} is not a finite number")
    number = float(value)
    if not style.text_only:
        return number
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def _read_bool(value: Any, options: Options) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise TransformError(f"{value!r} is not true or false")


def _write_bool(value: Any, options: Options, style: ValueStyle) -> bool | str:
    if not isinstance(value, bool):
        raise TransformError(f"{value!r} is not true or false")
    if style.text_only:
        return "true" if value else "false"
    return value


def _read_negate(value: Any, options: Options) -> bool:
    if not isinstance(value, bool):
        raise TransformError(f"negate needs a true/false value, got {value!r}; put bool before negate")
    return not value


def _write_negate(value: Any, options: Options, style: ValueStyle) -> bool:
    if not isinstance(value, bool):
        raise TransformError(f"{value!r} is not true or false")
    return not value


# ----------------------------------------------------------------------------- dates


_OFFSET_WITHOUT_COLON = re.compile(r"([+-]\d{2})(\d{2})$")
_EPOCH_MS = re.compile(r"^-?\d{10,}$")


def _from_epoch_ms(milliseconds: int) -> datetime:
    try:
        return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise TransformError(f"{milliseconds!r} is not a millisecond timestamp Relay can read") from None


def parse_datetime(value: Any) -> datetime:
    """Read a CRM datetime as an aware UTC datetime.

    Accepts ISO-8601 (``2024-01-01T00:00:00.000+0000``, ``...Z``, ``...+00:00``, a plain
    date), milliseconds since the epoch (HubSpot, as int or digit string) and datetime
    objects. A datetime without offset is taken as UTC.

    Raises:
        TransformError: the value is not a datetime.
    """
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, int) and not isinstance(value, bool):
        result = _from_epoch_ms(value)
    elif isinstance(value, str):
        text = value.strip()
        if _EPOCH_MS.match(text):
            result = _from_epoch_ms(int(text))
        else:
            text = text.replace("z", "Z")
            if text.endswith("Z"):
                text = text[:-1] + "+00:00"
            text = _OFFSET_WITHOUT_COLON.sub(r"\1:\2", text) if "T" in text else text
            try:
                result = datetime.fromisoformat(text)
            except ValueError:
                raise TransformError(f"{value!r} is not an ISO-8601 datetime or millisecond timestamp") from None
    else:
        raise TransformError(f"{value!r} is not a datetime")
    if result.tzinfo is None:
        result = result.replace(tzinfo=UTC)
    try:
        return result.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before the first representable instant
        raise TransformError(f"{value!r} is out of the range of datetimes") from None


def format_datetime(value: Any) -> str:
    """Write an aware datetime as ISO-8601 UTC with milliseconds and Z.

    Raises:
        TransformError: the value is not an aware datetime.
    """
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise TransformError(f"{value!r} is not a timezone-aware datetime")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _read_datetime(value: Any, options: Options) -> datetime:
    return parse_datetime(value)


def _write_datetime(value: Any, options: Options, style: ValueStyle) -> str:
    return format_datetime(value)


def _read_date(value: Any, options: Options) -> date:
    if isinstance(value, datetime):
        return parse_datetime(value).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise TransformError(f"{value!r} is not a real calendar date") from None
    return parse_datetime(value).date()


def _write_date(value: Any, options: Options, style: ValueStyle) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TransformError(f"{value!r} is not a timezone-aware datetime")
        return value.astimezone(UTC).date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TransformError(f"{value!r} is not a date")


# ----------------------------------------------------------------------------- places, phones


def _read_e164_phone(value: Any, options: Options) -> str:
    text = _text(value, "a phone number").strip()
    region = str(options.get("default_region", "US"))
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise TransformError(f"{value!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise TransformError(f"{value!r} is not a valid phone number (read as {region} when it has no +)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_COUNTRY_ALIASES = {
    "UK": "GB", "U.K.": "GB", "ENGLAND": "GB", "SCOTLAND": "GB", "WALES": "GB", "GREAT BRITAIN": "GB",
    "USA": "US", "U.S.": "US", "U.S.A.": "US", "UNITED STATES OF AMERICA": "US", "AMERICA": "US",
    "SOUTH KOREA": "KR", "KOREA": "KR", "RUSSIA": "RU", "VIETNAM": "VN", "HOLLAND": "NL",
}


def _read_iso_country(value: Any, options: Options) -> str:
    text = _text(value, "a country").strip()
    alias = _COUNTRY_ALIASES.get(text.upper())
    if alias:
        return alias
    try:
        country = pycountry.countries.lookup(text)
    except LookupError:
        raise TransformError(f"{value!r} is not a country Relay recognises (use ISO codes like US, GB)") from None
    return str(country.alpha_2)


@cache
def _subdivision_codes_by_name() -> dict[str, frozenset[str]]:
    index: dict[str, set[str]] = {}
    for subdivision in pycountry.subdivisions:
        suffix = str(subdivision.code).split("-", 1)[1]
        index.setdefault(str(subdivision.name).casefold(), set()).add(suffix)
    return {name: frozenset(codes) for name, codes in index.items()}


def _read_iso_state(value: Any, options: Options) -> str:
    text = _text(value, "a state").strip()
    if re.fullmatch(r"[A-Za-z]{2}-[A-Za-z0-9]{1,3}", text):
        return text.split("-", 1)[1].upper()
    if re.fullmatch(r"[A-Za-z0-9]{1,3}", text):
        return text.upper()
    codes = _subdivision_codes_by_name().get(text.casefold())
    if not codes:
        raise TransformError(f"{value!r} is not a state or province Relay recognises")
    if len(codes) > 1:
        raise TransformError(f"{value!r} names subdivisions in several countries ({', '.join(sorted(codes))})")
    return next(iter(codes))


# ----------------------------------------------------------------------------- picklists


def _read_picklist(value: Any, options: Options) -> Any:
    mapping: Mapping[Any, Any] = options["map"]
    if value in mapping:
        return mapping[value]
    if "default" in options:
        return options["default"]
    known = ", ".join(repr(k) for k in mapping)
    raise TransformError(f"{value!r} is not a picklist value in the mapping (known: {known})")


def _write_picklist(value: Any, options: Options, style: ValueStyle) -> Any:
    for crm_value, canonical in options["map"].items():
        if canonical == value:
            return crm_value
    known = ", ".join(repr(v) for v in dict.fromkeys(options["map"].values()))
    raise TransformError(f"{value!r} has no CRM picklist value in the mapping (known: {known})")


def _per_distinct_text(read: Callable[[Any, Options], Any]) -> Callable[[Any, Options], Any]:
    """``read``, answering each distinct text once: phone numbers, countries and timestamps repeat
    across a page (the same country, the same modstamp of one batch), and parsing them is most of
    reading a record. Only for pure readers of text whose answer (or refusal) is immutable."""

    @lru_cache(maxsize=65_536)
    def by_text(text: str) -> tuple[bool, Any]:
        try:
            return True, read(text, {})
        except TransformError as exc:
            return False, str(exc)

    def reader(value: Any, options: Options) -> Any:
        if options or type(value) is not str:
            return read(value, options)
        ok, answer = by_text(value)
        if not ok:
            raise TransformError(answer)
        return answer

    return reader


TRANSFORMS: dict[str, Transform] = {
    "strip": Transform(_read_strip, _same),
    "lowercase": Transform(_read_lowercase, _same),
    "uppercase": Transform(_read_uppercase, _same),
    "e164_phone": Transform(_per_distinct_text(_read_e164_phone), _same),
    "iso_country": Transform(_per_distinct_text(_read_iso_country), _same),
    "iso_state": Transform(_per_distinct_text(_read_iso_state), _same),
    "date": Transform(_per_distinct_text(_read_date), _write_date),
    "datetime": Transform(_per_distinct_text(_read_datetime), _write_datetime),
    "int": Transform(_read_int, _write_int),
    "float": Transform(_read_float, _write_float),
    "bool": Transform(_read_bool, _write_bool),
    "negate": Transform(_read_negate, _write_negate),
    "picklist": Transform(_read_picklist, _write_picklist),
}
"""Every transform a mapping file may name."""
