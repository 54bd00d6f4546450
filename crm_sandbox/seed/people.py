"""People-only seed data with ground truth, for dedupe at scale (``relay match``, ``bench/dedupe.py``).

``generate_people(rows, seed)`` makes a flat list of person records in the canonical columns
(``id, first_name, last_name, email, phone, company, website, title, country, state, source``)
and, index-aligned, the true person behind each record. A million rows take well under a
minute: rows are tuples of ``str``, repeated values (company names, websites, countries, titles)
are shared objects, and nothing is kept per person once its records are written.

What makes it hard, as CRM data is:

- **Duplicates** (about 1.3 records per true person, four in five people single): email case,
  spaces, ``+tags``, Gmail dots and ``googlemail.com``; a personal free-mail address on one
  record and the work address on another; a typo in the email's local part; no email at all;
  nicknames (``Bob`` for ``Robert``), one-letter typos, first and last name swapped, a middle
  name or initial, accents dropped (``José``/``Jose``), one or both Spanish surnames; the
  company written differently (legal suffixes, "The", punctuation, case, ``&``/``and``, the
  domain as its name); the website with or without ``www``/``https``/a path; phones in E.164,
  national, ``00`` and extension formats; the country as a code or a name; missing fields.
- **Hard negatives** (different true people): namesakes everywhere (name frequencies follow
  census-like tables, so John Smith and Wei Zhang occur hundreds of times at a million rows);
  colleagues sharing the company's domain, its address convention (``first.last@``) and its
  switchboard; family businesses where several people share a surname; colleagues with
  similar first names (Jon and John, Chris and Christine); role addresses (``info@``) used by
  several people of a small company; a household free-mail address used by two people with
  one surname; companies of the same name in other countries, with other domains.

Rates are the module constants below; ``describe(data)`` measures them back from the rows
(it looks only at the rows and the truth, never at the generator's state).

Phone numbers are random numbers of the right length for each country, not the fiction ranges
the CRM seed uses: those hold a few thousand numbers, and a million people would then share
phones by the hundred, which no real data set does.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import re
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from crm_sandbox.seed import messiness as mess
from crm_sandbox.seed._companies import _STEMS, _STEMS2, _SUFFIXES, _TLDS, _WORDS, _slug
from crm_sandbox.seed._geo import COUNTRIES, COUNTRY_BY_CODE, Country, pick_country
from crm_sandbox.seed._names import (
    CULTURES_BY_COUNTRY,
    FIRST_NAMES,
    LAST_NAMES,
    LEVEL_WEIGHTS,
    NICKNAMES,
    TITLES_BY_LEVEL,
)
from crm_sandbox.seed._rand import SeedRandom, cumulative, weighted

__all__ = [
    "COLUMNS",
    "PeopleData",
    "describe",
    "generate_people",
    "main",
    "read_truth",
    "write_csv",
]

#: The canonical person columns, in the order of the CSV ``relay match`` reads.
COLUMNS: tuple[str, ...] = (
    "id", "first_name", "last_name", "email", "phone", "company", "website", "title",
    "country", "state", "source",
)

# --- how many records a person has ---------------------------------------------------------------
#: (records, weight): most people are single, a few were entered many times.
RECORDS_PER_PERSON: tuple[tuple[int, int], ...] = (
    (1, 800), (2, 130), (3, 42), (4, 15), (5, 7), (6, 3), (8, 2), (12, 1),
)

# --- companies -------------------------------------------------------------------------------------
#: Share of person groups that are one person without a company (students, freelancers, consumers).
NO_COMPANY_GROUP_RATE = 0.2
#: People per company in the data follow a Pareto law with this exponent (most companies have one
#: or two people, a few have thousands), capped at rows / COMPANY_CAP_DIVISOR within
#: COMPANY_CAP_RANGE (a 10,000-row list does not hold a company of 2,000 people).
COMPANY_SIZE_ALPHA = 1.3
COMPANY_CAP_DIVISOR = 250
COMPANY_CAP_RANGE = (40, 2000)
#: A new company takes the name of an earlier one in another country (another domain, suffix).
SAME_NAME_COMPANY_RATE = 0.05
#: A small company (2-12 people in the data) is a family business: many share one surname ...
FAMILY_COMPANY_RATE = 0.2
#: ... and each further person there has the family's surname at this rate.
FAMILY_SURNAME_RATE = 0.6
#: Anywhere else, a person is a relative of an earlier colleague (same surname).
RELATIVE_RATE = 0.01
#: A person's first name is confusable with an earlier colleague's (Jon/John, Chris/Christine) ...
SIMILAR_FIRST_NAME_RATE = 0.04
#: ... and then they share the colleague's surname as well at this rate (siblings).
SIMILAR_SIBLING_RATE = 0.3
#: A small company (at most 15 people here) has a role address (info@, sales@) ...
ROLE_ADDRESS_COMPANY_RATE = 0.3
#: ... that each of its people gives as their address at this rate.
ROLE_ADDRESS_PERSON_RATE = 0.35

# --- people ----------------------------------------------------------------------------------------
#: A person at a company gives a personal free-mail address as their main address.
FREE_MAIL_PRIMARY_RATE = 0.12
#: A person at a company also has a personal address (for the personal/work duplicate).
PERSONAL_ADDRESS_RATE = 0.45
#: A person shares a household free-mail address with a partner (two true people, one mailbox).
HOUSEHOLD_MAIL_RATE = 0.006
#: A person has a middle name (used on some records).
MIDDLE_NAME_RATE = 0.3
#: A Spanish-speaking person has two surnames (records show one or both).
TWO_SURNAMES_RATE = 0.5
#: A person has a direct line / a mobile; otherwise their records show the switchboard.
DIRECT_LINE_RATE = 0.75
MOBILE_RATE = 0.35
#: A person's work address uses their nickname (bob.smith@ for Robert Smith).
NICKNAME_IN_EMAIL_RATE = 0.05

# --- how a duplicate record differs from the person's first record (per duplicate record) ------
DUP_OTHER_ADDRESS_RATE = 0.18  # the personal address instead of the work one, or the reverse
DUP_EMAIL_TYPO_RATE = 0.04
DUP_NO_EMAIL_RATE = 0.1
DUP_EMAIL_VARIANT_RATE = 0.25  # case, spaces, +tag, Gmail dots, googlemail.com
DUP_NICKNAME_RATE = 0.3  # of records of people who have a nickname
DUP_NAME_TYPO_RATE = 0.07
DUP_SWAPPED_NAME_RATE = 0.03
DUP_MIDDLE_RATE = 0.25  # of records of people with a middle name
DUP_INITIAL_ONLY_RATE = 0.02  # "J." as the first name
DUP_COMPANY_VARIANT_RATE = 0.4
DUP_TITLE_CHANGE_RATE = 0.1

# --- every record ------------------------------------------------------------------------------------
BASE_NICKNAME_RATE = 0.08
BASE_MIDDLE_RATE = 0.05
BASE_EMAIL_VARIANT_RATE = 0.04
BASE_COMPANY_VARIANT_RATE = 0.15
ACCENT_DROP_RATE = 0.35  # of records of people whose name has accents
CASE_RATE = 0.03  # the name in upper or lower case
WHITESPACE_RATE = 0.03
MISSING_EMAIL_RATE = 0.03
MISSING_PHONE_RATE = 0.2
JUNK_PHONE_RATE = 0.01
SWITCHBOARD_RATE = 0.2  # of phones of people with a direct line
MISSING_FIRST_RATE = 0.01
MISSING_LAST_RATE = 0.015
MISSING_COMPANY_RATE = 0.05
MISSING_WEBSITE_RATE = 0.55
MISSING_TITLE_RATE = 0.12
MESSY_TITLE_RATE = 0.2
MISSING_COUNTRY_RATE = 0.08
MISSING_STATE_RATE = 0.2
#: What people without a company write into the company field (when they write anything).
NO_COMPANY_VALUES: tuple[str, ...] = ("Self-employed", "Freelance", "N/A", "none", "Student", "Retired", "-")
NO_COMPANY_VALUE_RATE = 0.3

SOURCES: tuple[tuple[str, int], ...] = (
    ("Web", 30), ("Salesforce", 14), ("HubSpot", 14), ("Trade Show", 8), ("Webinar", 8),
    ("Purchased List", 10), ("LinkedIn", 8), ("Partner Referral", 5), ("CSV Import", 3),
)
#: Free-mail providers and their shares (Gmail's dots and googlemail.com make its own mess).
FREE_MAIL: tuple[tuple[str, int], ...] = (
    ("gmail.com", 52), ("yahoo.com", 11), ("hotmail.com", 9), ("outlook.com", 9), ("icloud.com", 6),
    ("aol.com", 3), ("gmx.de", 3), ("web.de", 2), ("yahoo.co.uk", 2), ("orange.fr", 2), ("mail.com", 1),
)
FREE_MAIL_DOMAINS: frozenset[str] = frozenset({d for d, _ in FREE_MAIL} | {"googlemail.com"})
ROLE_LOCALS: tuple[str, ...] = ("info", "sales", "office", "hello", "contact", "admin", "team")

#: Nicknames beyond the CRM seed's table (``_names.NICKNAMES``).
MORE_NICKNAMES: dict[str, tuple[str, ...]] = {
    "John": ("Jack", "Johnny"), "David": ("Dave",), "Charles": ("Charlie", "Chuck"),
    "Timothy": ("Tim",), "Gregory": ("Greg",), "Jeffrey": ("Jeff",), "Kenneth": ("Ken", "Kenny"),
    "Ronald": ("Ron",), "Donald": ("Don",), "Lawrence": ("Larry",), "Gerald": ("Jerry",),
    "Raymond": ("Ray",), "Douglas": ("Doug",), "Frederick": ("Fred",), "Nathaniel": ("Nate",),
    "Nathan": ("Nate",), "Zachary": ("Zach",), "Jacob": ("Jake",), "Joshua": ("Josh",),
    "Philip": ("Phil",), "Peter": ("Pete",), "Gabriel": ("Gabe",), "Theodore": ("Ted", "Theo"),
    "Cynthia": ("Cindy",), "Pamela": ("Pam",), "Jessica": ("Jess",), "Melissa": ("Mel",),
    "Amanda": ("Mandy",), "Christina": ("Tina", "Chris"), "Stephanie": ("Steph",),
    "Alexandra": ("Alex", "Sasha"), "Natalie": ("Nat",), "Jacqueline": ("Jackie",),
    "Judith": ("Judy",), "Barbara": ("Barb",), "Sandra": ("Sandy",), "Catherine": ("Cathy", "Kate"),
    "Frances": ("Fran",), "Francis": ("Frank",), "Vincent": ("Vince",), "Anthony": ("Tony",),
    "Johannes": ("Hans", "Jan"), "José": ("Pepe",), "Francisco": ("Paco", "Pancho"),
    "Manuel": ("Manolo",), "Ignacio": ("Nacho",), "Guadalupe": ("Lupe",), "Giuseppe": ("Beppe",),
    "Giovanni": ("Gianni",), "Alessandra": ("Sandra",), "Christoph": ("Chris",),
    "Christian": ("Chris",), "Wilhelm": ("Willi",), "Elisabeth": ("Lisa", "Sissi"),
    "Nicolas": ("Nico",), "Dominique": ("Dom",), "Eduardo": ("Edu",), "Rafael": ("Rafa",),
}
#: First names easily taken for one another: colleagues with these are different people.
SIMILAR_FIRST_NAMES: tuple[tuple[str, ...], ...] = (
    ("John", "Jon", "Joan", "Jean"), ("Christine", "Christina", "Christopher", "Christian", "Chris"),
    ("Daniel", "Danielle", "Daniela"), ("Michael", "Michelle", "Michel"), ("Paul", "Paula", "Pauline"),
    ("Eric", "Erica", "Erik"), ("Alexander", "Alexandra", "Alexis"), ("Brian", "Bryan"),
    ("Steven", "Stephen", "Stephanie"), ("Mark", "Marc", "Marco"), ("Sara", "Sarah"),
    ("Ann", "Anne", "Anna"), ("Carl", "Karl", "Carla"), ("Gabriel", "Gabriela", "Gabrielle"),
    ("Julian", "Julia", "Juliana", "Julie"), ("Francis", "Frances", "Francesca"),
    ("Andrew", "Andrea", "Andreas"), ("Samuel", "Samantha"), ("Maria", "Mario", "Marie"),
    ("Luis", "Luisa", "Louise", "Louis"), ("Patrick", "Patricia"), ("Robert", "Roberta", "Roberto"),
    ("Fernando", "Fernanda"), ("Adrian", "Adriana", "Adrienne"), ("Jan", "Jana", "Janet"),
    ("Lars", "Lara"), ("Wei", "Wen"), ("Rahul", "Rohan"), ("Priya", "Piya"), ("Yuki", "Yuka"),
)

_CALLING: dict[str, str] = {
    "US": "1", "CA": "1", "MX": "52", "GB": "44", "IE": "353", "DE": "49", "FR": "33", "NL": "31",
    "ES": "34", "IT": "39", "SE": "46", "JP": "81", "AU": "61", "SG": "65", "IN": "91", "BR": "55",
    "ZA": "27",
}
_NATIONAL_LENGTH: dict[str, int] = {"SG": 8, "IN": 10, "JP": 10, "BR": 11, "MX": 10, "DE": 10, "GB": 10}
_NANP_AREAS: dict[str, tuple[str, ...]] = {
    "US": ("212", "213", "214", "305", "312", "303", "404", "415", "425", "503", "512", "602",
           "612", "617", "646", "650", "678", "702", "713", "718", "720", "773", "786", "804",
           "813", "817", "858", "901", "917", "919", "929", "949", "206", "210", "216", "281"),
    "CA": ("416", "437", "514", "604", "613", "647", "778", "905"),
}
_FAKER_LOCALES: dict[str, tuple[str, ...]] = {
    "anglo": ("en_US", "en_GB", "en_IE"), "hispanic": ("es_ES", "es_MX"), "german": ("de_DE",),
    "french": ("fr_FR", "fr_CA"), "dutch": ("nl_NL",), "nordic": ("sv_SE",), "italian": ("it_IT",),
    "indian": ("en_IN",), "chinese": ("zh_CN",), "japanese": ("ja_JP",), "portuguese": ("pt_BR",),
    "african": ("zu_ZA",),
}
#: Share of name draws from the CRM seed's short lists of the most common names (Zipf-weighted);
#: the rest come from Faker's per-locale name tables (census frequencies where Faker has them).
_HEAD_SHARE = 0.35
_NAME_OK = re.compile(r"^[^\W\d_][\w' -]*$")
_SURNAME_COMPANY = ("{a} & {b}", "{a} and {b}", "{a} & Sons", "{a} & Partners", "{a} Group",
                    "{a} {w}", "{a} Brothers")
_WEBSITE_FORMS = ("{d}", "www.{d}", "https://www.{d}", "http://{d}", "https://{d}/",
                  "https://www.{d}/contact", "WWW.{D}", "http://www.{d}/about-us")
_ABBREVIATIONS = {"International": "Intl", "Technologies": "Tech", "Systems": "Sys",
                  "Associates": "Assoc.", "Manufacturing": "Mfg", "Brothers": "Bros.",
                  "Partners": "Ptnrs", "Corporation": "Corp", "Company": "Co."}
#: Legal forms and filler words dropped when ``describe`` compares company names.
_LEGAL_WORDS = frozenset((
    "inc", "incorporated", "corp", "corporation", "co", "company", "llc", "lllp", "llp", "lp",
    "ltd", "limited", "plc", "gmbh", "ag", "kg", "se", "sa", "sas", "sarl", "bv", "nv", "sl", "spa",
    "srl", "ab", "kk", "pty", "pte", "pvt", "private", "ltda", "de", "cv", "dac", "the",
))


@dataclass
class PeopleData:
    """Generated person records and their ground truth.

    Attributes:
        columns: the canonical column names (``COLUMNS``).
        rows: one tuple of ``str`` per record, in ``columns`` order; ``""`` for a missing value.
        truth: the true person (an int) of each row, index-aligned with ``rows``.
        seed: the seed the data came from.
    """

    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    truth: list[int]
    seed: int


@dataclass(slots=True)
class _Company:
    name: str  # core name, "Acme Software"
    suffix: str  # legal form as the company writes it, "Inc."
    display: str  # "Acme Software Inc."
    domain: str
    country: Country
    state: str
    switchboard: str  # national number
    convention: int  # index into _CONVENTIONS
    role: str  # "info@acme.com" or ""
    websites: dict[int, str]


@dataclass(slots=True)
class _Person:
    first: str
    last: str
    last2: str  # second surname ("" if none)
    middle: str
    nicks: tuple[str, ...]
    accented: bool
    company: _Company | None
    country: Country
    state: str
    title: str
    level: str
    email: str  # the address the first record shows
    other: str  # another address of the person ("" if none)
    calling: str
    direct: str
    mobile: str


@cache
def _faker_names(locale: str) -> tuple[dict[str, float], dict[str, float]]:
    """(first names, last names) of a Faker locale as name -> share (shares sum to 1)."""
    module: Any = importlib.import_module(f"faker.providers.person.{locale}")
    provider = module.Provider
    if locale in ("zh_CN", "ja_JP"):
        firsts: Any = provider.first_romanized_names
        lasts: Any = provider.last_romanized_names
    else:
        firsts, lasts = provider.first_names, provider.last_names

    def shares(names: Any) -> dict[str, float]:
        items = list(names.items()) if isinstance(names, Mapping) else [(n, 1.0) for n in names]
        items = [(n.strip(), float(w)) for n, w in items if _NAME_OK.match(n.strip())]
        total = sum(w for _, w in items)
        out: dict[str, float] = {}
        for name, weight in items:
            out[name] = out.get(name, 0.0) + weight / total
        return out

    return shares(firsts), shares(lasts)


def _pool(head: Sequence[str], tails: Sequence[Mapping[str, float]]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Names and cumulative weights: the head list Zipf-weighted, the tails after it."""
    weights: dict[str, float] = {}
    zipf = [1.0 / (rank + 3) for rank in range(len(head))]
    total = sum(zipf)
    for name, w in zip(head, zipf, strict=True):
        weights[name] = weights.get(name, 0.0) + _HEAD_SHARE * w / total
    for tail in tails:
        for name, w in tail.items():
            weights[name] = weights.get(name, 0.0) + (1 - _HEAD_SHARE) * w / len(tails)
    return cumulative(list(weights.items()))


