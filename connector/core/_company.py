"""Company name cleaning and the matching key (pure helpers)."""

from __future__ import annotations

import re

# Legal suffixes: canonical spelling by lower-case, dot-free form.
LEGAL_SUFFIXES: dict[str, str] = {
    "inc": "Inc", "incorporated": "Incorporated", "llc": "LLC", "llp": "LLP", "lp": "LP",
    "ltd": "Ltd", "limited": "Limited", "gmbh": "GmbH", "ag": "AG", "sa": "SA",
    "sas": "SAS", "sarl": "SARL", "srl": "SRL", "spa": "SpA", "bv": "BV", "nv": "NV",
    "corp": "Corp", "corporation": "Corporation", "co": "Co", "company": "Company",
    "plc": "PLC", "pty": "Pty", "pte": "Pte", "ab": "AB", "as": "AS", "oy": "Oy",
    "kk": "KK", "kg": "KG", "se": "SE", "ulc": "ULC", "lda": "Lda", "sl": "SL",
}
_PUNCT_RE = re.compile(r"[^\w\s&]")


def _case_word(word: str) -> str:
    """Capitalise an ASCII word; other scripts are kept as typed (stable casing)."""
    if not word.isascii():
        return word
    return word[:1].upper() + word[1:].lower()


def recase(text: str, *, keep_short_caps: bool) -> str:
    """Capitalise each word of an all-caps or all-lower-case ``text``.

    Mixed-case text is returned unchanged, which makes the function idempotent.
    With ``keep_short_caps`` an all-caps word of up to 3 letters (``IBM``) is kept.
    """
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return text
    all_upper = all(c.isupper() for c in letters)
    all_lower = all(c.islower() for c in letters)
    if not (all_upper or all_lower):
        return text
    words = []
    for word in text.split(" "):
        bare = word.lower().rstrip(".,")
        if keep_short_caps and bare in LEGAL_SUFFIXES and word.isascii():
            words.append(word.lower().replace(bare, LEGAL_SUFFIXES[bare], 1))
        elif keep_short_caps and all_upper and sum(c.isalpha() for c in word) <= 3:
            words.append(word)
        else:
            words.append(_case_word(word))
    return " ".join(words)


def clean_company(raw: str) -> str:
    """Trim, collapse whitespace and fix shouting/lower-case names.

    ``ACME WIDGETS INC`` becomes ``Acme Widgets Inc``; short all-caps words (``IBM``)
    are kept as likely acronyms; mixed-case names are left as typed. Idempotent.
    """
    text = re.sub(r"\s+", " ", raw).strip()
    return recase(text, keep_short_caps=True)


def company_key(name: str | None) -> str | None:
    """Return a matching key: lower-case, no punctuation, no legal suffixes.

    ``Acme, Inc.`` and ``ACME Inc`` both give ``acme``.
    """
    if not name:
        return None
    text = _PUNCT_RE.sub(" ", name.lower())
    words = text.split()
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    key = " ".join(words)
    return key or None
