"""Real (fictional) people: who they are, where they work, what they did on the website."""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from crm_sandbox.seed import messiness as mess
from crm_sandbox.seed._clock import recent_created
from crm_sandbox.seed._companies import Company
from crm_sandbox.seed._geo import Country, phone_digits, pick_country
from crm_sandbox.seed._names import (
    CULTURES_BY_COUNTRY,
    FIRST_NAMES,
    LAST_NAMES,
    LEVEL_WEIGHTS,
    TITLES_BY_LEVEL,
)
from crm_sandbox.seed._rand import cumulative, weighted

LEAD_SOURCES: tuple[tuple[str, int], ...] = (
    ("Web", 34), ("Paid Search", 14), ("LinkedIn", 12), ("Webinar", 10), ("Trade Show", 10),
    ("Partner Referral", 8), ("Purchased List", 12),
)
_SOURCES, _SOURCE_CUM = cumulative(LEAD_SOURCES)
_LEVELS, _LEVEL_CUM = cumulative(LEVEL_WEIGHTS)
# each culture repeated by its weight: one draw picks a culture by weight
_CULTURE_POOLS = {code: tuple(c for c, w in pairs for _ in range(w)) for code, pairs in CULTURES_BY_COUNTRY.items()}
_ANGLO_POOL = ("anglo",)

#: Engagement tiers: (share of people, page views, email clicks, form submissions, content
#: downloads, pricing page visits, webinar chance, demo chance). Skewed like a real funnel:
#: most people did little, a few per cent raised their hand.
#: People who fill in a form but are no buyer: students, job seekers, freelancers. They
#: leave most fields empty, use free mail more often and barely engage (the Cold band).
LOW_FIT_RATE = 0.36
LOW_FIT_TITLES = ("Student", "Intern", "Freelancer", "Job Seeker", "Teacher", "Retired", "Assistant")
#: Free-mail odds for low-fit people and for everyone else; together they average FREE_MAIL_RATE.
LOW_FIT_FREE_MAIL = 0.30
FIT_FREE_MAIL = (mess.FREE_MAIL_RATE - LOW_FIT_RATE * LOW_FIT_FREE_MAIL) / (1 - LOW_FIT_RATE)

ENGAGEMENT_TIERS: tuple[tuple[float, tuple[int, int], tuple[int, int], tuple[int, int],
                              tuple[int, int], tuple[int, int], float, float], ...] = (
    (0.45, (0, 2), (0, 0), (0, 0), (0, 0), (0, 0), 0.0, 0.0),
    (0.27, (1, 5), (0, 1), (0, 1), (0, 1), (0, 0), 0.03, 0.0),
    (0.14, (3, 15), (1, 3), (1, 1), (0, 2), (0, 1), 0.2, 0.02),
    (0.07, (8, 30), (2, 5), (1, 2), (1, 3), (1, 3), 0.5, 0.25),
    (0.07, (12, 60), (3, 8), (2, 4), (2, 4), (2, 6), 0.6, 0.9),
)


@dataclass(slots=True)
class Behaviour:
    """What a person did: the signals scoring reads."""

    page_views: int
    email_clicks: int
    form_submissions: int
    content_downloads: int
    pricing_page_visits: int
    webinar_attended: bool
    demo_requested: bool


@dataclass(slots=True)
class Person:
    """One real person, the truth behind one or more CRM records."""

    key: int
    first: str
    last: str
    email: str  # lower case, unique by email_key among all people
    company: Company
    at_account: bool  # the company exists as an account/company in the CRMs
    title: str
    level: str
    calling: str
    national: str
    country: Country
    state: str
    city: str
    lead_source: str
    behaviour: Behaviour
    opt_out: bool
    created: int  # ms since the epoch
    low_fit: bool


@lru_cache(maxsize=4096)
def ascii_fold(text: str) -> str:
    """``Jürgen Müller-Øst`` -> ``jurgen muller-ost``: what people type into email addresses."""
    text = text.replace("ß", "ss").replace("ø", "o").replace("Ø", "O").replace("æ", "ae")
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return folded.lower()


_LOCAL_CLEAN = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=4096)
def _local_word(name: str, fallback: str) -> str:
    return _LOCAL_CLEAN.sub("", ascii_fold(name)) or fallback


def _email_local(rng: random.Random, first: str, last: str, free: bool) -> str:
    f = _local_word(first, "x")
    last_part = _local_word(last, "y")
    if free:
        pattern = rng.randrange(5)
        if pattern == 0:
            return f"{f}.{last_part}"
        if pattern == 1:
            return f"{f}{last_part}"
        if pattern == 2:
            return f"{f}.{last_part}{rng.randint(1, 99)}"
        if pattern == 3:
            return f"{f[0]}{last_part}{rng.randint(70, 99)}"
        return f"{f}_{last_part}"
    roll = rng.random()
    if roll < 0.55:
        return f"{f}.{last_part}"
    if roll < 0.75:
        return f"{f[0]}{last_part}"
    if roll < 0.85:
        return f
    if roll < 0.93:
        return f"{f}{last_part[0]}"
    return f"{f}_{last_part}"


