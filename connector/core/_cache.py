"""Caches of the decision core: per distinct field value, and per rules object.

Both only ever hold results of pure functions, so a decision made with a cache hit is
the decision made without it (``tests/core/test_caches.py`` checks this).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Generic, TypeVar

VALUE_CACHE_SIZE = 1 << 17
"""Entries kept per ``functools.lru_cache`` of a pure function of one field value.

Values repeat across records (the same person in two CRMs, the same company, website or
city on many leads) and across runs (the next sync reads the same values again), and
these functions cost microseconds each (``phonenumbers`` parsing alone about 25 us per
number). A least-recently-used cache smaller than the values of one sync keeps none of
them for the next (each is evicted before it comes round again), so the size covers the
distinct values of a sync of about 100,000 people; a full cache of short strings holds
about 60 MB (the caches of values that are rarely shared, such as phone numbers and
emails, are the ones that fill).
"""

Function = TypeVar("Function", bound=Callable[..., Any])
_VALUE_CACHES: list[Any] = []


def value_cache(function: Function) -> Function:
    """Cache ``function`` (pure, hashable arguments) per distinct arguments, bounded.

    A ``functools.lru_cache`` of ``VALUE_CACHE_SIZE`` entries, registered so that
    :func:`clear_value_caches` can empty every such cache of the core.
    """
    cached = lru_cache(maxsize=VALUE_CACHE_SIZE)(function)
    _VALUE_CACHES.append(cached)
    return cached  # type: ignore[return-value]


def clear_value_caches() -> None:
    """Empty every per-value cache of the core (for benchmarks and tests; never needed).

    Decisions never depend on what is cached: this only makes the next calls slower.
    """
    for cached in _VALUE_CACHES:
        cached.cache_clear()


Source = TypeVar("Source")
Derived = TypeVar("Derived")


class DerivedCache(Generic[Source, Derived]):
    """Lookup tables derived once from an immutable object, kept while that object lives.

    The rules (``RoutingRules``, ``ScoringRules``, ``SlaPolicy``, ``Rules``) are frozen
    pydantic models that hold lists, so they cannot be hashed, and a ``cached_property``
    would be copied, stale, by ``model_copy(update=...)``. This cache is keyed by object
    identity instead, with a weak reference that drops the entry when the object goes:
    a copy is a new object and gets tables of its own. ``build`` must not keep a
    reference to its argument (the entry would then never be dropped).
    """

    def __init__(self, build: Callable[[Source], Derived]) -> None:
        self._build = build
        self._entries: dict[int, tuple[weakref.ref[Source], Derived]] = {}

    def __call__(self, source: Source) -> Derived:
        key = id(source)
        entry = self._entries.get(key)
        if entry is not None and entry[0]() is source:
            return entry[1]
        derived = self._build(source)
        entries = self._entries

        def forget(ref: weakref.ref[Source], key: int = key) -> None:
            current = entries.get(key)
            if current is not None and current[0] is ref:
                del entries[key]

        self._entries[key] = (weakref.ref(source, forget), derived)
        return derived

    def __len__(self) -> int:
        return len(self._entries)
