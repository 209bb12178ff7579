"""Fair timing on a noisy machine: interleaved rounds, best-of-N and median.

Candidates take turns (round ``r`` runs them in an order rotated by ``r``), so
a burst of noise from a neighbour hurts every candidate alike rather than the
one that happened to be running.  A candidate stops repeating once it has
``rounds`` samples, or ``min_samples`` and ``budget_s`` seconds spent: slow
baselines (the SDK at 50 ms per page) get fewer, longer samples.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Rounds", "Series", "rotate"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def rotate(seq: Sequence[T], by: int) -> list[T]:
    if not seq:
        return []
    k = by % len(seq)
    return [*seq[k:], *seq[:k]]


@dataclass(slots=True)
class Series:
    """Wall-clock seconds of the repeats of one measurement."""

    samples: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def summary(self) -> dict[str, float | int | list[float]]:
        return {
            "best_s": self.best,
            "median_s": self.median,
            "n": len(self.samples),
            "samples_s": [round(s, 6) for s in self.samples],
        }


class Rounds(Generic[K]):
    """The interleaved schedule: iterate for the next key to run, then ``record``."""

    def __init__(
        self,
        order: Callable[[int], Sequence[K]],
        *,
        rounds: int,
        budget_s: float,
        min_samples: int = 1,
    ) -> None:
        self._order = order
        self.rounds = rounds
        self.budget_s = budget_s
        self.min_samples = min_samples
        self.series: dict[K, Series] = {}

    def wants(self, key: K) -> bool:
        s = self.series.get(key)
        if s is None:
            return True
        n = len(s.samples)
        if n >= self.rounds:
            return False
        return n < self.min_samples or sum(s.samples) < self.budget_s

    def __iter__(self) -> Iterator[K]:
        for r in range(self.rounds):
            for key in self._order(r):
                if self.wants(key):
                    yield key

    def record(self, key: K, seconds: float) -> None:
        self.series.setdefault(key, Series()).samples.append(seconds)