def draw_behaviour(rng: random.Random, lead_source: str, low_fit: bool = False) -> Behaviour:
    """Signals from a skewed engagement distribution (see ENGAGEMENT_TIERS; low fit: the first two)."""
    if low_fit and rng.random() < 0.75:  # filled in one form, never came back
        return Behaviour(0, 0, 1 if rng.random() < 0.3 else 0, 0, 0, False, False)
    roll = rng.random() * (0.6 if low_fit else 1.0)
    if roll < ENGAGEMENT_TIERS[0][0]:  # the silent majority: a page view or two at most
        attended = lead_source == "Webinar" and rng.random() < 0.7
        return Behaviour(rng.randint(0, 2), 0, 0, 0, 0, attended, False)
    acc = 0.0
    tier = ENGAGEMENT_TIERS[-1]
    for candidate in ENGAGEMENT_TIERS:
        acc += candidate[0]
        if roll < acc:
            tier = candidate
            break
    _, pv, ec, fs, cd, pp, webinar, demo = tier
    attended = rng.random() < webinar or (lead_source == "Webinar" and rng.random() < 0.7)
    return Behaviour(
        page_views=rng.randint(*pv), email_clicks=rng.randint(*ec), form_submissions=rng.randint(*fs),
        content_downloads=rng.randint(*cd), pricing_page_visits=rng.randint(*pp),
        webinar_attended=attended, demo_requested=rng.random() < demo,
    )


class PersonFactory:
    """Draws people with unique email keys (two people never share a mailbox)."""

    def __init__(self, rng: random.Random, anchor: int) -> None:
        self._rng = rng
        self._anchor = anchor
        self._keys: set[str] = set()
        self._suffix: dict[str, int] = {}  # address -> last number appended to it
        self._next = 0

    def claim(self, email: str) -> bool:
        """Reserve an address's dedupe key; False when another person already has it."""
        key = mess.email_key(email)
        if key in self._keys:
            return False
        self._keys.add(key)
        return True

    def unique_email(self, local: str, domain: str) -> str:
        """``local@domain``, numbered when the key is taken."""
        email = f"{local}@{domain}"
        if self.claim(email):
            return email
        n = self._suffix.get(email, 1)
        while True:
            n += 1
            numbered = f"{local}{n}@{domain}"
            if self.claim(numbered):
                self._suffix[email] = n
                return numbered

    def personal_email(self, person: Person) -> str:
        """A second, free-mail address of the same person (for the "personal_email" hard case)."""
        local = _email_local(self._rng, person.first, person.last, free=True)
        return self.unique_email(local, self._rng.choice(mess.FREE_MAIL_DOMAINS))

    def make(self, company: Company, at_account: bool) -> Person:
        """A new person working for ``company``."""
        rng = self._rng
        rnd = rng.random
        # people mostly live where their company is; a fifth are elsewhere (remote, branch office)
        country = company.country if rnd() < 0.8 else pick_country(rng)
        pool = _CULTURE_POOLS.get(country.code, _ANGLO_POOL)
        culture = pool[int(rnd() * len(pool))]
        first = rng.choice(FIRST_NAMES[culture])
        last = rng.choice(LAST_NAMES[culture])
        low_fit = rnd() < LOW_FIT_RATE
        free = rnd() < (LOW_FIT_FREE_MAIL if low_fit else FIT_FREE_MAIL)
        domain = rng.choice(mess.FREE_MAIL_DOMAINS) if free else company.domain
        email = self.unique_email(_email_local(rng, first, last, free), domain)
        source = weighted(rng, _SOURCES, _SOURCE_CUM)
        behaviour = draw_behaviour(rng, source, low_fit)
        level = weighted(rng, _LEVELS, _LEVEL_CUM)
        if company.employees < 10 and rnd() < 0.4:
            level = "c_level"
        elif behaviour.demo_requested and rnd() < 0.6:  # buyers ask for demos
            level = rng.choice(("c_level", "vp", "director"))
        title = rng.choice(LOW_FIT_TITLES if low_fit else TITLES_BY_LEVEL[level])
        calling, national = phone_digits(rng, country.code)
        if country is company.country:
            city, state = company.city, company.state
        else:
            city, state = rng.choice(country.cities)
        self._next += 1
        return Person(
            key=self._next, first=first, last=last, email=email, company=company,
            at_account=at_account, title=title, level=level, calling=calling, national=national,
            country=country, state=state, city=city, lead_source=source,
            behaviour=behaviour, opt_out=rnd() < mess.EMAIL_OPT_OUT_RATE,
            created=recent_created(rng, self._anchor), low_fit=low_fit,
        )



