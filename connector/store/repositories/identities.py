"""The identity graph: one relay_id per person or account, linked to its CRM records."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from connector.store.errors import InvalidStoreValue
from connector.store.models import (
    CONNECTION_LEN,
    CRM_ID_LEN,
    OBJECT_LEN,
    IdentityKind,
    IdentityLinkRow,
    IdentityRow,
)
from connector.store.repositories._common import (
    chunked,
    enum_value,
    insert_many_or_ignore,
    insert_or_ignore,
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
        text_value(self.connection, "CrmRef.connection", CONNECTION_LEN)
        text_value(self.object, "CrmRef.object", OBJECT_LEN)
        text_value(self.crm_id, "CrmRef.crm_id", CRM_ID_LEN)


def new_relay_id() -> str:
    """Return a fresh relay id (a random UUID, 36 characters)."""
    return str(uuid.uuid4())


class Identities:
    """Repository of identities and their links. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def resolve(
        self,
        kind: IdentityKind | str,
        key: str | None,
        link: CrmRef | None = None,
        *,
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
            now: Creation time; defaults to now.

        Returns:
            The relay id.
        """
        identity_kind = enum_value(IdentityKind, kind, "identities.kind")
        if key is not None:
            key = text_value(key, f"identities[{identity_kind.value}].key", KEY_LEN)
        at = when(now, "identities.created_at")
        if link is not None:
            linked = self.relay_id_for(link)
            if linked is not None:
                return linked
        if key is None and link is None:
            raise InvalidStoreValue("identities.resolve: give a key, a CRM record to link, or both")
        relay_id = self._identity_for_key(identity_kind, key, at)
        if link is None:
            return relay_id
        insert_or_ignore(
            self._session,
            IdentityLinkRow,
            {
                "connection": link.connection,
                "object": link.object,
                "crm_id": link.crm_id,
                "relay_id": relay_id,
                "linked_at": at,
            },
            conflict_columns=["connection", "object", "crm_id"],
            returning=[IdentityLinkRow.relay_id],
        )
        winner = self.relay_id_for(link)
        assert winner is not None
        return winner

    def resolve_many(
        self,
        kind: IdentityKind | str,
        items: Sequence[tuple[str | None, CrmRef]],
        *,
        now: datetime | None = None,
    ) -> dict[CrmRef, str]:
        """Resolve a page of CRM records to relay ids, as :meth:`resolve` does for each.

        A record already linked keeps its identity; otherwise it gets the identity of
        its (kind, key), created if missing, or an identity of its own when it has no
        key. Records of the same call with the same key share one identity; a record
        given twice resolves by its first key. Per 500 records, six statements: SELECT
        links, SELECT identities by key, executemany INSERT of the missing identities
        (``ON CONFLICT DO NOTHING``), SELECT again to learn which insert won a race,
        executemany INSERT of the links (``ON CONFLICT DO NOTHING``), SELECT the links.

        Args:
            kind: ``person`` or ``account``.
            items: ``(key, record)`` pairs; the key already normalised, or ``None``.
            now: Creation time; defaults to now.

        Returns:
            The relay id of every record given.

        Raises:
            InvalidStoreValue: If the kind, a key or a record is malformed (the message
                names the record).
        """
        identity_kind = enum_value(IdentityKind, kind, "identities.kind")
        at = when(now, "identities.created_at")
        wanted: dict[CrmRef, str | None] = {}
        for index, item in enumerate(items):
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], CrmRef)):
                raise InvalidStoreValue(
                    f"identities.resolve_many[#{index}]: expected (key, CrmRef), got {item!r}"
                )
            key, ref = item
            if key is not None:
                where = f"identities[{identity_kind.value} {ref.connection}/{ref.object}/{ref.crm_id}].key"
                key = text_value(key, where, KEY_LEN)
            wanted.setdefault(ref, key)
        resolved: dict[CrmRef, str] = {}
        for chunk in chunked(list(wanted)):
            resolved.update(self._resolve_chunk(identity_kind, {ref: wanted[ref] for ref in chunk}, at))
        return resolved

    def _resolve_chunk(
        self, kind: IdentityKind, wanted: dict[CrmRef, str | None], at: datetime
    ) -> dict[CrmRef, str]:
        linked = self._links_of(list(wanted))
        unlinked = {ref: key for ref, key in wanted.items() if ref not in linked}
        if not unlinked:
            return linked
        keys = sorted({key for key in unlinked.values() if key is not None})
        by_key = self._identities_by_key(kind, keys)
        missing = [key for key in keys if key not in by_key]
        own = {ref: new_relay_id() for ref, key in unlinked.items() if key is None}
        insert_many_or_ignore(
            self._session,
            IdentityRow,
            [{"relay_id": new_relay_id(), "kind": kind.value, "key": key, "created_at": at} for key in missing]
            + [{"relay_id": relay_id, "kind": kind.value, "key": None, "created_at": at} for relay_id in own.values()],
            ["kind", "key"],
        )
        if missing:
            by_key.update(self._identities_by_key(kind, missing))
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
                for ref, key in sorted(
                    unlinked.items(), key=lambda item: (item[0].connection, item[0].object, item[0].crm_id)
                )
            ],
            ["connection", "object", "crm_id"],
        )
        return {**linked, **self._links_of(list(unlinked))}

    def _links_of(self, refs: Sequence[CrmRef]) -> dict[CrmRef, str]:
        """The relay ids ``refs`` are linked to (one SELECT)."""
        table = table_of(IdentityLinkRow)
        rows = self._session.execute(
            select(table.c.connection, table.c.object, table.c.crm_id, table.c.relay_id).where(
                tuple_(table.c.connection, table.c.object, table.c.crm_id).in_(
                    [(ref.connection, ref.object, ref.crm_id) for ref in refs]
                )
            )
        )
        return {CrmRef(connection, object_name, crm_id): relay_id for connection, object_name, crm_id, relay_id in rows}

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

    def _identity_for_key(self, kind: IdentityKind, key: str | None, at: datetime) -> str:
        candidate = new_relay_id()
        values = {"relay_id": candidate, "kind": kind.value, "key": key, "created_at": at}
        if key is None:
            insert_or_ignore(
                self._session,
                IdentityRow,
                values,
                conflict_columns=["relay_id"],
                returning=[IdentityRow.relay_id],
            )
            return candidate
        insert_or_ignore(
            self._session,
            IdentityRow,
            values,
            conflict_columns=["kind", "key"],
            returning=[IdentityRow.relay_id],
        )
        existing = self.find(kind, key)
        assert existing is not None
        return existing

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
