"""The identity graph: one relay_id per person or account, linked to its CRM records."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from connector.store.errors import InvalidStoreValue, StoreError
from connector.store.models import (
    CONNECTION_LEN,
    CRM_ID_LEN,
    OBJECT_LEN,
    IdentityKind,
    IdentityLinkRow,
    IdentityRow,
    RecordRow,
)
from connector.store.repositories._common import (
    chunked,
    enum_value,
    insert_many_or_ignore,
    table_of,
    text_value,
    when,
)

KEY_LEN = 320


@dataclass(frozen=True)
class CrmRef:
    """Points at one record in one CRM connection."""

    connection: str
    object: str
    crm_id: str

    def __post_init__(self) -> None:
        # text_value also replaces lone surrogates, so the reference can always be stored.
        object.__setattr__(self, "connection", text_value(self.connection, "CrmRef.connection", CONNECTION_LEN))
        object.__setattr__(self, "object", text_value(self.object, "CrmRef.object", OBJECT_LEN))
        object.__setattr__(self, "crm_id", text_value(self.crm_id, "CrmRef.crm_id", CRM_ID_LEN))


RELAY_ID_NAMESPACE = uuid.UUID("6f1c2c8e-4b5a-5d0e-9a57-2f0d3c1e7b44")
"""UUIDv5 namespace of relay ids. Never change it: every CRM holds ids derived from it."""

_MAX_ROUNDS = 8


def new_relay_id() -> str:
    """Return a random relay id (a UUID, 36 characters).

    Relay itself no longer uses random ids: see :func:`relay_id_for_key` and
    :func:`relay_id_for_record`, which give every store the same id for the same data.
    """
    return str(uuid.uuid4())


def _key_base(kind: IdentityKind | str, key: str) -> str:
    return f"{IdentityKind(kind).value}\x1fkey\x1f{key}"


def _record_base(kind: IdentityKind | str, ref: CrmRef) -> str:
    return f"{IdentityKind(kind).value}\x1frecord\x1f{ref.connection}\x1f{ref.object}\x1f{ref.crm_id}"


def relay_id_for_key(kind: IdentityKind | str, key: str) -> str:
    """The relay id an identity with this matching key gets, in any store (a UUIDv5).

    Args:
        kind: ``person`` or ``account``.
        key: The normalised matching key (e.g. lower-cased email, or domain).
    """
    return str(uuid.uuid5(RELAY_ID_NAMESPACE, _key_base(kind, key)))


def relay_id_for_record(kind: IdentityKind | str, ref: CrmRef) -> str:
    """The relay id of the own identity of a record without a matching key (a UUIDv5)."""
    return str(uuid.uuid5(RELAY_ID_NAMESPACE, _record_base(kind, ref)))


def adoptable_relay_id(value: object) -> str | None:
    """The relay id a CRM record carries, in canonical form, or ``None`` if it is not one.

    A CRM field may hold anything a person typed; only a UUID is adopted (lower-case,
    hyphenated, as Relay writes it), anything else is ignored rather than refused.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


def _candidate(adopted: Sequence[str], base: str, attempt: int) -> str:
    """The id an identity tries at ``attempt`` (from 0): the adopted ones, then ``base``'s UUIDv5 series."""
    derived = [str(uuid.uuid5(RELAY_ID_NAMESPACE, base if n == 0 else f"{base}#{n}")) for n in range(attempt + 1)]
    return [*dict.fromkeys([*adopted, *derived])][attempt]


