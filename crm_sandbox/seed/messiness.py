"""How the seed data is messy, and how often.

Every rate is the probability of one independent draw per record (or per
person, for the duplicate rates) from the seed's own ``random.Random``, so a
run of N records shows each rate within a few points of its constant.
"""

from __future__ import annotations

import random
import string

from crm_sandbox.seed._geo import Country

# --- duplicates (per real person) ---------------------------------------------------------
#: A Salesforce lead's person also exists as a HubSpot contact.
CROSS_CRM_RATE = 0.25
#: A Salesforce lead's person was entered twice as a Salesforce lead.
SF_DUPLICATE_LEAD_RATE = 0.05
#: A HubSpot-only person exists twice in HubSpot (under a +tag or dotted gmail address).
HUBSPOT_DUPLICATE_RATE = 0.02
#: A Salesforce contact also exists as a HubSpot contact.
CONTACT_IN_HUBSPOT_RATE = 0.40
#: A Salesforce contact also came in again as a Salesforce lead.
CONTACT_AS_LEAD_RATE = 0.04
#: A lead's person works for a company that already is an account/company in the CRMs.
ACCOUNT_EMPLOYEE_RATE = 0.22
#: An account company is entered twice (a second account/company under a variant name).
ACCOUNT_DUPLICATE_RATE = 0.04

# --- how a duplicate record differs from the first one (per duplicate record) ------------------
#: The email differs in case, by a +tag, or (gmail) by dots.
EMAIL_VARIANT_RATE = 0.45
#: A one-letter typo (substitution or transposition) in the first or last name.
NAME_TYPO_RATE = 0.12
#: The first name is a nickname (Bob for Robert) when the person has one.
NICKNAME_RATE = 0.35
#: The company is written differently ("ACME Corporation" vs "Acme Corp").
COMPANY_VARIANT_RATE = 0.40
#: Hard cases, flagged in the ground truth: a typo in the email's local part ...
EMAIL_TYPO_RATE = 0.03
#: ... a personal address in one CRM and the work address in the other ...
PERSONAL_EMAIL_RATE = 0.03
#: ... or no email at all on the duplicate.
DUPLICATE_WITHOUT_EMAIL_RATE = 0.02

# --- field-level messiness (per record) ----------------------------------------------------------
#: The person uses a free-mail address (gmail, yahoo, hotmail, outlook).
FREE_MAIL_RATE = 0.15
MISSING_PHONE_RATE = 0.08
#: Of the phones present: junk such as "n/a" or "0000000000".
JUNK_PHONE_RATE = 0.02
#: Of the phones present and not junk: not in E.164 ("(415) 555-0134", "0044 20 ...", "ext. 12").
MESSY_PHONE_RATE = 0.55
MISSING_EMAIL_RATE = 0.02
MISSING_LAST_NAME_RATE = 0.01
MISSING_COMPANY_RATE = 0.03
MISSING_TITLE_RATE = 0.07
MISSING_COUNTRY_RATE = 0.05
#: Of the countries present: a name, alias or lower-case code instead of the ISO code.
COUNTRY_VARIANT_RATE = 0.35
#: Of the states present: a name or abbreviation instead of the code.
STATE_VARIANT_RATE = 0.30
#: The title's case or wording is off ("VP of SALES", "vp sales").
TITLE_VARIANT_RATE = 0.25
#: Leading, trailing or doubled spaces in a name or the company.
WHITESPACE_JUNK_RATE = 0.04
#: The person unsubscribed from email.
EMAIL_OPT_OUT_RATE = 0.06
#: HubSpot contacts (not opted out of all email, with a phone) opted out of the "One to One" sales email type.
SALES_EMAIL_OPT_OUT_RATE = 0.05

FREE_MAIL_DOMAINS: tuple[str, ...] = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com")
#: What Salesforce web-to-lead writes into required fields the form did not fill.
NOT_PROVIDED = "[not provided]"
JUNK_PHONES: tuple[str, ...] = ("n/a", "N/A", "-", "0000000000", "TBD", "none", "123")

_SUFFIX_SWAPS: dict[str, tuple[str, ...]] = {
    "Inc.": ("Inc", "Incorporated", ", Inc.", "inc"),
    "Inc": ("Inc.", ", Inc.", "Incorporated"),
    "Corp": ("Corporation", "Corp.", "CORP"),
    "Corporation": ("Corp", "Corp.", "Inc."),
    "LLC": ("L.L.C.", "llc", ""),
    "Ltd": ("Ltd.", "Limited", "LTD"),
    "Ltd.": ("Ltd", "Limited"),
    "Limited": ("Ltd", "Ltd."),
    "GmbH": ("GMBH", "Gmbh", ""),
    "B.V.": ("BV", "bv", ""),
}


def company_display(name: str, suffix: str) -> str:
    """The company name as its own people write it: name plus legal suffix."""
    return f"{name} {suffix}".strip() if suffix else name


def company_variant(rng: random.Random, name: str, suffix: str) -> str:
    """The same company written differently: other suffix, other case, comma, no suffix."""
    roll = rng.randrange(6)
    other = rng.choice(_SUFFIX_SWAPS.get(suffix, ("Inc.", "Ltd", "")))
    if roll == 0:
        return f"{name.upper()} {other}".replace(" ,", ",").strip()
    if roll == 1:  # "Acme, Inc." / "Acme, Ltd."
        return f"{name}, {'Ltd.' if suffix.startswith(('Ltd', 'Limited', 'Pty')) else 'Inc.'}"
    if roll == 2:
        return f"{name} {suffix}".lower().replace(".", "").replace(",", "").strip()
    if roll == 3:
        return name
    if roll == 4:
        return f"{name}{other}" if other.startswith(",") else f"{name} {other}".strip()
    return f"The {name} {suffix}".strip() if not name.startswith("The ") else name


