"""Fictional companies: names from stem + industry word + legal suffix, domains, sizes.

The four named accounts of the shared contracts (Globex, Initech, Umbrella Corp,
Tyrell) are fixed; every other company is generated and steers clear of real,
well-known brands by combining invented stems.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

from crm_sandbox.seed._geo import Country, pick_country
from crm_sandbox.seed._rand import weighted

INDUSTRIES: tuple[tuple[str, int], ...] = (
    ("Technology", 14), ("Software", 14), ("Financial Services", 8), ("Healthcare", 7),
    ("Manufacturing", 8), ("Telecommunications", 3), ("Professional Services", 6), ("Insurance", 3),
    ("Retail", 8), ("Education", 6), ("Media", 4), ("Hospitality", 4), ("Non-Profit", 3),
    ("Transportation", 4), ("Energy", 3), ("Real Estate", 3), ("Construction", 2),
)
_INDUSTRY_NAMES = tuple(name for name, _ in INDUSTRIES)
_INDUSTRY_CUM = tuple(sum(w for _, w in INDUSTRIES[: i + 1]) for i in range(len(INDUSTRIES)))

_STEMS = ["Acme", "Apex", "Arbor", "Argent", "Aster", "Atlas", "Aurora", "Azure", "Beacon", "Birch", "Blue", "Bolt", "Bright", "Brook", "Cedar", "Cobalt", "Copper", "Coral", "Crest", "Crimson", "Delta", "Echo", "Ember", "Evergreen", "Falcon", "Fern", "Flint", "Forge", "Fox", "Garnet", "Glacier", "Granite", "Harbor", "Hawk", "Helix", "Horizon", "Indigo", "Iris", "Iron", "Jade", "Juniper", "Keystone", "Kestrel", "Lantern", "Lark", "Ledger", "Lumen", "Lynx", "Maple", "Meadow", "Meridian", "Mesa", "Nimbus", "Noble", "North", "Nova", "Oak", "Onyx", "Opal", "Orbit", "Orchid", "Pebble", "Pine", "Pinnacle", "Pioneer", "Plume", "Polar", "Prairie", "Quarry", "Quill", "Raven", "Redwood", "Ridge", "River", "Rook", "Sable", "Sage", "Silver", "Slate", "Sparrow", "Spruce", "Star", "Stone", "Summit", "Sun", "Swift", "Tandem", "Terra", "Thistle", "Tide", "Timber", "Topaz", "Trail", "True", "Tundra", "Umber", "Vale", "Vanguard", "Velvet", "Vertex", "Vista", "Willow", "Wren", "Zenith", "Zephyr"]
_STEMS2 = ["field", "gate", "view", "point", "line", "stone", "bridge", "wood", "works", "mark", "path", "well", "crest", "side", "ford", "vale", "brook", "hill", "water", "light", "spring", "port", "haven", "wind", "rock", "shore"]
_WORDS: dict[str, tuple[str, ...]] = {
    "Technology": ("Technologies", "Systems", "Labs", "Digital", "Networks", "Tech"),
    "Software": ("Software", "Cloud", "Analytics", "Data", "AI", "Apps", "HQ"),
    "Financial Services": ("Capital", "Financial", "Partners", "Payments", "Wealth"),
    "Healthcare": ("Health", "Medical", "Biotech", "Care", "Therapeutics"),
    "Manufacturing": ("Industries", "Manufacturing", "Robotics", "Materials", "Components"),
    "Telecommunications": ("Telecom", "Communications", "Wireless"),
    "Professional Services": ("Consulting", "Advisory", "Group", "Associates"),
    "Insurance": ("Insurance", "Assurance", "Mutual"),
    "Retail": ("Retail", "Goods", "Outfitters", "Market", "Brands"),
    "Education": ("Learning", "Academy", "Education", "Institute"),
    "Media": ("Media", "Studios", "Publishing"),
    "Hospitality": ("Hotels", "Hospitality", "Travel"),
    "Non-Profit": ("Foundation", "Trust", "Alliance"),
    "Transportation": ("Logistics", "Freight", "Transport", "Mobility"),
    "Energy": ("Energy", "Power", "Solar", "Renewables"),
    "Real Estate": ("Properties", "Realty", "Estates"),
    "Construction": ("Construction", "Builders", "Engineering"),
}
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "US": ("Inc.", "Inc", "LLC", "Corp", "Corporation", "Co.", ""),
    "CA": ("Inc.", "Ltd.", "Corp"),
    "GB": ("Ltd", "Ltd.", "Limited", "PLC", "LLP", ""),
    "IE": ("Ltd", "Limited", "DAC"),
    "DE": ("GmbH", "AG", "GmbH & Co. KG", "SE"),
    "FR": ("SA", "SAS", "SARL"),
    "NL": ("B.V.", "BV", "N.V."),
    "ES": ("S.L.", "S.A."),
    "IT": ("S.p.A.", "S.r.l."),
    "SE": ("AB",),
    "JP": ("K.K.", "Co., Ltd.", "Inc."),
    "AU": ("Pty Ltd", "Pty. Ltd.", "Ltd"),
    "SG": ("Pte. Ltd.", "Pte Ltd"),
    "IN": ("Pvt. Ltd.", "Private Limited", "Ltd."),
    "BR": ("Ltda.", "S.A."),
    "ZA": ("(Pty) Ltd", "Ltd"),
    "MX": ("S.A. de C.V.",),
}
_TLDS: dict[str, tuple[str, ...]] = {
    "US": (".example", ".test", ".com", ".io", ".co"),
    "GB": (".example", ".co.uk", ".com"),
    "DE": (".example", ".de", ".com"),
    "FR": (".example", ".fr", ".com"),
    "NL": (".example", ".nl", ".com"),
    "JP": (".example", ".co.jp", ".jp"),
    "AU": (".example", ".com.au"),
    "IN": (".example", ".in", ".co.in"),
    "SG": (".example", ".sg", ".com.sg"),
}


@dataclass
class Company:
    """A real (fictional) company: the truth behind accounts, HubSpot companies and leads' Company."""

    key: int
    name: str  # clean display name, without legal suffix
    suffix: str  # legal suffix as the company writes it ("" when none)
    domain: str
    industry: str
    employees: int
    revenue: float
    country: Country
    city: str
    state: str
    named_owner: str | None = None  # email local part of a named-account owner


