"""Phone numbers to E.164, exactly as ``phonenumbers`` reads them, parsed once per number (pure helpers).

``phonenumbers.parse`` is the most expensive step of hygiene (about 25 us a number). A
number written with ASCII digits, spaces, dots, dashes and parentheses only (and a leading
``+``) is read by ``phonenumbers`` as its digits alone (:func:`digits_key`), so it is
parsed once per digits and region, however it was typed; anything else goes to
``phonenumbers.parse`` unchanged (:func:`parse_phone`). ``tests/core/test_hygiene.py``
checks with hypothesis that the result is ``phonenumbers``' own for every input.

Re-creating the steps of ``parse`` from the library's private functions was tried and
dropped: hypothesis found a number it read differently (``+006903000`` in GB).
"""

from __future__ import annotations

import re

import phonenumbers

from connector.core._cache import value_cache

_PLAIN_PHONE_RE = re.compile(r"\+?[0-9 ().\-]*")
_NOT_DIGIT_RE = re.compile(r"[^0-9]")
_PHONE_MAX_INPUT = 250  # phonenumbers refuses longer input before it looks at it


def parse_phone(raw: str, country: str | None) -> str | None:
    """``raw`` in E.164 as ``phonenumbers`` parses, validates and formats it, or ``None``."""
    try:
        number = phonenumbers.parse(raw, country if country else None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def digits_key(raw: str) -> str | None:
    """``raw`` as its digits (``+`` kept in front), when ``phonenumbers`` reads it so; else ``None``.

    For ``raw`` made only of a leading ``+``, ASCII digits and the punctuation `` ().-``,
    with at least 3 digits and at most 250 characters, ``phonenumbers.parse`` gives the
    same number as for the digits alone: the text is a viable number either way (3
    digits or more, each after any run of that punctuation); the number starts where the
    first ``+`` or digit is, so with a ``+`` exactly when ``raw`` does; no extension,
    ``phone-context``, ``isub`` or second number can be found in it (they need letters,
    ``#``, ``,``, ``;``, ``/`` or ``~``); and everything after the ``+`` is reduced to
    its digits before it is read.
    """
    if len(raw) > _PHONE_MAX_INPUT or not _PLAIN_PHONE_RE.fullmatch(raw):
        return None
    digits = _NOT_DIGIT_RE.sub("", raw)
    if len(digits) < 3:
        return None
    return "+" + digits if raw[:1] == "+" else digits


def normalise_phone(raw: str, country: str | None) -> str | None:
    """Return ``raw`` in E.164 (``+14155551234``), or ``None`` when it is not valid.

    Exactly what :func:`parse_phone` (``phonenumbers``) says, for every input.

    Args:
        raw: The phone number as typed.
        country: ISO alpha-2 country used as the region for national numbers.
    """
    key = digits_key(raw)
    if key is None:
        return parse_phone(raw, country)
    return _parsed_digits(key, country)


@value_cache
def _parsed_digits(digits: str, country: str | None) -> str | None:
    """:func:`parse_phone` of a :func:`digits_key`, once per digits and region."""
    return parse_phone(digits, country)