def gmail_dots(rng: random.Random, local: str) -> str:
    """The same gmail local part with a dot inserted (gmail ignores dots)."""
    plain = local.replace(".", "")
    if len(plain) < 2:
        return local
    cut = rng.randrange(1, len(plain))
    variant = plain[:cut] + "." + plain[cut:]
    return variant if variant != local else plain


def email_variant(rng: random.Random, email: str) -> str:
    """The same mailbox written differently: case, +tag, or (gmail) dots."""
    local, domain = email.split("@", 1)
    choices = ["case", "tag"]
    if domain == "gmail.com" and len(local.replace(".", "")) > 1:
        choices.append("dots")
    kind = rng.choice(choices)
    if kind == "case":
        parts = local.split(".")
        local_v = ".".join(p[:1].upper() + p[1:] for p in parts)
        domain_v = domain[:1].upper() + domain[1:] if rng.random() < 0.5 else domain
        variant = f"{local_v}@{domain_v}"
        return variant if variant != email else email.upper()
    if kind == "tag":
        return f"{local}+{rng.choice(('crm', 'news', 'webinar', 'events', 'work', 'test'))}@{domain}"
    return f"{gmail_dots(rng, local)}@{domain}"


def name_typo(rng: random.Random, name: str) -> str:
    """A one-letter substitution or an adjacent transposition (never the first letter)."""
    if len(name) < 3:
        return name + name[-1:]
    i = rng.randrange(1, len(name) - 1)
    if rng.random() < 0.5 and name[i] != name[i + 1]:
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    letters = [c for c in string.ascii_lowercase if c != name[i].lower()]
    return name[:i] + rng.choice(letters) + name[i + 1 :]


def email_typo(rng: random.Random, email: str) -> str:
    """A typo in the local part of an address (it stays a valid address)."""
    local, domain = email.split("@", 1)
    letters = [i for i, c in enumerate(local) if c.isalpha()]
    if len(letters) < 2:
        return f"{local}x@{domain}"
    i = rng.choice(letters[1:])
    replacement = rng.choice([c for c in string.ascii_lowercase if c != local[i].lower()])
    return f"{local[:i]}{replacement}{local[i + 1:]}@{domain}"


def messy_phone(rng: random.Random, calling: str, national: str) -> str:
    """A phone number the way people type it (E.164 is the clean form)."""
    if rng.random() >= MESSY_PHONE_RATE:
        return f"+{calling}{national}"
    ext = f" ext. {rng.randint(1, 99)}" if rng.random() < 0.1 else ""
    if calling == "1":
        a, b, c = national[:3], national[3:6], national[6:]
        fmt = rng.choice((f"({a}) {b}-{c}", f"{a}.{b}.{c}", f"{a}-{b}-{c}", f"1-{a}-{b}-{c}",
                          f"+1 ({a}) {b}-{c}", f"{a}{b}{c}", f"+1 {a} {b} {c}"))
        return fmt + ext
    groups = f"{national[:2]} {national[2:6]} {national[6:]}".strip()
    fmt = rng.choice((f"+{calling} {groups}", f"00{calling} {groups}", f"0{groups}",
                      f"+{calling} (0) {groups}", f"+{calling}-{national}"))
    return fmt + ext


def messy_country(rng: random.Random, country: Country) -> str:
    """The ISO code, or (at COUNTRY_VARIANT_RATE) one of the country's other spellings."""
    if rng.random() < COUNTRY_VARIANT_RATE:
        return rng.choice(country.aliases)
    return country.code


def messy_state(rng: random.Random, country: Country, state: str) -> str:
    """The state code, or (at STATE_VARIANT_RATE) a name or abbreviation."""
    spellings = country.states.get(state)
    if spellings and rng.random() < STATE_VARIANT_RATE:
        return rng.choice(spellings)
    return state


_TITLE_WORDS = {"Vice President": "VP", "VP of": "VP", "Senior": "Sr.", "Sr.": "Senior",
                "Director of": "Dir.", "Manager": "Mgr", "Head of": "Head,"}


def messy_title(rng: random.Random, title: str) -> str:
    """The title with odd case or wording ("VP of SALES", "vp sales", "Sr Software Engineer")."""
    roll = rng.randrange(5)
    if roll == 0:
        return title.lower()
    if roll == 1:
        return title.upper()
    if roll == 2:
        words = title.split()
        return " ".join(w.upper() if i == len(words) - 1 else w for i, w in enumerate(words))
    if roll == 3:
        for long, short in _TITLE_WORDS.items():
            if long in title:
                return title.replace(long, short, 1).replace("  ", " ")
        return title.lower()
    return title.replace(" & ", " and ").replace(" of ", " ").lower().title()


def junk_whitespace(rng: random.Random, text: str) -> str:
    """The text with stray spaces, a tab or a doubled space."""
    roll = rng.randrange(4)
    if roll == 0:
        return f" {text}"
    if roll == 1:
        return f"{text}  "
    if roll == 2 and " " in text:
        return text.replace(" ", "  ", 1)
    return f"{text}\t"


def email_key(email: str) -> str:
    """The dedupe key of an address: lower case, no +tag, no dots in gmail local parts."""
    local, _, domain = email.strip().lower().partition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local = local.replace(".", "")
    return f"{local}@{domain}"
