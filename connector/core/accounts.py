"""Lead-to-account matching: which account a person belongs to, and why.

Seed 002 "Lead Capture / Duplicate check": company match -> associate to account; a
generic email domain -> manual research. Methods, strongest first (the first that finds
an account decides):

1. ``email_domain``: the email's host against the accounts' domains and websites, through
   the Public Suffix List (``shop.acme.com.au`` -> ``acme.com.au``); the same host scores
   1.0, a parent host 0.98, another host of the same registered domain 0.95.
2. ``website``: the person's website the same way (0.9 / 0.88 / 0.85).
3. ``company_name``: the cleaned company name (legal forms of every country, "The",
   punctuation) equal to the account's (0.8).
4. ``company_fuzzy``: a similar name (rapidfuzz, ``fuzzy_threshold`` of 100) that also
   agrees on its distinctive words; names made only of generic words ("Global Solutions
   Group") never match by name (0.75 x similarity).

Free-mail and disposable addresses never match by domain, and match by name only when the
name is exactly one account's (in the person's CRM when it has one there): they are
flagged ``manual_research``. Among the accounts a method finds, the preference is: the
person's own CRM, an active owner, the higher score, open opportunities, the most recent
activity, the most employees, the highest annual revenue, then the lowest record
reference, so the choice is deterministic and independent of the order accounts arrive in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rapidfuzz import fuzz, process

from connector.core._cache import value_cache
from connector.core._email import is_free_mail
from connector.core.matching.normalize import (
    company_key,
    is_disposable_domain,
    is_free_mail_domain,
    website_domain,
)
from connector.core.matching.normalize import (
    registered_domain as psl_domain,
)
from connector.core.models import (
    Account,
    AccountMatch,
    AccountMatchMethod,
    Finding,
    Owner,
    RecordRef,
)
from connector.core.rules import AccountMatchRules

OwnerIndex = Mapping[tuple[str | None, str], Owner]
"""Owners keyed by (connection, CRM owner id); connection ``None`` matches any."""

MANUAL_RESEARCH = "manual_research"
"""Finding code of a person whose email is free-mail or disposable (seed 002: manual research)."""

_DEFAULT_RULES = AccountMatchRules()
_MATCH_MEMO_MAX = 1 << 16
"""Answers an ``AccountIndex`` remembers per stage before starting over."""

TIE_BREAKS: tuple[str, ...] = (
    "same CRM", "active owner", "closer match", "open opportunities", "recent activity",
    "more employees", "higher annual revenue", "lowest record reference",
)
"""What each position of a candidate's rank means (named in ``AccountMatch.tie_break``)."""

_Rank = tuple[bool, bool, float, bool, float, int, float, tuple[str, str, str]]


@value_cache
def site_host(value: str | None) -> str | None:
    """Return the host of a domain or website, lower-case, without ``www.`` or port.

    ``https://www.Acme.example/about`` -> ``acme.example``. ``None`` when empty.
    Cached per distinct value: ``urlsplit`` is the costly part of indexing accounts.
    (The registrable domain through the Public Suffix List is ``matching.normalize``'s.)
    """
    if not value or not value.strip():
        return None
    text = value.strip().lower()
    if "://" not in text:
        text = "//" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    return host if "." in host else None


def account_domains(account: Account) -> set[str]:
    """Return the hosts an account is known by (its domain and website host)."""
    found = {site_host(account.domain), site_host(account.website)}
    return {d for d in found if d}


def account_owner(account: Account, owners: OwnerIndex) -> Owner | None:
    """Return the owner of ``account`` from an index built by ``owners_by_id``."""
    if not account.owner_id:
        return None
    found = owners.get((account.ref.connection, account.owner_id))
    return found if found is not None else owners.get((None, account.owner_id))


def owners_by_id(owners: Iterable[Owner]) -> dict[tuple[str | None, str], Owner]:
    """Index owners by (connection, id); an owner without a connection is (None, id)."""
    return {(owner.connection, owner.id): owner for owner in owners}


