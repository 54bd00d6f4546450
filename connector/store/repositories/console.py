"""The console's tables: API users (token hashes, roles) and the rule sets decisions were made under."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from connector.store.models import ApiRole, ApiUserRow, ConnectionStateRow, RulesVersionRow
from connector.store.repositories._common import (
    enum_value,
    json_object,
    optional_text,
    text_value,
    upsert,
    when,
)

TOKEN_PREFIX = "relay_"
"""Every API token starts with it (secret scanners and people recognise one)."""
_PREFIX_SHOWN = 12


def hash_token(token: str) -> str:
    """The SHA-256 of a token, as stored (a token has 256 random bits: no salt or slow hash is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiUser:
    """One API user as stored (never the token)."""

    id: int
    name: str
    role: ApiRole
    email: str | None
    token_prefix: str
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None


def _user(row: ApiUserRow) -> ApiUser:
    return ApiUser(row.id, row.name, ApiRole(row.role), row.email, row.token_prefix, row.created_at, row.created_by,
                   row.last_used_at, row.revoked_at)


class ApiUsers:
    """Repository of API users. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, name: str, role: str, *, email: str | None, now: datetime,
            created_by: str | None = None) -> tuple[ApiUser, str]:
        """Create a user with a new token; returns the user and the token (shown once, stored hashed).

        Raises:
            ValueError: naming the field, when the name, role or email is not acceptable, or an
                active user already has the name.
        """
        clean = text_value(name.strip(), "api_users.name", 100)
        kind = enum_value(ApiRole, role.strip().lower().replace("-", "_"), "api_users.role")
        address = optional_text(email.strip().lower() if email else None, "api_users.email", 320)
        if address is not None and "@" not in address:
            raise ValueError(f"api_users.email: {email!r} is not an email address")
        if kind in (ApiRole.REP, ApiRole.MARKETING) and address is None:
            raise ValueError(f"api_users.email: a {kind.value} user needs the email of their CRM user "
                             "(their own records are the ones that user owns)")
        if self.by_name(clean) is not None:
            raise ValueError(f"api_users.name: an active user is already called {clean!r} (revoke it first)")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiUserRow(name=clean, role=kind.value, email=address, token_hash=hash_token(token),
                         token_prefix=token[:_PREFIX_SHOWN], created_at=when(now, "api_users.created_at"),
                         created_by=created_by)
        self._session.add(row)
        self._session.flush()
        return _user(row), token

    def by_name(self, name: str) -> ApiUser | None:
        """The active user called ``name``."""
        row = self._session.scalars(select(ApiUserRow).where(ApiUserRow.name == name.strip(),
                                                             ApiUserRow.revoked_at.is_(None))).first()
        return _user(row) if row is not None else None

    def authenticate(self, token: str) -> ApiUser | None:
        """The active user holding ``token``, None for an unknown or revoked token (nothing is written)."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        row = self._session.scalars(select(ApiUserRow).where(ApiUserRow.token_hash == hash_token(token))).first()
        if row is None or row.revoked_at is not None:
            return None
        return _user(row)

    def note_use(self, user_id: int, *, now: datetime, every: timedelta) -> bool:
        """Set the user's ``last_used_at`` to ``now`` unless it was noted less than ``every`` ago.

        Returns whether the row was written. The condition is in the UPDATE, so concurrent requests
        of one token write it once per period.
        """
        at = when(now, "api_users.last_used_at")
        result = self._session.execute(
            update(ApiUserRow)
            .where(ApiUserRow.id == user_id,
                   or_(ApiUserRow.last_used_at.is_(None), ApiUserRow.last_used_at <= at - every))
            .values(last_used_at=at))
        return bool(getattr(result, "rowcount", 0))

    def all(self, *, include_revoked: bool = False) -> list[ApiUser]:
        """Every user, by name."""
        query = select(ApiUserRow).order_by(ApiUserRow.name, ApiUserRow.id)
        if not include_revoked:
            query = query.where(ApiUserRow.revoked_at.is_(None))
        return [_user(row) for row in self._session.scalars(query)]

    def revoke(self, name: str, *, now: datetime) -> ApiUser | None:
        """Revoke the active user called ``name`` (its token stops working); None when there is none."""
        found = self.by_name(name)
        if found is None:
            return None
        self._session.execute(update(ApiUserRow).where(ApiUserRow.id == found.id)
                              .values(revoked_at=when(now, "api_users.revoked_at")))
        return ApiUser(**{**found.__dict__, "revoked_at": now})


@dataclass(frozen=True)
class RulesVersion:
    """A rule set as recorded: its version, what it said, when it was first and last in force."""

    version: str
    rules: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    source: str | None


class RulesVersions:
    """Repository of the rule sets decisions were made under. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def record(self, version: str, rules: Mapping[str, Any], *, now: datetime, source: str | None = None) -> None:
        """Note that ``version`` (saying ``rules``) is in force at ``now``: inserted once, its last use moved on."""
        at = when(now, "rules_versions.last_seen")
        upsert(self._session, RulesVersionRow,
               {"version": text_value(version, "rules_versions.version", 128),
                "rules": json_object(rules, "rules_versions.rules"), "first_seen": at, "last_seen": at,
                "source": optional_text(source, "rules_versions.source", 1000)},
               ["version"], ["last_seen"])

    def get(self, version: str) -> RulesVersion | None:
        """The rule set recorded under ``version``."""
        row = self._session.get(RulesVersionRow, version)
        return RulesVersion(row.version, dict(row.rules), row.first_seen, row.last_seen, row.source) if row else None

    def history(self) -> list[RulesVersion]:
        """Every recorded rule set, the newest first."""
        rows = self._session.scalars(select(RulesVersionRow).order_by(RulesVersionRow.first_seen.desc()))
        return [RulesVersion(r.version, dict(r.rules), r.first_seen, r.last_seen, r.source) for r in rows]


@dataclass(frozen=True)
class Pause:
    """A paused connection: since when, by whom, why."""

    connection: str
    paused_at: datetime
    paused_by: str | None
    reason: str | None


class ConnectionStates:
    """Repository of paused connections. The caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def pause(self, connection: str, *, by: str | None, reason: str | None, now: datetime) -> Pause:
        """Pause ``connection`` (again: the first pause's time stands, who and why are the latest)."""
        at = when(now, "connection_states.paused_at")
        current = self.paused(connection)
        upsert(self._session, ConnectionStateRow,
               {"connection": text_value(connection, "connection_states.connection", 100),
                "paused_at": current.paused_at if current is not None else at,
                "paused_by": optional_text(by, "connection_states.paused_by", 100),
                "reason": optional_text(reason, "connection_states.reason", 10_000), "updated_at": at},
               ["connection"], ["paused_at", "paused_by", "reason", "updated_at"])
        return Pause(connection, current.paused_at if current is not None else at, by, reason)

    def resume(self, connection: str, *, now: datetime) -> Pause | None:
        """Resume ``connection``; returns the pause it ends (None: it was not paused)."""
        current = self.paused(connection)
        if current is None:
            return None
        self._session.execute(update(ConnectionStateRow).where(ConnectionStateRow.connection == connection)
                              .values(paused_at=None, paused_by=None, reason=None,
                                      updated_at=when(now, "connection_states.updated_at")))
        return current

    def paused(self, connection: str) -> Pause | None:
        """The pause of ``connection``, None when it runs."""
        row = self._session.get(ConnectionStateRow, connection, populate_existing=True)
        if row is None or row.paused_at is None:
            return None
        return Pause(row.connection, row.paused_at, row.paused_by, row.reason)

    def all_paused(self) -> dict[str, Pause]:
        """Every paused connection."""
        rows = self._session.scalars(select(ConnectionStateRow).where(ConnectionStateRow.paused_at.is_not(None)))
        return {r.connection: Pause(r.connection, r.paused_at, r.paused_by, r.reason) for r in rows
                if r.paused_at is not None}
