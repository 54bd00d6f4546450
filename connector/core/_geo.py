"""Country and state names to ISO codes (pure helpers on pycountry)."""

from __future__ import annotations

import re
from functools import lru_cache

import pycountry

from connector.core._cache import value_cache

# Common spellings pycountry does not know (lower-case keys, punctuation removed).
COUNTRY_ALIASES: dict[str, str] = {
    "usa": "US", "us": "US", "us of a": "US", "united states of america": "US",
    "america": "US", "the united states": "US", "estados unidos": "US",
    "uk": "GB", "u k": "GB", "great britain": "GB", "britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "northern ireland": "GB", "united kingdom": "GB",
    "deutschland": "DE", "germany": "DE", "allemagne": "DE",
    "holland": "NL", "the netherlands": "NL", "nederland": "NL",
    "espana": "ES", "españa": "ES", "italia": "IT", "france": "FR",
    "schweiz": "CH", "suisse": "CH", "svizzera": "CH", "osterreich": "AT", "österreich": "AT",
    "belgique": "BE", "belgie": "BE", "belgië": "BE", "sverige": "SE", "norge": "NO",
    "danmark": "DK", "suomi": "FI", "polska": "PL", "eire": "IE", "éire": "IE",
    "south korea": "KR", "korea": "KR", "republic of korea": "KR", "north korea": "KP",
    "russia": "RU", "turkey": "TR", "turkiye": "TR", "türkiye": "TR",
    "ivory coast": "CI", "uae": "AE", "emirates": "AE", "nippon": "JP", "nihon": "JP",
    "prc": "CN", "mainland china": "CN", "hong kong sar": "HK", "méxico": "MX",
    "brasil": "BR", "vietnam": "VN", "czechia": "CZ", "taiwan": "TW", "macau": "MO",
    "laos": "LA", "syria": "SY", "iran": "IR", "bolivia": "BO", "venezuela": "VE",
    "tanzania": "TZ", "moldova": "MD", "vatican": "VA", "burma": "MM",
}

# States/provinces are normalised to subdivision codes (without the country prefix)
# for these countries, as the data entry standard asks (seed 002: State = "CA").
STATE_COUNTRIES: frozenset[str] = frozenset({"US", "CA", "AU"})

_STATE_ALIASES: dict[str, dict[str, str]] = {
    "US": {"washington dc": "DC", "washington d c": "DC", "d c": "DC"},
    "CA": {"quebec": "QC", "québec": "QC", "newfoundland": "NL", "pei": "PE", "yukon territory": "YT"},
    "AU": {},
}


def _key(text: str) -> str:
    """Lower-case, dots/commas removed, whitespace collapsed."""
    text = re.sub(r"[.,]", " ", text.strip().lower())
    return re.sub(r"\s+", " ", text).strip()


@value_cache
def country_code(raw: str) -> str | None:
    """Return the ISO 3166 alpha-2 code for a country name/code, or ``None``."""
    text = raw.strip()
    if not text:
        return None
    key = _key(text)
    if key in COUNTRY_ALIASES:
        return COUNTRY_ALIASES[key]
    compact = key.replace(" ", "")
    if len(compact) == 2 and compact.isalpha():
        found = pycountry.countries.get(alpha_2=compact.upper())
        return found.alpha_2 if found else None
    if compact in COUNTRY_ALIASES:
        return COUNTRY_ALIASES[compact]
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        pass
    try:
        matches = pycountry.countries.search_fuzzy(text)
    except LookupError:
        return None
    # Only trust an unambiguous fuzzy match ("Korea" matches both Koreas).
    return str(matches[0].alpha_2) if len(matches) == 1 else None


@lru_cache(maxsize=16)
def _state_table(country: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for sub in pycountry.subdivisions.get(country_code=country) or []:
        short = sub.code.split("-", 1)[1]
        table[_key(short)] = short
        table[_key(sub.code)] = short
        table[_key(sub.name)] = short
    for alias, code in _STATE_ALIASES.get(country, {}).items():
        table[_key(alias)] = code
    return table


def state_code(raw: str, country: str | None) -> str | None:
    """Return the subdivision code (``CA``, ``NSW``) for a state in ``country``.

    Returns ``None`` when the country is not one of ``STATE_COUNTRIES`` or the state
    is unknown there.
    """
    if country not in STATE_COUNTRIES:
        return None
    return _state_table(country).get(_key(raw))
