"""Identity: who is the same person, and which account a person belongs to.

Seed 002 "Lead Capture / Duplicate check": email match -> same person; company match
-> associate to account. Keys are deterministic so that the same records always give
the same identity ids, whatever order they arrive in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from connector.core._cache import value_cache
from connector.core._email import clean_email, extract_address, is_free_mail
from connector.core.models import Account, Owner, Person, RecordRef

_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

OwnerIndex = Mapping[tuple[str | None, str], Owner]
"""Owners keyed by (connection, CRM owner id); connection ``None`` matches any."""


@dataclass(frozen=True, slots=True)
class IdentityCluster:
    """Records that are the same person, in either CRM.

    A plain frozen dataclass: the core builds one per person on the hot path and never
    serialises it (``LeadDecision`` carries its ``identity_id`` and ``key``).

    Attributes:
        identity_id: Deterministic id (``p_`` + 16 hex), stable for the same key.
        key: The normalised email, or ``None`` for a record without a valid email
            (such a record is a cluster of its own).
        members: The member records, sorted by connection/object/crm_id.
    """

    identity_id: str
    key: str | None
    members: tuple[RecordRef, ...]


@value_cache
def person_key(email: str | None) -> str | None:
    """Return the identity key of an email address, or ``None`` if it is not valid.

    The address is taken from messy field values by ``extract_address`` (display
    names, ``mailto:``, several addresses, IDN domains as punycode). Lower-case;
    ``+tags`` are dropped for every provider; for gmail and googlemail the dots of the
    local part are dropped too and the domain becomes ``gmail.com``. Dots are kept
    elsewhere (Outlook/Hotmail/Yahoo treat them as significant), and Yahoo ``-``
    aliases are kept: a wrong merge is worse than a missed one. Never raises.
    Cached per distinct value (the pipeline asks for the same emails several times).
    """
    address = extract_address(email)
    if address is None:
        return None
    local, domain = address.split("@")
    local = local.split("+", 1)[0]
    if domain in _GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    if not local:
        return None
    return f"{local}@{domain}"


@value_cache
def registered_domain(value: str | None) -> str | None:
    """Return the host of a domain or website, lower-case, without ``www.`` or port.

    ``https://www.Acme.example/about`` -> ``acme.example``. ``None`` when empty.
    Cached per distinct value: ``urlsplit`` is the costly part of indexing accounts.
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


def _identity_id(seed: str) -> str:
    return "p_" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:16]


def record_identity_id(ref: RecordRef) -> str:
    """Identity id of a record that has no email key (a cluster of its own)."""
    return _identity_id("record:" + str(ref))


def _ref_sort_key(ref: RecordRef) -> tuple[str, str, str]:
    return (ref.connection, ref.object, ref.crm_id)


def cluster_people(people: Iterable[Person]) -> list[IdentityCluster]:
    """Group people from all CRMs by identity key.

    Returns:
        Clusters sorted by identity id; each record is in exactly one cluster.
    """
    clusters = cluster_keys((person.ref, person_key(person.email)) for person in people)
    return sorted(clusters, key=lambda c: c.identity_id)


def cluster_keys(keyed: Iterable[tuple[RecordRef, str | None]]) -> list[IdentityCluster]:
    """Group records by identity key already computed (see :func:`person_key`).

    The decision core computes each person's key once and clusters with it; a record
    without a key (``None``) is a cluster of its own.

    Returns:
        Clusters in the order of their first record in ``keyed``; members are sorted by
        connection/object/crm_id, and a record listed twice is one member.
    """
    groups: dict[str | RecordRef, tuple[str | None, list[RecordRef]]] = {}
    for ref, key in keyed:
        group = groups.get(key if key is not None else ref)
        if group is None:
            groups[key if key is not None else ref] = (key, [ref])
        else:
            group[1].append(ref)
    clusters: list[IdentityCluster] = []
    for group_key, (key, refs) in groups.items():
        if key is None:
            assert isinstance(group_key, RecordRef)
            clusters.append(IdentityCluster(record_identity_id(group_key), None, (group_key,)))
        else:
            members = tuple(sorted(set(refs), key=_ref_sort_key)) if len(refs) > 1 else tuple(refs)
            clusters.append(IdentityCluster(_identity_id("email:" + key), key, members))
    return clusters


def account_domains(account: Account) -> set[str]:
    """Return the domains an account is known by (its domain and website host)."""
    found = {registered_domain(account.domain), registered_domain(account.website)}
    return {d for d in found if d}


_MATCH_MEMO_MAX = 1 << 16
"""Matches an ``AccountIndex`` remembers (by email domain and connection) before starting over."""