@value_cache
def is_generic_mail(domain: str | None) -> bool:
    """True for a free-mail or disposable email domain (a person's, not a company's)."""
    if not domain:
        return False
    return is_free_mail(domain) or is_free_mail_domain(domain) or is_disposable_domain(domain) \
        or is_free_mail_domain(psl_domain(domain))


@dataclass(frozen=True, slots=True)
class AccountFound:
    """The account a person matched and how (``AccountMatch``, as the decision keeps it)."""

    account: Account
    match: AccountMatch


@dataclass(frozen=True, slots=True)
class _Entry:
    account: Account
    hosts: frozenset[str]
    registered: frozenset[str]
    name_key: str


@dataclass(frozen=True, slots=True)
class _Candidate:
    account: Account
    score: float
    detail: str


def _ref_sort_key(ref: RecordRef) -> tuple[str, str, str]:
    return (ref.connection, ref.object, ref.crm_id)


def _host_score(host: str, hosts: frozenset[str]) -> int:
    """2: the same host; 1: an account host is a parent of ``host``; 0: the same registered domain only."""
    if host in hosts:
        return 2
    return 1 if any(host.endswith("." + h) for h in hosts) else 0


_HOST_SCORES: dict[str, tuple[float, float, float]] = {
    "email_domain": (0.95, 0.98, 1.0),
    "website": (0.85, 0.88, 0.9),
}


