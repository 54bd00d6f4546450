"""The enrichment cache: what each provider answered, per (provider, kind, key), with when.

:class:`EnrichmentCache` is the port the waterfall uses; :class:`SqlEnrichmentCache` keeps the
answers in Relay's store (table ``enrichment_cache``, SQLite or PostgreSQL) and
:class:`MemoryEnrichmentCache` is its in-memory twin (tests, dry runs). Only ``found`` and
``not_found`` answers are kept, never failures; whether a kept answer is still fresh is decided
by the reader from ``fetched_at`` and the provider's TTL (:func:`is_fresh`), so shortening a TTL
in enrichment.yaml takes effect at once.

The SQL cache opens its own short transactions: call the waterfall before a page's transaction,
never inside it (HTTP calls must not hold a database lock, and on SQLite the cache's write
would wait for the page's).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from connector.enrich.settings import LookupKind, ProviderSettings
from connector.store._types import require_aware
from connector.store.errors import InvalidStoreValue
from connector.store.models import ENRICHMENT_KEY_LEN, EnrichmentCacheRow

CacheKey = tuple[str, LookupKind, str]
"""(provider, kind, key): ``("firmographics", "company", "initech.example")``."""

CachedOutcome = Literal["found", "not_found"]

_CHUNK = 500


@dataclass(frozen=True)
class CachedAnswer:
    """One provider's answer as kept.

    Attributes:
        provider: The provider's name.
        kind: ``company`` or ``person``.
        key: The domain or email (lower case).
        version: :meth:`ProviderSettings.version` when it answered.
        outcome: ``found`` or ``not_found``.
        fetched_at: When the provider answered (aware UTC).
        values: Canonical person field -> value (empty for ``not_found``).
    """

    provider: str
    kind: LookupKind
    key: str
    version: str
    outcome: CachedOutcome
    fetched_at: datetime
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cache_key(self) -> CacheKey:
        """(provider, kind, key)."""
        return (self.provider, self.kind, self.key)


def is_fresh(answer: CachedAnswer, provider: ProviderSettings, now: datetime) -> bool:
    """Whether ``answer`` may be reused ``now``: same provider version and younger than its TTL.

    ``found`` answers live ``cache_ttl_days``, ``not_found`` ones ``not_found_ttl_days``; a TTL of
    0 never reuses.
    """
    if answer.version != provider.version():
        return False
    days = provider.cache_ttl_days if answer.outcome == "found" else provider.not_found_ttl_days
    if days <= 0:
        return False
    return answer.fetched_at + timedelta(days=days) > now


class EnrichmentCache(Protocol):
    """Where provider answers are kept between runs."""

    def get_many(self, keys: Collection[CacheKey]) -> dict[CacheKey, CachedAnswer]:
        """The kept answers of ``keys`` (fresh or not); keys never answered are absent."""
        ...

    def put_many(self, answers: Sequence[CachedAnswer]) -> None:
        """Keep ``answers``, replacing what was kept for the same keys."""
        ...

    def purge(self, fetched_before: datetime) -> int:
        """Forget every answer fetched before ``fetched_before``; returns how many."""
        ...


class MemoryEnrichmentCache:
    """The cache in a dict (tests, dry runs); same behaviour as :class:`SqlEnrichmentCache`."""

    def __init__(self, answers: Iterable[CachedAnswer] = ()) -> None:
        self._answers: dict[CacheKey, CachedAnswer] = {}
        self._lock = threading.Lock()
        self.put_many(list(answers))

    def get_many(self, keys: Collection[CacheKey]) -> dict[CacheKey, CachedAnswer]:
        """The kept answers of ``keys``."""
        with self._lock:
            return {key: self._answers[key] for key in keys if key in self._answers}

    def put_many(self, answers: Sequence[CachedAnswer]) -> None:
        """Keep ``answers`` (last one per key wins)."""
        checked = [_checked(answer) for answer in answers]
        with self._lock:
            for answer in checked:
                self._answers[answer.cache_key] = answer

    def purge(self, fetched_before: datetime) -> int:
        """Forget answers fetched before ``fetched_before``."""
        cutoff = require_aware(fetched_before, "purge(fetched_before)")
        with self._lock:
            old = [key for key, answer in self._answers.items() if answer.fetched_at < cutoff]
            for key in old:
                del self._answers[key]
        return len(old)

    def __len__(self) -> int:
        return len(self._answers)


class SqlEnrichmentCache:
    """The cache in Relay's store (``enrichment_cache``), each call its own short transaction.

    Args:
        sessions: A session factory of the store (:func:`connector.store.db.session_factory`).
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get_many(self, keys: Collection[CacheKey]) -> dict[CacheKey, CachedAnswer]:
        """The kept answers of ``keys``: one query per provider and kind (and 500 keys)."""
        wanted: dict[tuple[str, LookupKind], list[str]] = {}
        for provider, kind, key in set(keys):
            wanted.setdefault((provider, kind), []).append(key)
        found: dict[CacheKey, CachedAnswer] = {}
        with self._sessions.begin() as session:
            for (provider, kind), lookup_keys in wanted.items():
                ordered = sorted(lookup_keys)
                for start in range(0, len(ordered), _CHUNK):
                    rows = session.scalars(select(EnrichmentCacheRow).where(
                        EnrichmentCacheRow.provider == provider, EnrichmentCacheRow.kind == kind,
                        EnrichmentCacheRow.lookup_key.in_(ordered[start:start + _CHUNK])))
                    for row in rows:
                        answer = _from_row(row)
                        found[answer.cache_key] = answer
        return found

    def put_many(self, answers: Sequence[CachedAnswer]) -> None:
        """Insert or replace ``answers`` in one transaction (``INSERT ... ON CONFLICT DO UPDATE``)."""
        latest = {answer.cache_key: _checked(answer) for answer in answers}
        if not latest:
            return
        rows = [{"provider": a.provider, "kind": a.kind, "lookup_key": a.key, "version": a.version,
                 "outcome": a.outcome, "answer": dict(a.values), "fetched_at": a.fetched_at}
                for a in latest.values()]
        with self._sessions.begin() as session:
            insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
            table = EnrichmentCacheRow.__table__
            statement = insert(table)  # type: ignore[arg-type]
            statement = statement.on_conflict_do_update(
                index_elements=["provider", "kind", "lookup_key"],
                set_={name: statement.excluded[name] for name in ("version", "outcome", "answer", "fetched_at")},
            )
            for start in range(0, len(rows), _CHUNK):
                session.execute(statement, rows[start:start + _CHUNK])

    def purge(self, fetched_before: datetime) -> int:
        """Delete answers fetched before ``fetched_before`` (retention); returns how many."""
        cutoff = require_aware(fetched_before, "purge(fetched_before)")
        with self._sessions.begin() as session:
            result = session.execute(delete(EnrichmentCacheRow).where(EnrichmentCacheRow.fetched_at < cutoff))
            return int(getattr(result, "rowcount", 0) or 0)