class AccountIndex:
    """Accounts by domain, for fast matching of many people against many accounts.

    Build it once per run and keep it up to date with :meth:`add` (a new or changed
    account) and :meth:`remove` (a deleted one) rather than rebuilding it for every page:
    indexing parses every account's domain and website. One entry per account
    reference: adding an account whose ``ref`` is already indexed replaces it.
    """

    def __init__(self, accounts: Iterable[Account] = ()) -> None:
        self._by_domain: dict[str, dict[RecordRef, Account]] = {}
        self._by_ref: dict[RecordRef, tuple[Account, frozenset[str]]] = {}
        self._matches: dict[tuple[str, str | None], Account | None] = {}
        self._matches_owners: tuple[Owner, ...] | None = None
        self._owner_index: OwnerIndex = {}
        for account in accounts:
            self.add(account)

    def __len__(self) -> int:
        return len(self._by_ref)

    def __iter__(self) -> Iterator[Account]:
        return (account for account, _ in self._by_ref.values())

    def __contains__(self, ref: object) -> bool:
        return ref in self._by_ref

    def add(self, account: Account) -> None:
        """Index ``account``, replacing the indexed account with the same ``ref``, if any."""
        self.remove(account.ref)
        self._matches.clear()
        domains = frozenset(account_domains(account))
        self._by_ref[account.ref] = (account, domains)
        for domain in domains:
            self._by_domain.setdefault(domain, {})[account.ref] = account

    def update(self, accounts: Iterable[Account]) -> None:
        """Index each of ``accounts`` (new ones added, known ones replaced)."""
        for account in accounts:
            self.add(account)

    def remove(self, ref: RecordRef) -> Account | None:
        """Forget the account ``ref`` (deleted or merged away); return it, or ``None`` if unknown."""
        found = self._by_ref.pop(ref, None)
        if found is None:
            return None
        self._matches.clear()
        account, domains = found
        for domain in domains:
            bucket = self._by_domain.get(domain)
            if bucket is not None:
                bucket.pop(ref, None)
                if not bucket:
                    del self._by_domain[domain]
        return account

    def match(self, email_domain: str | None, connection: str | None, owners: Sequence[Owner]) -> Account | None:
        """:func:`match_account` against this index, remembered per (email domain, connection).

        Many people share a company domain, page after page. The answer depends on the
        accounts (adding or removing one forgets every answer) and on the owners (asked
        with other owners than last time, it forgets them too).
        """
        if email_domain is None:
            return None
        if self._matches_owners != tuple(owners):
            self._matches.clear()
            self._matches_owners = tuple(owners)
            self._owner_index = owners_by_id(owners)
        key = (email_domain, connection)
        if key in self._matches:
            return self._matches[key]
        if len(self._matches) >= _MATCH_MEMO_MAX:
            self._matches.clear()
        found = self._matches[key] = match_account(email_domain, self, self._owner_index, connection)
        return found

    def candidates(self, email_domain: str) -> list[tuple[Account, bool]]:
        """Accounts whose domain is ``email_domain`` or a parent of it, with exactness."""
        found: list[tuple[Account, bool]] = []
        labels = email_domain.split(".")
        for i in range(len(labels) - 1):
            bucket = self._by_domain.get(".".join(labels[i:]))
            if bucket:
                found.extend((a, i == 0) for a in bucket.values())
        return found


def match_account(
    email_domain: str | None,
    accounts: AccountIndex | Sequence[Account],
    owners: OwnerIndex | None = None,
    connection: str | None = None,
) -> Account | None:
    """Return the account a person belongs to by email domain, if any.

    Free-mail domains never match. A subdomain (``eu.acme.example``) matches its
    parent account. When several accounts match, the preference is: same connection
    as the person, an active owner, the exact domain over a parent domain, then the
    lowest record reference (so the choice is deterministic).

    Args:
        email_domain: The person's email domain (from hygiene).
        accounts: Known accounts (an ``AccountIndex`` for many lookups).
        owners: Owners from ``owners_by_id``, to prefer accounts with an active owner.
        connection: The person's connection, to prefer accounts in the same CRM.
    """
    if not email_domain or is_free_mail(email_domain):
        return None
    index = accounts if isinstance(accounts, AccountIndex) else AccountIndex(accounts)
    best: tuple[tuple[int, int, int, tuple[str, str, str]], Account] | None = None
    for account, exact in index.candidates(email_domain):
        owner = account_owner(account, owners or {})
        rank = (
            0 if account.ref.connection == connection else 1,
            0 if owner is not None and owner.active else 1,
            0 if exact else 1,
            _ref_sort_key(account.ref),
        )
        if best is None or rank < best[0]:
            best = (rank, account)
    return best[1] if best else None


def account_owner(account: Account, owners: OwnerIndex) -> Owner | None:
    """Return the owner of ``account`` from an index built by ``owners_by_id``."""
    if not account.owner_id:
        return None
    found = owners.get((account.ref.connection, account.owner_id))
    return found if found is not None else owners.get((None, account.owner_id))


def owners_by_id(owners: Iterable[Owner]) -> dict[tuple[str | None, str], Owner]:
    """Index owners by (connection, id); an owner without a connection is (None, id)."""
    return {(owner.connection, owner.id): owner for owner in owners}


def active_owner_emails(owners: Iterable[Owner]) -> dict[str, bool]:
    """Return email -> active from CRM owners: inactive in any CRM means inactive."""
    active: dict[str, bool] = {}
    for owner in owners:
        if not owner.email:
            continue
        email = clean_email(owner.email)
        active[email] = active.get(email, True) and owner.active
    return active
