"""A ``random.Random`` whose everyday draws are cheap enough for 100,000-lead data sets.

The standard ``choice``/``randint``/``choices`` go through ``getrandbits`` rejection
sampling and argument checks; here they are one ``random()`` call each. Still a
pure function of the seed, just a different (equally deterministic) stream.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Sequence
from itertools import accumulate
from typing import Any, TypeVar

T = TypeVar("T")


class SeedRandom(random.Random):
    """``random.Random`` with one-call ``choice``, ``randint``, ``randrange`` and ``choices``."""

    def choice(self, seq: Sequence[T]) -> T:  # type: ignore[override]
        """One element of a non-empty sequence."""
        return seq[int(self.random() * len(seq))]

    def randint(self, a: int, b: int) -> int:
        """An int in ``[a, b]``."""
        return a + int(self.random() * (b - a + 1))

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        """An int in ``range(start, stop)`` (step 1 only)."""
        if stop is None:
            start, stop = 0, start
        if step != 1 or stop <= start:
            raise ValueError(f"randrange({start}, {stop}, {step}): empty or stepped range")
        return start + int(self.random() * (stop - start))

    def choices(  # type: ignore[override]
        self,
        population: Sequence[T],
        weights: Sequence[float] | None = None,
        *,
        cum_weights: Sequence[float] | None = None,
        k: int = 1,
    ) -> list[T]:
        """``k`` elements drawn with replacement by (cumulative) weights."""
        if cum_weights is None:
            if weights is None:
                return [self.choice(population) for _ in range(k)]
            cum_weights = list(accumulate(weights))
        total = cum_weights[-1]
        return [population[bisect(cum_weights, self.random() * total)] for _ in range(k)]


def weighted(rng: random.Random, values: Sequence[T], cum_weights: Sequence[float]) -> T:
    """One of ``values`` drawn by cumulative weights (one ``random()`` call)."""
    return values[bisect(cum_weights, rng.random() * cum_weights[-1])]


def cumulative(pairs: Sequence[tuple[Any, float]]) -> tuple[tuple[Any, ...], tuple[float, ...]]:
    """(values, cumulative weights) of (value, weight) pairs, for ``choices(cum_weights=...)``."""
    return tuple(v for v, _ in pairs), tuple(accumulate(w for _, w in pairs))
