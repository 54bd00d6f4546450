"""The identity graph: one relay_id per person or account, linked to its CRM records."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
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
    enum_value,
    insert_or_ignore,
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
