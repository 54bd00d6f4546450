"""Where people and companies are: countries, their many spellings, states, cities, phones.

Phone numbers stay in ranges reserved for fiction where a country has one
(US 555-01xx, UK 020 7946 0xxx, Australia 0491 570 xxx, France 01 99 00 xx xx).
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass


@dataclass(frozen=True)
class Country:
    """A country the seed draws people from.

    Attributes:
        code: ISO 3166 alpha-2 code, the clean form.
        weight: relative share of people.
        aliases: other spellings seen in CRMs (names, codes, lowercase, local names).
        cities: (city, state code or "") pairs.
        states: state code -> spellings other than the code.
    """

    code: str
    weight: int
    aliases: tuple[str, ...]
    cities: tuple[tuple[str, str], ...]
    states: dict[str, tuple[str, ...]]


COUNTRIES: tuple[Country, ...] = (
    Country("US", 560, ("United States", "USA", "U.S.", "us", "United States of America", "U.S.A.", "usa"),
            (("San Francisco", "CA"), ("Los Angeles", "CA"), ("San Diego", "CA"), ("New York", "NY"),
             ("Brooklyn", "NY"), ("Austin", "TX"), ("Dallas", "TX"), ("Houston", "TX"), ("Seattle", "WA"),
             ("Boston", "MA"), ("Chicago", "IL"), ("Denver", "CO"), ("Atlanta", "GA"), ("Miami", "FL"),
             ("Raleigh", "NC"), ("Portland", "OR"), ("Phoenix", "AZ"), ("Minneapolis", "MN")),
            {"CA": ("California", "calif.", "Calif", "california"), "NY": ("New York", "N.Y.", "new york"),
             "TX": ("Texas", "Tex.", "texas"), "WA": ("Washington", "Wash."), "MA": ("Massachusetts", "Mass."),
             "IL": ("Illinois", "Ill."), "CO": ("Colorado", "Colo."), "GA": ("Georgia", "Ga."),
             "FL": ("Florida", "Fla."), "NC": ("North Carolina", "N.C."), "OR": ("Oregon", "Ore."),
             "AZ": ("Arizona", "Ariz."), "MN": ("Minnesota", "Minn.")}),
    Country("CA", 35, ("Canada", "canada", "CAN"),
            (("Toronto", "ON"), ("Vancouver", "BC"), ("Montréal", "QC"), ("Ottawa", "ON")),
            {"ON": ("Ontario",), "BC": ("British Columbia", "B.C."), "QC": ("Quebec", "Québec")}),
    Country("MX", 10, ("Mexico", "México", "MEX"), (("Mexico City", ""), ("Guadalajara", ""), ("Monterrey", "")), {}),
    Country("GB", 85, ("UK", "United Kingdom", "Great Britain", "England", "gb", "U.K."),
            (("London", ""), ("Manchester", ""), ("Edinburgh", ""), ("Bristol", ""), ("Leeds", "")), {}),
    Country("IE", 12, ("Ireland", "Éire", "IRL"), (("Dublin", ""), ("Cork", "")), {}),
    Country("DE", 65, ("Germany", "Deutschland", "germany", "DEU"),
            (("Berlin", "BE"), ("Munich", "BY"), ("Hamburg", "HH"), ("Frankfurt", "HE"), ("Köln", "NW")),
            {"BE": ("Berlin",), "BY": ("Bavaria", "Bayern"), "HH": ("Hamburg",), "HE": ("Hesse", "Hessen"),
             "NW": ("North Rhine-Westphalia", "NRW")}),
    Country("FR", 42, ("France", "france", "FRA", "République française"),
            (("Paris", ""), ("Lyon", ""), ("Toulouse", ""), ("Nantes", "")), {}),
    Country("NL", 30, ("Netherlands", "The Netherlands", "Holland", "NLD", "nederland"),
            (("Amsterdam", ""), ("Rotterdam", ""), ("Utrecht", ""), ("Eindhoven", "")), {}),
    Country("ES", 12, ("Spain", "España", "ESP"), (("Madrid", ""), ("Barcelona", "")), {}),
    Country("IT", 10, ("Italy", "Italia", "ITA"), (("Milan", ""), ("Rome", "")), {}),
    Country("SE", 10, ("Sweden", "Sverige", "SWE"), (("Stockholm", ""), ("Gothenburg", "")), {}),
    Country("JP", 30, ("Japan", "japan", "JPN", "Nippon"), (("Tokyo", ""), ("Osaka", ""), ("Yokohama", "")), {}),
    Country("AU", 30, ("Australia", "australia", "AUS", "Aus"),
            (("Sydney", "NSW"), ("Melbourne", "VIC"), ("Brisbane", "QLD")),
            {"NSW": ("New South Wales",), "VIC": ("Victoria", "Vic."), "QLD": ("Queensland", "Qld")}),
    Country("SG", 18, ("Singapore", "singapore", "SGP"), (("Singapore", ""),), {}),
    Country("IN", 30, ("India", "india", "IND", "Bharat"),
            (("Bengaluru", "KA"), ("Mumbai", "MH"), ("Pune", "MH"), ("Hyderabad", "TG")),
            {"KA": ("Karnataka",), "MH": ("Maharashtra",), "TG": ("Telangana",)}),
    Country("BR", 12, ("Brazil", "Brasil", "BRA"), (("São Paulo", ""), ("Rio de Janeiro", "")), {}),
    Country("ZA", 9, ("South Africa", "RSA", "ZAF"), (("Cape Town", ""), ("Johannesburg", "")), {}),
)
COUNTRY_BY_CODE: dict[str, Country] = {c.code: c for c in COUNTRIES}
_CODES = tuple(c.code for c in COUNTRIES)
_CUM_WEIGHTS: tuple[int, ...] = tuple(
    sum(c.weight for c in COUNTRIES[: i + 1]) for i in range(len(COUNTRIES))
)

#: Sales regions per the shared contracts (everything else goes to NA).
REGION_BY_COUNTRY: dict[str, str] = {
    **dict.fromkeys(("US", "CA", "MX"), "NA"),
    **dict.fromkeys(("GB", "IE", "DE", "FR", "NL", "BE", "ES", "IT", "SE", "NO", "DK", "FI", "CH",
                     "AT", "PL", "PT"), "EMEA"),
    **dict.fromkeys(("JP", "AU", "NZ", "SG", "IN", "KR", "CN", "HK"), "APAC"),
}


def region_of(country_code: str) -> str:
    """The sales region of an ISO country code (NA when the contracts do not list it)."""
    return REGION_BY_COUNTRY.get(country_code, "NA")


def pick_country(rng: random.Random) -> Country:
    """A country drawn by weight (mostly US, then western Europe, some APAC, a few others)."""
    return COUNTRY_BY_CODE[_CODES[bisect(_CUM_WEIGHTS, rng.random() * _CUM_WEIGHTS[-1])]]


_AREA_CODES = {"US": ("415", "212", "512", "206", "617", "312", "303", "404", "305", "612"),
               "CA": ("416", "604", "514", "613")}
_CALLING_CODES = {"DE": "49", "NL": "31", "IE": "353", "ES": "34", "IT": "39", "SE": "46", "JP": "81",
                  "SG": "65", "IN": "91", "BR": "55", "ZA": "27", "MX": "52"}
_NATIONAL_LENGTH = {"SG": 8, "IN": 10, "JP": 10, "BR": 11, "MX": 10, "DE": 10}


def phone_digits(rng: random.Random, code: str) -> tuple[str, str]:
    """A (country calling code, national significant number) pair, fictional where possible."""
    areas = _AREA_CODES.get(code)
    if areas is not None:  # North America: 555-0100 to 555-0199 are reserved for fiction
        return "1", f"{rng.choice(areas)}55501{rng.randrange(100):02d}"
    if code == "GB":  # Ofcom's drama range 020 7946 0000-0999
        return "44", f"2079460{rng.randrange(1000):03d}"
    if code == "AU":  # ACMA's fiction range 0491 570 xxx
        return "61", f"491570{rng.randrange(1000):03d}"
    if code == "FR":  # ARCEP's fiction range 01 99 00 xx xx
        return "33", f"19900{rng.randrange(10000):04d}"
    length = _NATIONAL_LENGTH.get(code, 9)
    return _CALLING_CODES.get(code, "1"), f"{rng.randint(2, 9)}{rng.randrange(10 ** (length - 1)):0{length - 1}d}"
