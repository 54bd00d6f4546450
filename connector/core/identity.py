"""Identity: who is the same person, and which account a person belongs to.

Seed 002 "Lead Capture / Duplicate check": email match -> same person; company match
-> associate to account (``connector.core.accounts``, re-exported here). Keys are deterministic so that the same records always give
the same identity ids, whatever order they arrive in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from connector.core._cache import value_cache
from connector.core._email import clean_email

# Which account a person belongs to is connector.core.accounts'; these names stay importable here.
from connector.core.accounts import AccountIndex as AccountIndex
from connector.core.accounts import OwnerIndex as OwnerIndex
from connector.core.accounts import account_domains as account_domains
from connector.core.accounts import account_owner as account_owner
from connector.core.accounts import match_account as match_account
from connector.core.accounts import owners_by_id as owners_by_id
from connector.core.accounts import site_host as site_host
from connector.core.matching.normalize import email_key
from connector.core.models import Owner, Person, RecordRef


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
    return email_key(email)  # the matcher's key: one definition of "the same address"


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


def cluster_linked(keyed: Iterable[tuple[RecordRef, str | None, str | None]]) -> list[IdentityCluster]:
    """Group records by identity key and by the identity graph's links, whichever joins them.

    ``keyed`` holds ``(record, identity key, linked identity)``: two records are one person when
    they share a key (the normalised email) or a linked identity (the store's identity graph,
    which ``relay dedupe run`` extends with the matcher's links across CRMs and objects). Without
    links this is :func:`cluster_keys`.

    Returns:
        Clusters in the order of their first record; a cluster's key is its first record's key
        (its identity id follows from it as in :func:`cluster_keys`).
    """
    items = list(keyed)
    if not any(link for _, _, link in items):
        return cluster_keys((ref, key) for ref, key, _ in items)
    parent: dict[RecordRef, RecordRef] = {}

    def find(ref: RecordRef) -> RecordRef:
        root = ref
        while parent.get(root, root) != root:
            root = parent[root]
        parent[ref] = root
        return root

    first_of: dict[tuple[str, str], RecordRef] = {}
    for ref, key, link in items:
        parent.setdefault(ref, ref)
        for label in (("key", key), ("link", link)):
            if label[1] is None:
                continue
            seen = first_of.setdefault((label[0], label[1]), ref)
            if seen != ref:
                a, b = find(seen), find(ref)
                if a != b:
                    parent[b] = a
    groups: dict[RecordRef, list[tuple[RecordRef, str | None]]] = {}
    for ref, key, _ in items:
        groups.setdefault(find(ref), []).append((ref, key))
    clusters: list[IdentityCluster] = []
    for members in groups.values():
        key = next((k for _, k in members if k is not None), None)
        refs = sorted({ref for ref, _ in members}, key=_ref_sort_key)
        if key is None:
            clusters.append(IdentityCluster(record_identity_id(refs[0]), None, tuple(refs)))
        else:
            clusters.append(IdentityCluster(_identity_id("email:" + key), key, tuple(refs)))
    return clusters


def active_owner_emails(owners: Iterable[Owner]) -> dict[str, bool]:
    """Return email -> active from CRM owners: inactive in any CRM means inactive."""
    active: dict[str, bool] = {}
    for owner in owners:
        if not owner.email:
            continue
        email = clean_email(owner.email)
        active[email] = active.get(email, True) and owner.active
    return active