@cache
def _name_pools() -> dict[str, tuple[tuple[tuple[str, ...], tuple[float, ...]], tuple[tuple[str, ...], tuple[float, ...]]]]:
    """Per culture: (first-name pool, last-name pool), each (names, cumulative weights)."""
    pools = {}
    for culture, locales in _FAKER_LOCALES.items():
        tails = [_faker_names(locale) for locale in locales]
        firsts = _pool(FIRST_NAMES[culture], [t[0] for t in tails])
        lasts = _pool(LAST_NAMES[culture], [t[1] for t in tails])
        pools[culture] = (firsts, lasts)
    return pools


@cache
def _nicknames() -> dict[str, tuple[str, ...]]:
    table = dict(NICKNAMES)
    for name, nicks in MORE_NICKNAMES.items():
        table[name] = tuple(dict.fromkeys((*table.get(name, ()), *nicks)))
    return table


@cache
def _similar_names() -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for group in SIMILAR_FIRST_NAMES:
        for name in group:
            table[name] = tuple(n for n in group if n != name)
    return table


@lru_cache(maxsize=1 << 16)
def _strip_accents(text: str) -> str:
    """``José García`` -> ``Jose Garcia`` (case kept)."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


@lru_cache(maxsize=1 << 16)
def _local(text: str) -> str:
    """A name as it appears in an address: ASCII, lower case, letters and digits only."""
    text = text.replace("ß", "ss").replace("ø", "o").replace("Ø", "O").replace("æ", "ae")
    return re.sub(r"[^a-z0-9]+", "", _strip_accents(text).lower()) or "x"


def _has_accents(text: str) -> bool:
    return not text.isascii()


# Work-address conventions: first.last, flast, f.last, firstl, first_last, first, lastf, last.first
_CONVENTIONS: tuple[tuple[str, int], ...] = (
    ("{f}.{l}", 50), ("{f0}{l}", 15), ("{f0}.{l}", 8), ("{f}{l0}", 6), ("{f}_{l}", 5), ("{f}", 5),
    ("{l}{f0}", 3), ("{l}.{f}", 3), ("{f}{l}", 5),
)
_CONV_FORMATS, _CONV_CUM = cumulative(_CONVENTIONS)
_CONV_INDEX = tuple(range(len(_CONVENTIONS)))
_FREE_DOMAINS, _FREE_CUM = cumulative(FREE_MAIL)
_SOURCE_VALUES, _SOURCE_CUM = cumulative(SOURCES)
_LEVELS, _LEVEL_CUM = cumulative(LEVEL_WEIGHTS)
_RECORD_COUNTS, _RECORD_CUM = cumulative(RECORDS_PER_PERSON)
_CULTURE_POOLS = {code: tuple(c for c, w in pairs for _ in range(w)) for code, pairs in CULTURES_BY_COUNTRY.items()}
_STATE_CITIES = {c.code: tuple(s for _, s in c.cities) for c in COUNTRIES}
_WORD_LISTS = tuple(_WORDS.values())


class _Generator:
    """One generation run: a random stream, the domains and free-mail keys taken so far."""

    def __init__(self, seed: int, rows: int) -> None:
        self.seed = seed
        self.rng = SeedRandom(seed)
        self.rows = rows
        self.domains: set[str] = set()
        self.free_keys: set[str] = set()
        self.company_names: list[tuple[str, str]] = []  # (name, country code) of every company
        self.strings: dict[str, str] = {}  # one object per repeated string value
        self.pools = _name_pools()
        self.nicks = _nicknames()
        self.similar = _similar_names()

    # --- companies ---------------------------------------------------------------------------------
    def company(self) -> _Company:
        rng = self.rng
        rnd = rng.random
        country = pick_country(rng)
        name = ""
        if self.company_names and rnd() < SAME_NAME_COMPANY_RATE:
            taken, taken_country = self.company_names[int(rnd() * len(self.company_names))]
            if taken_country != country.code:
                name = taken
        if not name:
            roll = rnd()
            word = rng.choice(rng.choice(_WORD_LISTS))
            if roll < 0.2:  # "Meyer & Schmidt", "Rossi Group"
                lasts = self.pools[self._culture(country)][1]
                name = rng.choice(_SURNAME_COMPANY).format(a=weighted(rng, *lasts), b=weighted(rng, *lasts), w=word)
            elif roll < 0.3:  # "JKL Logistics"
                letters = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(2, 4)))
                name = f"{letters} {word}"
            else:  # "Summit", "Blue Harbor Analytics", "Cedarbrook Health"
                stem = rng.choice(_STEMS)
                second = rnd()
                if second < 0.45:
                    stem += rng.choice(_STEMS2)
                elif second < 0.7:
                    stem = f"{stem} {rng.choice(_STEMS)}"
                name = stem if rnd() < 0.2 else f"{stem} {word}"
        self.company_names.append((name, country.code))
        suffix = rng.choice(_SUFFIXES.get(country.code, ("Ltd",)))
        tlds = _TLDS.get(country.code, (".example", ".com"))
        base = _slug(name.replace("&", "and")) if rnd() < 0.5 else _slug(name.split(" ")[0])
        if rnd() < 0.15 and " " in name:
            base = "-".join(_slug(w) for w in name.split(" ")[:2] if _slug(w))
        domain = base + rng.choice(tlds)
        n = 1
        while domain in self.domains:  # another company has it: a longer or numbered name
            n += 1
            extra = country.code.lower() if n == 2 else ("group" if n == 3 else str(n))
            domain = f"{base}{extra}{rng.choice(tlds)}"
        self.domains.add(domain)
        state = rng.choice(_STATE_CITIES[country.code])
        role = f"{rng.choice(ROLE_LOCALS)}@{domain}"
        return _Company(
            name=name, suffix=suffix, display=mess.company_display(name, suffix), domain=domain,
            country=country, state=state, switchboard=self._national(country.code),
            convention=weighted(rng, _CONV_INDEX, _CONV_CUM), role=role, websites={},
        )

    def _culture(self, country: Country) -> str:
        pool = _CULTURE_POOLS.get(country.code, ("anglo",))
        return pool[int(self.rng.random() * len(pool))]

    def _national(self, code: str) -> str:
        rng = self.rng
        areas = _NANP_AREAS.get(code)
        if areas is not None:
            return f"{rng.choice(areas)}{rng.randint(200, 999)}{rng.randrange(10000):04d}"
        if code == "GB":
            return ("20" if rng.random() < 0.5 else "77") + f"{rng.randrange(10 ** 8):08d}"
        length = _NATIONAL_LENGTH.get(code, 9)
        return f"{rng.randint(2, 9)}{int(rng.random() * 10 ** (length - 1)):0{length - 1}d}"

    # --- people ----------------------------------------------------------------------------------
    def free_address(self, first: str, last: str, country: Country) -> str:
        rng = self.rng
        f, lw = _local(first), _local(last)
        pattern = rng.randrange(7)
        if pattern == 0:
            local = f"{f}.{lw}"
        elif pattern == 1:
            local = f"{f}{lw}"
        elif pattern == 2:
            local = f"{f}.{lw}{rng.randint(1, 99)}"
        elif pattern == 3:
            local = f"{f[0]}{lw}{rng.randint(60, 99)}"
        elif pattern == 4:
            local = f"{f}_{lw}"
        elif pattern == 5:
            local = f"{lw}.{f}"
        else:
            local = f"{f}{lw}{rng.randint(1960, 2005)}"
        domain = weighted(rng, _FREE_DOMAINS, _FREE_CUM)
        if domain in ("gmx.de", "web.de") and country.code != "DE" and rng.random() < 0.8:
            domain = "gmail.com"
        return self._claim_free(local, domain)

    def _claim_free(self, local: str, domain: str) -> str:
        email = f"{local}@{domain}"
        n = 1
        while mess.email_key(email) in self.free_keys:
            n += 1
            email = f"{local}{n}@{domain}"
        self.free_keys.add(mess.email_key(email))
        return email

    def person(self, company: _Company | None, colleagues: list[_Person], family_last: str,
               taken: set[str]) -> _Person:
        rng = self.rng
        rnd = rng.random
        if company is not None and rnd() < 0.85:
            country = company.country
            state = company.state
        else:
            country = pick_country(rng)
            state = rng.choice(_STATE_CITIES[country.code])
        culture = self._culture(country)
        firsts, lasts = self.pools[culture]
        first = weighted(rng, *firsts)
        last = weighted(rng, *lasts)
        if colleagues:
            if family_last and rnd() < FAMILY_SURNAME_RATE:
                last = family_last
            elif rnd() < RELATIVE_RATE:
                last = colleagues[int(rnd() * len(colleagues))].last
            if rnd() < SIMILAR_FIRST_NAME_RATE:
                mate = colleagues[int(rnd() * len(colleagues))]
                others = self.similar.get(mate.first)
                if others:
                    first = rng.choice(others)
                    if rnd() < SIMILAR_SIBLING_RATE:
                        last = mate.last
        last2 = weighted(rng, *lasts) if culture == "hispanic" and rnd() < TWO_SURNAMES_RATE else ""
        if last2 == last:
            last2 = ""
        middle = weighted(rng, *firsts) if rnd() < MIDDLE_NAME_RATE else ""
        if middle == first:
            middle = ""
        nicks = self.nicks.get(first, ())
        level = weighted(rng, _LEVELS, _LEVEL_CUM)
        title = rng.choice(TITLES_BY_LEVEL[level])
        calling = _CALLING.get(country.code, "1")
        direct = self._national(country.code) if rnd() < DIRECT_LINE_RATE or company is None else ""
        mobile = self._national(country.code) if rnd() < MOBILE_RATE else ""
        personal = ""
        if company is None or rnd() < PERSONAL_ADDRESS_RATE:
            personal = self.free_address(rng.choice(nicks) if nicks and rnd() < 0.2 else first, last, country)
        email, other = personal, ""
        if company is not None:
            work = self._work_address(company, nicks[0] if nicks and rnd() < NICKNAME_IN_EMAIL_RATE else first,
                                      last, middle, taken)
            roll = rnd()
            if company.role and roll < ROLE_ADDRESS_PERSON_RATE:
                email, other = company.role, work
            elif personal and roll < ROLE_ADDRESS_PERSON_RATE + FREE_MAIL_PRIMARY_RATE:
                email, other = personal, work
            else:
                email, other = work, personal
        return _Person(
            first=first, last=last, last2=last2, middle=middle, nicks=nicks,
            accented=_has_accents(first) or _has_accents(last) or _has_accents(last2),
            company=company, country=country, state=state, title=title, level=level,
            email=email, other=other, calling=calling, direct=direct, mobile=mobile,
        )

    def _work_address(self, company: _Company, first: str, last: str, middle: str, taken: set[str]) -> str:
        f, lw = _local(first), _local(last)
        local = _CONV_FORMATS[company.convention].format(f=f, l=lw, f0=f[0], l0=lw[0])
        if local in taken:  # a namesake colleague: middle initial, then a number
            if middle:
                local = f"{f}.{_local(middle)[0]}.{lw}"
            n = 1
            base = local
            while local in taken:
                n += 1
                local = f"{base}{n}"
        taken.add(local)
        return f"{local}@{company.domain}"

    def household(self, person: _Person) -> _Person:
        """A partner of ``person``: another true person, same surname, same free-mail address."""
        rng = self.rng
        culture = self._culture(person.country)
        first = weighted(rng, *self.pools[culture][0])
        while first == person.first:
            first = weighted(rng, *self.pools[culture][0])
        last = _local(person.last)
        local = rng.choice((f"{last}family", f"the{last}s", f"{_local(person.first)}and{_local(first)}",
                            f"{_local(first)}.{_local(person.first)}.{last}", f"{last}home"))
        shared = self._claim_free(local, rng.choice(("gmail.com", "yahoo.com", "hotmail.com", "icloud.com")))
        if person.email and person.company is not None:
            person.other = shared
        else:
            person.email, person.other = shared, person.email
        if not person.mobile:
            person.mobile = self._national(person.country.code)
        return _Person(
            first=first, last=person.last, last2="", middle="", nicks=self.nicks.get(first, ()),
            accented=_has_accents(first) or person.accented, company=None, country=person.country,
            state=person.state, title=rng.choice(TITLES_BY_LEVEL["individual"]), level="individual",
            email=shared, other="", calling=person.calling, direct=person.mobile, mobile="",
        )

    # --- records --------------------------------------------------------------------------------
    def record(self, p: _Person, dup: bool) -> tuple[str, ...]:
        """One record of ``p`` without its id: the first record (``dup`` False) or a duplicate."""
        rng = self.rng
        rnd = rng.random
        intern = self.strings.setdefault
        # names
        first, last = p.first, p.last
        if p.last2 and rnd() < 0.6:
            last = f"{last}-{p.last2}" if rnd() < 0.08 else f"{last} {p.last2}"
        if p.nicks and rnd() < (DUP_NICKNAME_RATE if dup else BASE_NICKNAME_RATE):
            first = rng.choice(p.nicks)
        if p.middle and rnd() < (DUP_MIDDLE_RATE if dup else BASE_MIDDLE_RATE):
            first = f"{first} {p.middle}" if rnd() < 0.4 else f"{first} {p.middle[0]}."
        if p.accented and rnd() < ACCENT_DROP_RATE:
            first, last = _strip_accents(first), _strip_accents(last)
        if dup:
            if rnd() < DUP_NAME_TYPO_RATE:
                if rnd() < 0.5:
                    first = mess.name_typo(rng, first)
                else:
                    last = mess.name_typo(rng, last)
            if rnd() < DUP_SWAPPED_NAME_RATE:
                first, last = last, first
            elif rnd() < DUP_INITIAL_ONLY_RATE:
                first = f"{first[0]}."
        if rnd() < CASE_RATE:
            first, last = (first.upper(), last.upper()) if rnd() < 0.6 else (first.lower(), last.lower())
        if rnd() < WHITESPACE_RATE:
            first = mess.junk_whitespace(rng, first)
        if rnd() < MISSING_FIRST_RATE:
            first = ""
        if rnd() < MISSING_LAST_RATE:
            last = ""
        # email
        email = p.email
        if dup:
            roll = rnd()
            if roll < DUP_OTHER_ADDRESS_RATE:
                email = p.other or email
            elif roll < DUP_OTHER_ADDRESS_RATE + DUP_EMAIL_TYPO_RATE:
                email = mess.email_typo(rng, email) if email else email
            elif roll < DUP_OTHER_ADDRESS_RATE + DUP_EMAIL_TYPO_RATE + DUP_NO_EMAIL_RATE:
                email = ""
            elif roll < DUP_OTHER_ADDRESS_RATE + DUP_EMAIL_TYPO_RATE + DUP_NO_EMAIL_RATE + DUP_EMAIL_VARIANT_RATE:
                email = _email_variant(rng, email) if email else email
        elif rnd() < BASE_EMAIL_VARIANT_RATE and email:
            email = _email_variant(rng, email)
        if rnd() < MISSING_EMAIL_RATE:
            email = ""
        # phone
        phone = ""
        if rnd() >= MISSING_PHONE_RATE:
            company = p.company
            if rnd() < JUNK_PHONE_RATE:
                phone = rng.choice(mess.JUNK_PHONES)
            elif p.direct and (company is None or rnd() >= SWITCHBOARD_RATE):
                number = p.mobile if p.mobile and rnd() < 0.3 else p.direct
                phone = mess.messy_phone(rng, p.calling, number)
            elif company is not None:
                calling = _CALLING.get(company.country.code, "1")
                phone = mess.messy_phone(rng, calling, company.switchboard)
                if rnd() < 0.3 and "ext" not in phone:
                    phone = f"{phone} x{rng.randint(100, 999)}"
            elif p.mobile:
                phone = mess.messy_phone(rng, p.calling, p.mobile)
        # company, website
        company = p.company
        if company is None:
            company_value = rng.choice(NO_COMPANY_VALUES) if rnd() < NO_COMPANY_VALUE_RATE else ""
            website = ""
        else:
            company_value = company.display
            if rnd() < MISSING_COMPANY_RATE:
                company_value = ""
            elif rnd() < (DUP_COMPANY_VARIANT_RATE if dup else BASE_COMPANY_VARIANT_RATE):
                company_value = intern(s := _company_variant(rng, company), s)
            website = ""
            if rnd() >= MISSING_WEBSITE_RATE:
                form = int(rnd() * len(_WEBSITE_FORMS))
                website = company.websites.get(form, "")
                if not website:
                    website = _WEBSITE_FORMS[form].format(d=company.domain, D=company.domain.upper())
                    company.websites[form] = website
        # title, place, source
        title = p.title
        if dup and rnd() < DUP_TITLE_CHANGE_RATE:
            title = rng.choice(TITLES_BY_LEVEL[p.level])
        if rnd() < MISSING_TITLE_RATE:
            title = ""
        elif rnd() < MESSY_TITLE_RATE:
            title = intern(s := mess.messy_title(rng, title), s)
        country = "" if rnd() < MISSING_COUNTRY_RATE else mess.messy_country(rng, p.country)
        state = ""
        if p.state and rnd() >= MISSING_STATE_RATE:
            state = mess.messy_state(rng, p.country, p.state)
        source = weighted(rng, _SOURCE_VALUES, _SOURCE_CUM)
        return (first, last, email, phone, company_value, website, title, country, state, source)

    # --- the run -------------------------------------------------------------------------------------
    def people(self) -> Iterable[list[_Person]]:
        """Groups of people: one company's people, or one person without a company."""
        rng = self.rng
        rnd = rng.random
        exponent = -1.0 / COMPANY_SIZE_ALPHA
        low, high = COMPANY_CAP_RANGE
        cap = min(high, max(low, self.rows // COMPANY_CAP_DIVISOR))
        while True:
            if rnd() < NO_COMPANY_GROUP_RATE:
                person = self.person(None, [], "", set())
                group = [person]
                if rnd() < HOUSEHOLD_MAIL_RATE:
                    group.append(self.household(person))
                yield group
                continue
            company = self.company()
            size = min(cap, int((1.0 - rnd()) ** exponent))
            if size > 15 or rnd() >= ROLE_ADDRESS_COMPANY_RATE:
                company.role = ""
            family = 2 <= size <= 12 and rnd() < FAMILY_COMPANY_RATE
            group = []
            taken: set[str] = set()
            family_last = ""
            for _ in range(size):
                person = self.person(company, group, family_last, taken)
                if family and not family_last:
                    family_last = person.last
                group.append(person)
                if rnd() < HOUSEHOLD_MAIL_RATE:
                    yield [self.household(person)]
            yield group

    def run(self) -> PeopleData:
        rng = self.rng
        rows = self.rows
        order = list(range(rows))
        rng.shuffle(order)  # the k-th record made lands at order[k]: duplicates are far apart
        width = max(7, len(str(rows)))
        out: list[tuple[str, ...]] = [()] * rows
        truth = [0] * rows
        k = 0
        person_id = 0
        for group in self.people():
            if k >= rows:
                break
            for person in group:
                if k >= rows:
                    break
                count = weighted(rng, _RECORD_COUNTS, _RECORD_CUM)
                for i in range(count):
                    if k >= rows:
                        break
                    pos = order[k]
                    out[pos] = (f"r{pos + 1:0{width}d}", *self.record(person, i > 0))
                    truth[pos] = person_id
                    k += 1
                person_id += 1
        return PeopleData(columns=COLUMNS, rows=out, truth=truth, seed=self.seed)


def _email_variant(rng: SeedRandom, email: str) -> str:
    """The same mailbox written differently: case, spaces, +tag, Gmail dots, googlemail.com."""
    local, _, domain = email.partition("@")
    roll = rng.random()
    if domain == "gmail.com" and roll < 0.35:
        if roll < 0.15:
            return f"{local}@googlemail.com"
        return f"{mess.gmail_dots(rng, local)}@{domain}"
    if roll < 0.55:
        return mess.email_variant(rng, email)  # case or +tag
    if roll < 0.75:
        return rng.choice((f" {email}", f"{email} ", f" {email}  "))
    return email.upper() if roll < 0.85 else f"{local[:1].upper()}{local[1:]}@{domain}"


def _company_variant(rng: SeedRandom, company: _Company) -> str:
    """The company as some other record writes it (suffix, case, "The", &/and, punctuation, domain)."""
    name, suffix = company.name, company.suffix
    roll = rng.random()
    if roll < 0.5:
        return mess.company_variant(rng, name, suffix)
    if roll < 0.6:
        if "&" in name:
            return mess.company_display(name.replace("&", "and"), suffix)
        if " and " in name:
            return mess.company_display(name.replace(" and ", " & "), suffix)
        return f"The {company.display}"
    if roll < 0.7:
        return re.sub(r"[.,&]", "", company.display).replace("  ", " ").strip()
    if roll < 0.8:
        words = [_ABBREVIATIONS.get(w, w) for w in name.split(" ")]
        return mess.company_display(" ".join(words), suffix) if words != name.split(" ") else name
    if roll < 0.88:
        return company.domain
    if roll < 0.95:
        return company.display.upper()
    return name.split(" ")[0] if " " in name else f"{name} {rng.choice(('Group', 'Holdings', 'Intl'))}"


def generate_people(rows: int, seed: int = 7) -> PeopleData:
    """Generate ``rows`` person records with the true person of each.

    Args:
        rows: number of records (non-negative).
        seed: seed of the one random stream everything is drawn from (non-negative).

    Returns:
        The records and their truth; the same arguments always give the same data.

    Raises:
        ValueError: when ``rows`` or ``seed`` is negative or not an int.
    """
    for name, value in (("rows", rows), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"generate_people({name}=...): must be a non-negative int, got {value!r}")
    import gc

    collecting = gc.isenabled()
    gc.disable()  # millions of tuples and no reference cycles: the collector would only rescan them
    try:
        return _Generator(seed, rows).run()
    finally:
        if collecting:
            gc.enable()


# --- files -----------------------------------------------------------------------------------------


def write_csv(data: PeopleData, path: Path | str, truth_path: Path | str | None = None) -> None:
    """Write the records as CSV (header ``COLUMNS``), and optionally the truth beside them.

    Args:
        data: generated data.
        path: the people CSV, the file ``relay match`` reads.
        truth_path: when given, a CSV ``id,person`` in the same row order (see ``read_truth``).
    """
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(data.columns)
        writer.writerows(data.rows)
    if truth_path is not None:
        with open(truth_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(("id", "person"))
            writer.writerows((row[0], person) for row, person in zip(data.rows, data.truth, strict=True))


def read_truth(path: Path | str, ids: Sequence[str] | None = None) -> list[int]:
    """The true person of each record, in file order, from a truth CSV ``write_csv`` wrote.

    Args:
        path: the truth CSV (header ``id,person``).
        ids: when given, the ids of the people CSV in its row order; each must match its truth row.

    Returns:
        The person of each row, index-aligned with the people CSV.

    Raises:
        ValueError: the header is not ``id,person``, a person is not an int, or the ids do not
            line up with ``ids`` (naming the file and line).
    """
    persons: list[int] = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != ["id", "person"]:
            raise ValueError(f"{path}: line 1: expected the header 'id,person', got {header!r}")
        for line, row in enumerate(reader, start=2):
            if len(row) != 2:
                raise ValueError(f"{path}: line {line}: expected 2 columns (id,person), got {len(row)}")
            try:
                persons.append(int(row[1]))
            except ValueError:
                raise ValueError(f"{path}: line {line}: person {row[1]!r} of id {row[0]!r} is not an int") from None
            if ids is not None:
                index = line - 2
                if index >= len(ids) or ids[index] != row[0]:
                    found = ids[index] if index < len(ids) else "no row"
                    raise ValueError(f"{path}: line {line}: id {row[0]!r} but the people file has {found!r} at row {index + 1}")
    if ids is not None and len(ids) != len(persons):
        raise ValueError(f"{path}: {len(persons)} truth rows for {len(ids)} people rows")
    return persons


# --- measuring the data ------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 18)
def _fold(text: str) -> str:
    return " ".join(_strip_accents(text).lower().split())


@lru_cache(maxsize=1 << 18)
def _company_key(text: str) -> str:
    words = re.sub(r"[^a-z0-9& ]+", " ", _fold(text).replace("&", " and ")).split()
    return " ".join(w for w in words if w not in _LEGAL_WORDS)


_COUNTRY_CODES: dict[str, str] = {
    _fold(alias): c.code for c in COUNTRIES for alias in (c.code, *c.aliases)
}


def _phone_key(phone: str) -> str:
    digits = "".join(ch for ch in re.split(r"ext|x", phone.lower())[0] if ch.isdigit())
    return digits[-9:] if len(digits) >= 7 else ""


def _involved(groups: Mapping[Any, list[int]], truth: Sequence[int]) -> int:
    """Rows in groups that hold more than one true person (each such row shares the key with another person)."""
    total = 0
    for members in groups.values():
        if len(members) > 1:
            first = truth[members[0]]
            if any(truth[m] != first for m in members):
                total += len(members)
    return total


def _similar(a: str, b: str) -> bool:
    """Confusable first names: one a prefix of the other, or one edit apart (Jon/John, Chris/Christine)."""
    if a == b:
        return False
    if a.startswith(b) or b.startswith(a):
        return min(len(a), len(b)) >= 3
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def describe(data: PeopleData) -> dict[str, Any]:
    """Measure the data: duplicates, messiness and hard negatives, from the rows and truth only.

    Hard negatives are counted as rows per 1,000 rows that share the key with a row of another
    true person (for ``similar_first_name_same_domain``: have a colleague of another person
    with a confusable first name).

    Args:
        data: generated data.

    Returns:
        A JSON-ready dict: ``rows``, ``persons``, ``records_per_person``, ``single_share``,
        ``largest_person``, ``missing`` (share of empty values per column), ``hard_negatives``
        (kind -> rows per 1,000), ``common_names`` (the five most common names and their people)
        and ``names_with_100_people``.
    """
    rows, truth = data.rows, data.truth
    n = len(rows)
    col = {name: i for i, name in enumerate(data.columns)}
    fi, la, em, ph, co, ct = (col[k] for k in ("first_name", "last_name", "email", "phone", "company", "country"))
    per_person = Counter(truth)
    names: dict[tuple[str, str], list[int]] = defaultdict(list)
    phones: dict[str, list[int]] = defaultdict(list)
    domains: dict[str, list[int]] = defaultdict(list)
    surname_domains: dict[tuple[str, str], list[int]] = defaultdict(list)
    role_mail: dict[str, list[int]] = defaultdict(list)
    free_mail: dict[str, list[int]] = defaultdict(list)
    company_names: dict[str, list[int]] = defaultdict(list)
    first_by_domain: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, row in enumerate(rows):
        first, last = _fold(row[fi]), _fold(row[la])
        if first and last:
            names[(first, last)].append(i)
        phone = _phone_key(row[ph])
        if phone:
            phones[phone].append(i)
        email = row[em].strip().lower()
        domain = email.rpartition("@")[2] if "@" in email else ""
        if domain and domain not in FREE_MAIL_DOMAINS:
            domains[domain].append(i)
            if last:
                surname_domains[(domain, last)].append(i)
            if first:
                given = first.split(" ")[0]
                first_by_domain[(domain, given[:2])][given].append(i)
            if email.partition("@")[0] in ROLE_LOCALS:
                role_mail[email].append(i)
        elif domain:
            free_mail[mess.email_key(email)].append(i)
        if row[co] and domain and domain not in FREE_MAIL_DOMAINS:
            key = _company_key(row[co])
            if key:
                company_names[key].append(i)
    per_mille = 1000.0 / n if n else 0.0
    similar_rows = 0
    for by_name in first_by_domain.values():
        if len(by_name) < 2:
            continue
        for a, members in by_name.items():
            others = {truth[m] for b, rows_b in by_name.items() if _similar(a, b) for m in rows_b}
            if others:
                similar_rows += sum(1 for m in members if len(others) > 1 or truth[m] not in others)
    same_name_companies = 0
    for members in company_names.values():
        doms = {rows[m][em].strip().lower().rpartition("@")[2] for m in members}
        if len(doms) > 1:
            same_name_companies += len(members)
    name_people = Counter({key: len({truth[m] for m in members}) for key, members in names.items()})
    hard = {
        "namesake": _involved(names, truth),
        "shared_phone": _involved(phones, truth),
        "colleagues_same_domain": _involved(domains, truth),
        "same_surname_same_domain": _involved(surname_domains, truth),
        "similar_first_name_same_domain": similar_rows,
        "shared_role_address": _involved(role_mail, truth),
        "shared_free_mail": _involved(free_mail, truth),
        "same_company_name_other_domain": same_name_companies,
    }
    return {
        "rows": n,
        "persons": len(per_person),
        "records_per_person": round(n / len(per_person), 3) if per_person else 0.0,
        "single_share": round(sum(1 for c in per_person.values() if c == 1) / len(per_person), 3) if per_person else 0.0,
        "largest_person": max(per_person.values(), default=0),
        "missing": {name: round(sum(1 for r in rows if not r[i]) / n, 3) if n else 0.0
                    for name, i in col.items() if name != "id"},
        "country_as_name": round(sum(1 for r in rows if r[ct] and r[ct] not in COUNTRY_BY_CODE) / n, 3) if n else 0.0,
        "hard_negatives": {kind: round(value * per_mille, 1) for kind, value in hard.items()},
        "common_names": [(" ".join(k), v) for k, v in name_people.most_common(5)],
        "names_with_100_people": sum(1 for v in name_people.values() if v >= 100),
    }


# --- command line ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, prog: str = "python -m crm_sandbox people") -> int:
    """``python -m crm_sandbox people --rows N [--seed S] --out people.csv [--truth truth.csv]``.

    Args:
        argv: the arguments after ``people`` (default: ``sys.argv[2:]``).
        prog: the command's name in usage and error messages.

    Returns:
        The exit code: 0 written, 1 a file could not be written (argparse exits 2 on bad arguments).
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write person records with realistic duplicates and hard negatives, and their "
        "ground truth, for dedupe benchmarks (the CSV is what `relay match` reads).",
    )
    parser.add_argument("--rows", type=int, required=True, help="number of records")
    parser.add_argument("--seed", type=int, default=7, help="seed (same seed, same file; default %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="the people CSV to write")
    parser.add_argument("--truth", type=Path, help="the truth CSV to write (id,person)")
    parser.add_argument("--stats", action="store_true", help="print the measured rates as JSON")
    args = parser.parse_args(sys.argv[2:] if argv is None else argv)
    if args.rows < 0:
        parser.error(f"--rows: must be 0 or more, got {args.rows}")
    if args.seed < 0:
        parser.error(f"--seed: must be 0 or more, got {args.seed}")
    started = time.perf_counter()
    data = generate_people(args.rows, args.seed)
    generated = time.perf_counter() - started
    try:
        write_csv(data, args.out, args.truth)
    except OSError as exc:
        print(f"{prog}: error: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    persons = len(set(data.truth))
    print(f"{len(data.rows)} records of {persons} people (seed {args.seed}) in {generated:.1f} s -> {args.out}"
          + (f", truth -> {args.truth}" if args.truth else ""))
    if args.stats:
        import json

        print(json.dumps(describe(data)))
    return 0