def _checked(answer: CachedAnswer) -> CachedAnswer:
    where = f"enrichment cache answer of {answer.provider}/{answer.kind}/{answer.key}"
    if answer.outcome not in ("found", "not_found"):
        raise InvalidStoreValue(f"{where}: outcome {answer.outcome!r} is not found or not_found "
                                "(failures are never cached)")
    if answer.kind not in ("company", "person"):
        raise InvalidStoreValue(f"{where}: kind {answer.kind!r} is not company or person")
    if not answer.key or len(answer.key) > ENRICHMENT_KEY_LEN:
        raise InvalidStoreValue(f"{where}: the key must be 1 to {ENRICHMENT_KEY_LEN} characters")
    try:
        fetched_at = require_aware(answer.fetched_at, f"{where}: fetched_at")
    except (TypeError, ValueError) as exc:
        raise InvalidStoreValue(str(exc)) from exc
    if fetched_at is answer.fetched_at:
        return answer
    return CachedAnswer(answer.provider, answer.kind, answer.key, answer.version, answer.outcome,
                        fetched_at, answer.values)


def _from_row(row: EnrichmentCacheRow) -> CachedAnswer:
    kind: LookupKind = "company" if row.kind == "company" else "person"
    outcome: CachedOutcome = "found" if row.outcome == "found" else "not_found"
    return CachedAnswer(row.provider, kind, row.lookup_key, row.version, outcome, row.fetched_at,
                        dict(row.answer or {}))


__all__ = [
    "CacheKey",
    "CachedAnswer",
    "EnrichmentCache",
    "MemoryEnrichmentCache",
    "SqlEnrichmentCache",
    "is_fresh",
]