NAMED_ACCOUNTS: tuple[tuple[str, str, str, str, str, int], ...] = (
    # name, suffix, domain, owner, country, employees
    ("Globex", "Corporation", "globex.example", "olivia.grant", "US", 12000),
    ("Initech", "Inc.", "initech.example", "rafael.ortiz", "US", 850),
    ("Umbrella Corp", "Ltd", "umbrella-corp.example", "sophie.laurent", "GB", 5400),
    ("Tyrell", "Corporation", "tyrell.example", "kenji.watanabe", "JP", 23000),
)
_NAMED_INDUSTRY = {"globex.example": "Technology", "initech.example": "Software",
                   "umbrella-corp.example": "Healthcare", "tyrell.example": "Manufacturing"}


@lru_cache(maxsize=65536)
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def employees_and_revenue(rng: random.Random) -> tuple[int, float]:
    """A size drawn from a skewed distribution (most companies are small) and a matching revenue."""
    roll = rng.random()
    if roll < 0.25:
        employees = rng.randint(1, 9)
    elif roll < 0.55:
        employees = rng.randint(10, 49)
    elif roll < 0.75:
        employees = rng.randint(50, 199)
    elif roll < 0.90:
        employees = rng.randint(200, 999)
    else:
        employees = rng.randint(1000, 50000)
    revenue = round(employees * rng.uniform(60_000, 320_000), -3)
    return employees, revenue


class CompanyFactory:
    """Makes unique fictional companies (unique names and domains) from one random stream."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._domains: set[str] = {d for _, _, d, _, _, _ in NAMED_ACCOUNTS}
        self._next_key = 0

    def named_accounts(self) -> list[Company]:
        """The four named accounts of the shared contracts."""
        from crm_sandbox.seed._geo import COUNTRY_BY_CODE

        out = []
        for name, suffix, domain, owner, code, employees in NAMED_ACCOUNTS:
            country = COUNTRY_BY_CODE[code]
            city, state = country.cities[0]
            out.append(Company(self._take_key(), name, suffix, domain, _NAMED_INDUSTRY[domain],
                               employees, float(employees * 180_000), country, city, state, owner))
        return out

    def _take_key(self) -> int:
        self._next_key += 1
        return self._next_key

    def make(self) -> Company:
        """A new company with a name and domain no other company of this factory has."""
        rng = self._rng
        country = pick_country(rng)
        industry = weighted(rng, _INDUSTRY_NAMES, _INDUSTRY_CUM)
        for attempt in range(50):
            stem = rng.choice(_STEMS)
            if rng.random() < 0.35:
                stem += rng.choice(_STEMS2)
            word = rng.choice(_WORDS[industry])
            name = stem if rng.random() < 0.25 else f"{stem} {word}"
            tld = rng.choice(_TLDS.get(country.code, (".example", ".com")))
            base = _slug(name) if attempt < 10 else f"{_slug(name)}{attempt}"
            if rng.random() < 0.2 and " " in name:
                base = _slug(name.split()[0]) + "-" + _slug(name.split()[1])
            domain = base + tld
            if domain not in self._domains:
                break
        else:  # pragma: no cover - 50 misses in a row would need millions of companies
            domain = f"co{self._next_key}.example"
        self._domains.add(domain)
        employees, revenue = employees_and_revenue(rng)
        city, state = rng.choice(country.cities)
        suffix = rng.choice(_SUFFIXES.get(country.code, ("Ltd",)))
        return Company(self._take_key(), name, suffix, domain, industry, employees, revenue,
                       country, city, state)