class Identities:
    """Repository of identities and their links. The caller owns the transaction.

    Relay ids are derived from what the CRM holds, so a new or rebuilt store gives the
    same ids an old one gave and writes nothing to the CRM that is already right: an
    identity created for a key takes the relay id its records already carry in the CRM
    (``adopt``), else the UUIDv5 of its kind and key (:func:`relay_id_for_key`); a record
    without a key gets the id it carries, or the UUIDv5 of its CRM reference
    (:func:`relay_id_for_record`). The store stays the authority: a linked record keeps
    its identity, and an existing identity for a key is never renamed.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def resolve(
        self,
        kind: IdentityKind | str,
        key: str | None,
        link: CrmRef | None = None,
        *,
        adopt: str | None = None,
        now: datetime | None = None,
    ) -> str:
        """Return the relay id of a person or account, creating it if needed.

        A CRM record that is already linked keeps its identity (its key may have
        changed since). Otherwise the identity with this (kind, key) is used, or a
        new one is created; then the record, if given, is linked to it. Unique
        indexes on (kind, key) and on the link make concurrent resolves agree.

        Args:
            kind: ``person`` or ``account``.
            key: The normalised matching key (e.g. lower-cased email, or domain),
                already normalised by the caller; ``None`` if there is none.
            link: The CRM record to link, if any.
            adopt: The relay id the CRM record carries (e.g. ``Relay_Id__c``), taken as
                the id of a new identity (see :meth:`resolve_many`); ignored if it is not
                a UUID.
            now: Creation time; defaults to now.

        Returns:
            The relay id.
        """
        identity_kind = enum_value(IdentityKind, kind, "identities.kind")
        if key is None and link is None:
            raise InvalidStoreValue("identities.resolve: give a key, a CRM record to link, or both")
        if link is not None:
            return self.resolve_many(identity_kind, [(key, link, adopt)], now=now)[link]
        key = text_value(key, f"identities[{identity_kind.value}].key", KEY_LEN)
        at = when(now, "identities.created_at")
        adopted = adoptable_relay_id(adopt)
        by_key, _ = self._ensure(identity_kind, {key: [adopted] if adopted else []}, {}, at)
        return by_key[key]

    def resolve_many(
        self,
        kind: IdentityKind | str,
        items: Sequence[tuple[str | None, CrmRef] | tuple[str | None, CrmRef, str | None]],
        *,
        now: datetime | None = None,
    ) -> dict[CrmRef, str]:
        """Resolve a page of CRM records to relay ids, as :meth:`resolve` does for each.

        A record already linked keeps its identity; otherwise it gets the identity of
        its (kind, key), created if missing, or an identity of its own when it has no
        key. Records of the same call with the same key share one identity; a record
        given twice resolves by its first key.

        A new identity takes the relay id the CRM already holds (the third item, e.g.
        ``Relay_Id__c``), so a new store adopts the ids an old one wrote: for a key, the
        first record given with a usable id wins (records of one person that carry
        different ids end with one: the first's); a record without a key joins the
        identity its id names if there is one. When there is no usable id, or it is
        taken by another identity, the id is derived from the kind and key (or the
        record's reference) with UUIDv5, so every store gives the same id.

        Per 500 records, six statements: SELECT links, SELECT identities by key,
        executemany INSERT of the missing identities (``ON CONFLICT DO NOTHING``), SELECT
        again to learn which insert won a race, executemany INSERT of the links
        (``ON CONFLICT DO NOTHING``), SELECT the links. An adopted id already taken costs
        one more INSERT and SELECT.

        Args:
            kind: ``person`` or ``account``.
            items: ``(key, record)`` or ``(key, record, relay id in the CRM)``; the key
                already normalised, or ``None``; the CRM's relay id ``None`` if empty (a
                value that is not a UUID is ignored).
            now: Creation time; defaults to now.

        Returns:
            The relay id of every record given.

        Raises:
            InvalidStoreValue: If the kind, a key or a record is malformed (the message
                names the record).
        """
        identity_kind = enum_value(IdentityKind, kind, "identities.kind")
        at = when(now, "identities.created_at")
        wanted: dict[CrmRef, tuple[str | None, str | None]] = {}
        for index, item in enumerate(items):
            if not (isinstance(item, tuple) and len(item) in (2, 3) and isinstance(item[1], CrmRef)):
                raise InvalidStoreValue(
                    f"identities.resolve_many[#{index}]: expected (key, CrmRef) or (key, CrmRef, relay id), "
                    f"got {item!r}"
                )
            key, ref = item[0], item[1]
            adopted = adoptable_relay_id(item[2]) if len(item) == 3 else None
            if key is not None:
                where = f"identities[{identity_kind.value} {ref.connection}/{ref.object}/{ref.crm_id}].key"
                key = text_value(key, where, KEY_LEN)
            wanted.setdefault(ref, (key, adopted))
        resolved: dict[CrmRef, str] = {}
        for chunk in chunked(list(wanted)):
            resolved.update(self._resolve_chunk(identity_kind, {ref: wanted[ref] for ref in chunk}, at))
        return resolved

    def _resolve_chunk(
        self, kind: IdentityKind, wanted: dict[CrmRef, tuple[str | None, str | None]], at: datetime
    ) -> dict[CrmRef, str]:
        linked = self._links_of(list(wanted))
        unlinked = {ref: item for ref, item in wanted.items() if ref not in linked}
        if not unlinked:
            return linked
        by_key_adopted: dict[str, list[str]] = {}
        own_adopted: dict[CrmRef, list[str]] = {}
        for ref, (key, adopted) in unlinked.items():  # in the order given: the first record's id wins
            if key is None:
                own_adopted[ref] = [adopted] if adopted else []
                continue
            ids = by_key_adopted.setdefault(key, [])
            if adopted and adopted not in ids:
                ids.append(adopted)
        by_key, own = self._ensure(kind, by_key_adopted, own_adopted, at)
        insert_many_or_ignore(
            self._session,
            IdentityLinkRow,
            [
                {
                    "connection": ref.connection,
                    "object": ref.object,
                    "crm_id": ref.crm_id,
                    "relay_id": own[ref] if key is None else by_key[key],
                    "linked_at": at,
                }
                for ref, (key, _) in sorted(
                    unlinked.items(), key=lambda item: (item[0].connection, item[0].object, item[0].crm_id)
                )
            ],
            ["connection", "object", "crm_id"],
        )
        return {**linked, **self._links_of(list(unlinked))}

    def _ensure(
        self,
        kind: IdentityKind,
        keyed: dict[str, list[str]],
        own: dict[CrmRef, list[str]],
        at: datetime,
    ) -> tuple[dict[str, str], dict[CrmRef, str]]:
        """The identities of these keys and key-less records, created where missing.

        Args:
            kind: The identities' kind.
            keyed: Per key, the relay ids its records carry in the CRM, first first.
            own: Per record without a key, the relay id it carries in the CRM (if any).
            at: Creation time.

        Returns:
            The relay id per key and per key-less record.
        """
        by_key = self._identities_by_key(kind, sorted(keyed)) if keyed else {}
        missing = [key for key in keyed if key not in by_key]
        pending = list(own)
        found_own: dict[CrmRef, str] = {}
        tries: dict[str | CrmRef, int] = {}
        for _round in range(_MAX_ROUNDS):
            if not missing and not pending:
                return by_key, found_own
            used: set[str] = set()
            chosen_key: dict[str, str] = {}
            chosen_own: dict[CrmRef, str] = {}
            for key in missing:
                chosen_key[key] = self._next_candidate(keyed[key], _key_base(kind, key), key, tries, used)
            for ref in pending:
                chosen_own[ref] = self._next_candidate(own[ref], _record_base(kind, ref), ref, tries, used, shared=True)
            # In key order (then id order for key-less ones), so two transactions inserting the
            # same identities, even with different adopted ids, cannot deadlock. No conflict
            # target: a taken key or a taken id is skipped, and told apart below.
            rows = [
                {"relay_id": chosen_key[key], "kind": kind.value, "key": key, "created_at": at}
                for key in sorted(chosen_key)
            ] + [
                {"relay_id": relay_id, "kind": kind.value, "key": None, "created_at": at}
                for relay_id in sorted(set(chosen_own.values()))
            ]
            insert_many_or_ignore(self._session, IdentityRow, rows, [])
            table = table_of(IdentityRow)
            conditions: list[ColumnElement[bool]] = []
            if chosen_own:
                conditions.append(table.c.relay_id.in_(list(chosen_own.values())))
            if missing:
                conditions.append((table.c.kind == kind.value) & table.c.key.in_(missing))
            stored = self._session.execute(
                select(table.c.relay_id, table.c.kind, table.c.key).where(or_(*conditions))
            ).all()
            kinds = {relay_id: stored_kind for relay_id, stored_kind, _ in stored}
            by_key.update(
                {
                    key: relay_id
                    for relay_id, stored_kind, key in stored
                    if key is not None and stored_kind == kind.value and key in chosen_key
                }
            )
            missing = [key for key in missing if key not in by_key]
            for ref, relay_id in chosen_own.items():
                if kinds.get(relay_id) == kind.value:
                    found_own[ref] = relay_id
            pending = [ref for ref in pending if ref not in found_own]
        raise StoreError(
            f"identities: no free relay id for {kind.value} keys {missing[:5]} / records "
            f"{[f'{r.connection}/{r.object}/{r.crm_id}' for r in pending[:5]]} after {_MAX_ROUNDS} attempts"
        )

    @staticmethod
    def _next_candidate(
        adopted: list[str],
        base: str,
        item: str | CrmRef,
        tries: dict[str | CrmRef, int],
        used: set[str],
        *,
        shared: bool = False,
    ) -> str:
        """The next relay id ``item`` tries: its adopted ids, then the UUIDv5 series of ``base``.

        Ids another item of the same round chose are skipped, so one executemany never
        holds a row twice; key-less records (``shared``) may share an adopted id.
        """
        attempt = tries.get(item, 0)
        while True:
            candidate = _candidate(adopted, base, attempt)
            attempt += 1
            if shared or candidate not in used:
                break
        tries[item] = attempt
        used.add(candidate)
        return candidate

    def _links_of(self, refs: Sequence[CrmRef]) -> dict[CrmRef, str]:
        """The relay ids ``refs`` are linked to (one SELECT per connection and object).

        ``crm_id IN (...)`` under an equal connection and object walks the primary key; a
        row-value ``(connection, object, crm_id) IN (VALUES ...)`` made SQLite scan the table.
        """
        table = table_of(IdentityLinkRow)
        by_object: dict[tuple[str, str], list[str]] = {}
        for ref in refs:
            by_object.setdefault((ref.connection, ref.object), []).append(ref.crm_id)
        found: dict[CrmRef, str] = {}
        for (connection, object_name), crm_ids in sorted(by_object.items()):
            rows = self._session.execute(
                select(table.c.crm_id, table.c.relay_id).where(
                    table.c.connection == connection, table.c.object == object_name, table.c.crm_id.in_(crm_ids)
                )
            )
            found.update((CrmRef(connection, object_name, crm_id), relay_id) for crm_id, relay_id in rows)
        return found

    def _identities_by_key(self, kind: IdentityKind, keys: Sequence[str]) -> dict[str, str]:
        """The relay ids of the identities of ``kind`` with these keys (one SELECT)."""
        if not keys:
            return {}
        table = table_of(IdentityRow)
        rows = self._session.execute(
            select(table.c.key, table.c.relay_id).where(
                table.c.kind == kind.value, table.c.key.in_(list(keys))
            )
        )
        return {key: relay_id for key, relay_id in rows}

    def find(self, kind: IdentityKind | str, key: str) -> str | None:
        """Return the relay id of the identity with this kind and key, if any."""
        identity_kind = enum_value(IdentityKind, kind, "identities.kind")
        found: str | None = self._session.scalars(
            select(IdentityRow.relay_id).where(
                IdentityRow.kind == identity_kind.value, IdentityRow.key == key
            )
        ).first()
        return found

    def relay_id_for(self, ref: CrmRef) -> str | None:
        """Return the relay id a CRM record is linked to, if any."""
        found: str | None = self._session.scalars(
            select(IdentityLinkRow.relay_id).where(
                IdentityLinkRow.connection == ref.connection,
                IdentityLinkRow.object == ref.object,
                IdentityLinkRow.crm_id == ref.crm_id,
            )
        ).first()
        return found

    def links(self, relay_id: str) -> list[CrmRef]:
        """Return the CRM records linked to ``relay_id``."""
        rows = self._session.execute(
            select(IdentityLinkRow.connection, IdentityLinkRow.object, IdentityLinkRow.crm_id)
            .where(IdentityLinkRow.relay_id == relay_id)
            .order_by(IdentityLinkRow.connection, IdentityLinkRow.object, IdentityLinkRow.crm_id)
        )
        return [CrmRef(connection, object_name, crm_id) for connection, object_name, crm_id in rows]

    def join(self, refs: Sequence[CrmRef], *, now: datetime | None = None) -> str | None:
        """Link ``refs`` (records the matcher found to be one person) to one identity; return it.

        The identity kept is the one the first record (by connection, object, id) already has;
        the others' links and snapshots move to it. Records not linked yet are left alone (a
        record is linked when a sync first reads it). ``None`` when none of them is linked.
        """
        links = self._links_of(list(refs))
        ordered = sorted(links, key=lambda r: (r.connection, r.object, r.crm_id))
        if not ordered:
            return None
        target = links[ordered[0]]
        moving = [ref for ref in ordered if links[ref] != target]
        at = when(now, "identity_links.linked_at")
        for ref in moving:
            self._session.execute(
                update(IdentityLinkRow)
                .where(IdentityLinkRow.connection == ref.connection, IdentityLinkRow.object == ref.object,
                       IdentityLinkRow.crm_id == ref.crm_id)
                .values(relay_id=target, linked_at=at))
            self._session.execute(
                update(RecordRow)
                .where(RecordRow.connection == ref.connection, RecordRow.object == ref.object,
                       RecordRow.crm_id == ref.crm_id)
                .values(relay_id=target))
        return target
