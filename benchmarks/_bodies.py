"""Realistic response bodies and the ids a correct scan must return.

Bodies come from the simulator's own deterministic generator, laid out exactly
as its list endpoint lays them out: every field, all six statuses (its default
mix), non-ASCII file names and error messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Tally", "expected_id", "page_body"]

BENCH_JOB = "bjb-bench-decode"


def page_body(n_items: int, *, seed: int = 0) -> bytes:
    """One ``BatchItemListResponse`` body of ``n_items`` items (``total_size`` = n)."""
    from aiobatch.testing import SimClock, SimJob, Simulator

    sim = Simulator(
        [SimJob(job_id=BENCH_JOB, total_items=n_items, seed=seed)],
        clock=SimClock.frozen_at(),
        page_cache_bytes=0,  # nothing to reuse: do not keep a copy
    )
    state = sim.registry.require(BENCH_JOB)
    items, count = sim.registry.items_json(state, state.view(sim.now()), None, 0, n_items)
    assert count == n_items
    # The same framing as the simulator's list_items handler.
    return b'{"items":[' + items + b'],"total_size":%d}' % n_items


def expected_id(job_id: str) -> Callable[[int], str]:
    """The id of item ``i`` of a simulated job, in server order."""
    # How the simulator derives item ids from a job id (imported lazily: the memory
    # benchmark's child process checks ids without loading the simulator).
    from aiobatch.testing._jobs import job_key

    key = job_key(job_id)
    return lambda i: f"itm_{key}_{i:07d}"


@dataclass(slots=True)
class Tally:
    """What a consumer saw, checked against the expected ids as it goes.

    Paged consumers report each page's first and last id (``page``); item
    consumers report every id (``item``).  A fast-but-wrong client fails here.
    """

    expected: Callable[[int], str]
    total: int
    count: int = 0
    first: str | None = None
    last: str | None = None
    errors: list[str] = field(default_factory=list)

    def page(self, first: str, last: str, n: int) -> None:
        if n <= 0:
            return
        self._check(self.count, first)
        self._check(self.count + n - 1, last)
        if self.first is None:
            self.first = first
        self.count += n
        self.last = last

    def item(self, item_id: str) -> None:
        self._check(self.count, item_id)
        if self.first is None:
            self.first = item_id
        self.count += 1
        self.last = item_id

    def _check(self, index: int, got: str) -> None:
        want = self.expected(index)
        if got != want and len(self.errors) < 5:
            self.errors.append(f"position {index}: got {got!r}, expected {want!r}")

    def verdict(self) -> list[str]:
        """Every problem found (empty: exactly the expected ids, in order)."""
        problems = list(self.errors)
        if self.count != self.total:
            problems.append(f"got {self.count} items, expected {self.total}")
        if self.total and self.first != self.expected(0):
            problems.append(f"first id {self.first!r}, expected {self.expected(0)!r}")
        if self.total and self.last != self.expected(self.total - 1):
            problems.append(f"last id {self.last!r}, expected {self.expected(self.total - 1)!r}")
        return problems

    def summary(self) -> dict[str, object]:
        problems = self.verdict()
        return {
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "ok": not problems,
            "problems": problems,
        }
