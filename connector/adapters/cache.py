"""What the adapters of one process share between runs: owners lists, access tokens and subscription types.

A worker builds a new adapter for every run, so anything an adapter learns dies with it. Some
things are worth keeping across runs because every run asks for them and they rarely change:
the CRM's user list (``owners()``, one or two calls a run), the Salesforce access token (one
call a run) and the list of email subscription types a HubSpot run looks consent.yaml's names up
in (one call). :data:`PROCESS_CACHES` keeps them, each entry for a time to live the adapter gives.

Entries are keyed by :class:`CacheKey`: the CRM, its base URL and a keyed digest of the
credentials, so two connections to the same org with different users or apps never share an
entry, a changed secret misses the cache, and no secret is ever held as a key (the digest's
key is random per process, so a key seen in a dump or log cannot be tested against a guess).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

V = TypeVar("V")

_DIGEST_KEY = secrets.token_bytes(32)
"""Keys the credential digests; new in every process (digests are never compared across processes)."""


def credentials_digest(*parts: str | None) -> str:
    """A keyed SHA-256 digest of ``parts`` (client ids, usernames, secrets), never the values themselves.

    ``None`` and ``""`` count as the same empty part; the parts are joined unambiguously, so
    ``("ab", "c")`` and ``("a", "bc")`` differ.
    """
    mac = hmac.new(_DIGEST_KEY, digestmod=hashlib.sha256)
    for part in parts:
        data = (part or "").encode()
        mac.update(len(data).to_bytes(8, "big"))
        mac.update(data)
    return mac.hexdigest()


@dataclass(frozen=True)
class CacheKey:
    """Whose entry this is: the CRM, its base URL and a digest of the credentials used.

    Example:
        >>> a = CacheKey.of("salesforce", "https://acme.my.salesforce.com/", "client", "secret")
        >>> a == CacheKey.of("salesforce", "https://acme.my.salesforce.com", "client", "secret")
        True
        >>> a == CacheKey.of("salesforce", "https://acme.my.salesforce.com", "client", "other secret")
        False
        >>> "secret" in repr(a)
        False
    """

    crm: str
    base_url: str
    credentials: str
    """:func:`credentials_digest` of the credentials."""

    @classmethod
    def of(cls, crm: str, base_url: str, *credentials: str | None) -> CacheKey:
        """The key of ``crm`` at ``base_url`` reached with ``credentials`` (hashed here, not kept)."""
        return cls(crm, base_url.rstrip("/"), credentials_digest(*credentials))


class TtlCache(Generic[V]):
    """A thread-safe map whose entries expire ``ttl`` seconds after they are put.

    Values are copied in and out (``copy.deepcopy``): a caller that changes what it got
    cannot change what the next caller gets.

    Args:
        name: What it holds, for ``repr`` (``owners``, ``tokens``).
        clock: Seconds from any origin that only moves forward (default ``time.monotonic``);
            tests give a hand-moved one.
    """

    def __init__(self, name: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.clock = clock
        self._entries: dict[CacheKey, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> V | None:
        """A copy of the live value of ``key``, or None (an expired entry is dropped)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if self.clock() >= expires:
                del self._entries[key]
                return None
            return copy.deepcopy(value)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` has a live entry (without copying its value)."""
        with self._lock:
            entry = self._entries.get(key) if isinstance(key, CacheKey) else None
            return entry is not None and self.clock() < entry[0]

    def put(self, key: CacheKey, value: V, ttl: float) -> None:
        """Keep a copy of ``value`` for ``ttl`` seconds (``ttl <= 0``: keep nothing)."""
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self.clock() + ttl, copy.deepcopy(value))

    def discard(self, key: CacheKey, value: V | None = None) -> None:
        """Forget ``key``; with ``value``, only while the entry still equals it.

        An adapter whose token was refused drops that token, not a newer one that another
        adapter has put meanwhile.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and (value is None or entry[1] == value):
                del self._entries[key]

    def fetch(self, key: CacheKey, ttl: float, load: Callable[[], V]) -> V:
        """The live value of ``key``, else ``load()`` kept for ``ttl`` seconds (``ttl <= 0``: always ``load()``).

        ``load`` runs outside the lock: two threads missing at once both load, and the later
        one's value is kept; nobody waits on another's network call.
        """
        if ttl > 0:
            cached = self.get(key)
            if cached is not None:
                return cached
        value = load()
        if ttl > 0:
            self.put(key, value, ttl)
        return value

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        """Entries held, expired ones not yet dropped included."""
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return f"TtlCache({self.name!r}, {len(self)} entries)"


class SharedCaches:
    """The caches adapters share: CRM user lists and access tokens, on one clock.

    Args:
        clock: See :class:`TtlCache`.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.owners: TtlCache[list[dict[str, Any]]] = TtlCache("owners", clock=clock)
        """``owners()`` answers, by connection."""
        self.tokens: TtlCache[dict[str, Any]] = TtlCache("tokens", clock=clock)
        """OAuth token answers (``access_token``, ``instance_url``...), by connection."""
        self.subscription_types: TtlCache[dict[str, Any]] = TtlCache("subscription types", clock=clock)
        """The CRM's email subscription types (or why they cannot be read), by connection; kept as long as owners."""

    def clear(self) -> None:
        """Forget everything (tests that start sandboxes on reused ports, a credentials change)."""
        self.owners.clear()
        self.tokens.clear()
        self.subscription_types.clear()


PROCESS_CACHES = SharedCaches()
"""The caches of this process: what ``open_adapter`` gives every adapter it builds."""