class AccountIndex:
    """Accounts by host, registered domain and cleaned name, for matching many people fast.

    Build it once per run and keep it up to date with :meth:`add` (a new or changed
    account) and :meth:`remove` (a deleted one) rather than rebuilding it for every page.
    One entry per account reference: adding an account whose ``ref`` is already indexed
    replaces it. Answers are remembered per stage value (email domain, website, company
    name) and connection; changing the accounts, the owners or the rules forgets them.
    """

    def __init__(self, accounts: Iterable[Account] = ()) -> None:
        self._by_ref: dict[RecordRef, _Entry] = {}
        self._by_registered: dict[str, dict[RecordRef, Account]] = {}
        self._by_host: dict[str, dict[RecordRef, Account]] = {}
        self._by_name: dict[str, dict[RecordRef, Account]] = {}
        self._blocks: dict[str, set[str]] | None = None  # fuzzy blocks, built on first use
        self._distinct: dict[str, str] = {}  # name key -> its distinctive words (with the blocks)
        self._memo: dict[tuple[str | None, ...], AccountFound | None] = {}
        self._owners_key: tuple[Owner, ...] | None = None
        self._owners_seen: Sequence[Owner] | None = None
        self._owner_index: OwnerIndex = {}
        self._rules: AccountMatchRules = _DEFAULT_RULES
        self._generic: frozenset[str] = frozenset(_DEFAULT_RULES.generic_words)
        for account in accounts:
            self.add(account)

    def __len__(self) -> int:
        return len(self._by_ref)

    def __iter__(self) -> Iterator[Account]:
        return (entry.account for entry in self._by_ref.values())

    def __contains__(self, ref: object) -> bool:
        return ref in self._by_ref

    # ------------------------------------------------------------------ upkeep
    def add(self, account: Account) -> None:
        """Index ``account``, replacing the indexed account with the same ``ref``, if any."""
        self.remove(account.ref)
        self._forget()
        hosts = frozenset(h for h in account_domains(account) if website_domain(h) is not None)
        registered = frozenset(r for r in (psl_domain(h) for h in hosts) if r)
        entry = _Entry(account, hosts, registered, company_key(account.name))
        self._by_ref[account.ref] = entry
        for host in hosts:
            self._by_host.setdefault(host, {})[account.ref] = account
        for domain in registered:
            self._by_registered.setdefault(domain, {})[account.ref] = account
        if entry.name_key:
            self._by_name.setdefault(entry.name_key, {})[account.ref] = account

    def update(self, accounts: Iterable[Account]) -> None:
        """Index each of ``accounts`` (new ones added, known ones replaced)."""
        for account in accounts:
            self.add(account)

    def remove(self, ref: RecordRef) -> Account | None:
        """Forget the account ``ref`` (deleted or merged away); return it, or ``None`` if unknown."""
        entry = self._by_ref.pop(ref, None)
        if entry is None:
            return None
        self._forget()
        for table, keys in ((self._by_host, entry.hosts), (self._by_registered, entry.registered),
                            (self._by_name, (entry.name_key,) if entry.name_key else ())):
            for key in keys:
                bucket = table.get(key)
                if bucket is not None:
                    bucket.pop(ref, None)
                    if not bucket:
                        del table[key]
        return entry.account

    def _forget(self) -> None:
        self._memo.clear()
        self._blocks = None

    def _use(self, owners: Sequence[Owner], rules: AccountMatchRules) -> None:
        """Forget remembered answers when the owners or rules differ from the last call's.

        The same owners object as last time is the common case (a page decides all its people
        with one list): it is recognised by identity, without comparing every owner.
        """
        if owners is self._owners_seen:
            owners_key = self._owners_key
        else:
            owners_key = tuple(owners)
            self._owners_seen = owners
        if self._owners_key != owners_key:
            self._memo.clear()
            self._owners_key = owners_key
            self._owner_index = owners_by_id(owners)
        if rules is not self._rules:
            if rules != self._rules:
                self._memo.clear()
                self._blocks = None
                self._generic = frozenset(rules.generic_words)
            self._rules = rules

    # ------------------------------------------------------------------ matching
    def match(self, email_domain: str | None, connection: str | None, owners: Sequence[Owner]) -> Account | None:
        """The account ``email_domain`` matches (email domain only; see :meth:`match_person`)."""
        found = self.match_person(email_domain, None, None, connection, owners)
        return found.account if found is not None and found.match.method == "email_domain" else None

    def match_person(
        self,
        email_domain: str | None,
        website: str | None,
        company: str | None,
        connection: str | None,
        owners: Sequence[Owner],
        rules: AccountMatchRules | None = None,
    ) -> AccountFound | None:
        """Return the account a person belongs to and how, or ``None``.

        Args:
            email_domain: The host of the person's email (hygiene's ``email_domain``).
            website: The person's website, as typed (a URL or a host).
            company: The person's company name, as typed.
            connection: The person's connection (accounts there are preferred).
            owners: CRM owners (accounts with an active owner are preferred).
            rules: The ``accounts`` section of the matching rules (defaults when ``None``).
        """
        rules = rules if rules is not None else _DEFAULT_RULES
        self._use(owners, rules)
        person_key = ("person", email_domain, website, company, connection)
        if person_key in self._memo:
            return self._memo[person_key]
        found = self._match_person(email_domain, website, company, connection, rules)
        if len(self._memo) >= _MATCH_MEMO_MAX:
            self._memo.clear()
        self._memo[person_key] = found
        return found

    def _match_person(self, email_domain: str | None, website: str | None, company: str | None,
                      connection: str | None, rules: AccountMatchRules) -> AccountFound | None:
        generic = is_generic_mail(email_domain)
        methods = rules.methods
        if email_domain and not generic and "email_domain" in methods:
            found = self._remembered("email_domain", email_domain, connection)
            if found is not None:
                return found
        if website and "website" in methods:
            host = site_host(website)
            # a page on a shared site (a LinkedIn profile, a Wix page) names no organisation
            if host and not is_generic_mail(host) and website_domain(website) is not None:
                found = self._remembered("website", host, connection)
                if found is not None:
                    return found
        key = company_key(company) if company else ""
        if not key:
            return None
        if "company_name" in methods:
            stage = "company_name_unique" if generic else "company_name"
            if not generic or rules.free_mail_by_name:
                found = self._remembered(stage, key, connection)
                if found is not None:
                    return found
        if not generic and "company_fuzzy" in methods:
            return self._remembered("company_fuzzy", key, connection)
        return None

    def _remembered(self, stage: str, value: str, connection: str | None) -> AccountFound | None:
        memo_key = (stage, value, connection)
        if memo_key in self._memo:
            return self._memo[memo_key]
        if len(self._memo) >= _MATCH_MEMO_MAX:
            self._memo.clear()
        found = self._memo[memo_key] = self._find(stage, value, connection)
        return found

    def _find(self, stage: str, value: str, connection: str | None) -> AccountFound | None:
        method: AccountMatchMethod
        if stage in ("email_domain", "website"):
            method = "email_domain" if stage == "email_domain" else "website"
            candidates = self._by_domain(method, value)
        elif stage == "company_name":
            method = "company_name"
            candidates = self._by_exact_name(value)
        elif stage == "company_name_unique":
            method = "company_name"
            candidates = self._by_exact_name(value)
            mine = [c for c in candidates if c.account.ref.connection == connection]
            if len(mine if mine else candidates) != 1:
                return None
            candidates = mine or candidates
        else:
            method = "company_fuzzy"
            candidates = self._by_fuzzy_name(value)
        return self._best(method, candidates, connection)

    def _by_domain(self, method: str, host: str) -> list[_Candidate]:
        domain = psl_domain(host)
        bucket = self._by_registered.get(domain) if domain else None
        if not bucket:
            # A host the Public Suffix List gives no registered domain (an intranet name):
            # only the same host matches.
            bucket = self._by_host.get(host)
            if not bucket:
                return []
        scores = _HOST_SCORES[method]
        label = "email domain" if method == "email_domain" else "website"
        found = []
        for ref, account in bucket.items():
            entry = self._by_ref[ref]
            closeness = _host_score(host, entry.hosts)
            shown = host if closeness == 2 else f"{host} ~ {', '.join(sorted(entry.hosts))}"
            found.append(_Candidate(account, scores[closeness], f"{label} {shown}"))
        return found

    def _by_exact_name(self, key: str) -> list[_Candidate]:
        if self._is_generic(key):
            return []
        bucket = self._by_name.get(key)
        if not bucket:
            return []
        return [_Candidate(a, 0.8, f"company name '{key}'") for a in bucket.values()]

    def _distinctive(self, key: str) -> str:
        return " ".join(w for w in key.split() if w not in self._generic)

    def _is_generic(self, key: str) -> bool:
        return not self._distinctive(key)

    def _grams(self, distinctive: str) -> set[str]:
        return {g for w in distinctive.split() if len(w) >= 3 for g in (w[:3], w[-3:])}

    def _fuzzy_blocks(self) -> dict[str, set[str]]:
        """Account names by the first and last three letters of each distinctive word.

        Only names whose distinctive words are long enough for a fuzzy match are blocked.
        """
        if self._blocks is None:
            blocks: dict[str, set[str]] = {}
            distinct: dict[str, str] = {}
            least = self._rules.fuzzy_min_length
            for key in self._by_name:
                words = self._distinctive(key)
                if len(words.replace(" ", "")) < least:
                    continue
                distinct[key] = words
                for gram in self._grams(words):
                    blocks.setdefault(gram, set()).add(key)
            self._blocks, self._distinct = blocks, distinct
        return self._blocks

    def _by_fuzzy_name(self, key: str) -> list[_Candidate]:
        rules = self._rules
        distinctive = self._distinctive(key)
        if len(distinctive.replace(" ", "")) < rules.fuzzy_min_length:
            return []
        blocks = self._fuzzy_blocks()
        names: set[str] = set()
        for gram in self._grams(distinctive):
            block = blocks.get(gram)
            if block and len(block) <= rules.fuzzy_block_limit:
                names.update(block)
        names.discard(key)  # the same name is company_name's (guarded there)
        if not names:
            return []
        cutoff = rules.fuzzy_threshold
        distinct = self._distinct
        # The distinctive words first (rapidfuzz compares the whole block in C), then the
        # whole names of the few that pass.
        close = process.extract(distinctive, {name: distinct[name] for name in names}, scorer=fuzz.ratio,
                                score_cutoff=cutoff, limit=None)
        best = 0.0
        best_names: list[str] = []
        for _, similar, name in close:
            whole = fuzz.token_sort_ratio(key, name, score_cutoff=cutoff)
            score = min(whole, similar)
            if not whole or score < best:
                continue
            if score > best:
                best, best_names = score, []
            best_names.append(name)
        best_names.sort()
        found = []
        for name in best_names:
            for account in self._by_name[name].values():
                found.append(_Candidate(account, round(0.75 * best / 100, 4),
                                        f"company name '{key}' ~ '{name}' ({best:.0f}%)"))
        return found

    def _rank(self, candidate: _Candidate, connection: str | None) -> _Rank:
        account = candidate.account
        owner = account_owner(account, self._owner_index)
        activity = account.last_activity_at
        return (
            account.ref.connection != connection,
            not (owner is not None and owner.active),
            -candidate.score,
            not (account.open_opportunities or 0) > 0,
            -activity.timestamp() if activity is not None else float("inf"),
            -(account.employees or 0),
            -(account.annual_revenue or 0.0),
            _ref_sort_key(account.ref),
        )

    def _best(self, method: AccountMatchMethod, candidates: list[_Candidate],
              connection: str | None) -> AccountFound | None:
        if not candidates:
            return None
        if len(candidates) == 1:
            only = candidates[0]
            return AccountFound(only.account, AccountMatch(only.account.ref, method, only.score, only.detail))
        ranked = sorted(((self._rank(c, connection), c) for c in candidates), key=lambda rc: rc[0])
        (best_rank, best), (second_rank, _) = ranked[0], ranked[1]
        decided_by = next(i for i, (a, b) in enumerate(zip(best_rank, second_rank, strict=True)) if a != b)
        return AccountFound(best.account, AccountMatch(
            best.account.ref, method, best.score, best.detail, candidates=len(candidates),
            tie_break=TIE_BREAKS[decided_by]))


