"""Counting the API calls a connection makes: every HTTP attempt, retries included.

API calls are a budget (DESIGN.md principle 4): the pipeline reports them per
connection and per run from an :class:`ApiCallCounter` that each adapter owns.
"""

from __future__ import annotations

import threading
from collections import Counter

CALL_KINDS = ("auth", "read", "search", "write", "describe", "owners", "deleted", "schema")
"""The kinds of call the adapters count; any other name is accepted too."""


class ApiCallCounter:
    """Thread-safe count of HTTP calls by kind (read, write, search, auth, describe...).

    Example:
        >>> calls = ApiCallCounter()
        >>> calls.add("read")
        >>> calls.add("write", 2)
        >>> calls.total, calls.by_kind()
        (3, {'read': 1, 'write': 2})
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, kind: str, count: int = 1) -> None:
        """Count ``count`` calls of ``kind``.

        Raises:
            ValueError: if ``kind`` is empty or ``count`` negative.
        """
        if not kind:
            raise ValueError("API call kind must be a non-empty name such as 'read' or 'write'")
        if count < 0:
            raise ValueError(f"API call count must be >= 0, got {count} for kind {kind!r}")
        with self._lock:
            self._counts[kind] += count

    def by_kind(self) -> dict[str, int]:
        """The counts so far, by kind (kinds never called are absent)."""
        with self._lock:
            return {kind: n for kind, n in sorted(self._counts.items()) if n}

    def get(self, kind: str) -> int:
        """How many calls of ``kind`` were made."""
        with self._lock:
            return self._counts[kind]

    @property
    def total(self) -> int:
        """All calls, every kind."""
        with self._lock:
            return sum(self._counts.values())

    def snapshot(self) -> dict[str, int]:
        """Counts by kind plus ``total``, for reports and metrics."""
        counts = self.by_kind()
        return {**counts, "total": sum(counts.values())}

    def since(self, earlier: dict[str, int]) -> dict[str, int]:
        """Calls made after ``earlier`` (a :meth:`snapshot`): the calls of one run."""
        now = self.snapshot()
        delta = {kind: n - earlier.get(kind, 0) for kind, n in now.items() if kind != "total"}
        delta = {kind: n for kind, n in delta.items() if n}
        return {**delta, "total": sum(delta.values())}

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._counts.clear()

    def __repr__(self) -> str:
        return f"ApiCallCounter({self.snapshot()})"