def match_account(
    email_domain: str | None,
    accounts: AccountIndex | Sequence[Account],
    owners: OwnerIndex | None = None,
    connection: str | None = None,
) -> Account | None:
    """Return the account a person belongs to by email domain only, if any.

    Free-mail domains never match. A subdomain (``eu.acme.example``) matches its parent
    account. Among several accounts the preference is that of :class:`AccountIndex`
    (same connection, active owner, the closer host, open opportunities, recent activity,
    size, lowest reference).

    Args:
        email_domain: The person's email domain (from hygiene).
        accounts: Known accounts (an ``AccountIndex`` for many lookups).
        owners: Owners from ``owners_by_id``, to prefer accounts with an active owner.
        connection: The person's connection, to prefer accounts in the same CRM.
    """
    if not email_domain:
        return None
    index = accounts if isinstance(accounts, AccountIndex) else AccountIndex(accounts)
    owner_list = list((owners or {}).values())
    return index.match(email_domain, connection, owner_list)


def manual_research_finding(ref: RecordRef, email_domain: str, found: AccountFound | None) -> Finding:
    """The finding of a person whose email domain is free-mail or disposable (seed 002)."""
    if found is None:
        outcome = "no account matched: find the company by hand"
    else:
        outcome = (f"matched account {found.account.name or found.account.ref} by its exact company name "
                   "only: confirm it")
    return Finding(ref, "email", MANUAL_RESEARCH,
                   f"generic email domain {email_domain} (free-mail or disposable): {outcome}", email_domain)


def match_summary(match: AccountMatch) -> dict[str, Any]:
    """The match as the audit log shows it (method, score, detail, tie-breaker)."""
    return {"account": str(match.account), "method": match.method, "score": match.score,
            "detail": match.detail, "candidates": match.candidates, "tie_break": match.tie_break}
