"""A model server for the pagination planner: no network, no event loop.

``ModelServer`` answers ``PageRequest``s for a listing of items ``k0..k{n-1}``,
with every way a server was seen to get it wrong; ``drive`` runs a plan against
it as the walker does (in any completion order) and returns what was emitted.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from aiobatch._paging.plan import PageRequest, ScanPlan

TotalFn = Callable[[int], int | None]


@dataclass(frozen=True)
class Refused:
    """The server's 422 for a ``limit`` above its maximum (``le`` when it says)."""

    le: int | None


@dataclass
class ModelServer:
    """A listing of items ``k0..k{n-1}`` and the ways servers get it wrong."""

    n: int
    cap: int | None = None
    total: TotalFn = field(default=lambda n: n)
    ignore_offset: bool = False
    #: offset -> how many more times it answers empty (a transient glitch)
    empty_at: dict[int, int] = field(default_factory=dict)
    #: offset -> how many more times it answers with the previous page (stale cache)
    stale_at: dict[int, int] = field(default_factory=dict)
    #: offsets past the end serve the last page (a server that clamps offsets)
    clamp: bool = False
    #: groups of this many tied items, ordered differently on every request
    ties: int = 0
    #: a ``limit`` above this is refused with a 422 (``say_le``: naming the maximum)
    max_limit: int | None = None
    say_le: bool = True
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    requests: list[PageRequest] = field(default_factory=list)

    def answer(self, req: PageRequest) -> tuple[list[int], int | None] | Refused:
        self.requests.append(req)
        if self.max_limit is not None and req.limit > self.max_limit:
            return Refused(self.max_limit if self.say_le else None)
        offset = 0 if self.ignore_offset else req.offset
        limit = min(req.limit, self.cap or req.limit)
        total = self.total(self.n)
        if self.empty_at.get(req.offset, 0) > 0:
            self.empty_at[req.offset] -= 1
            return [], total
        if self.stale_at.get(req.offset, 0) > 0 and offset >= req.limit:
            self.stale_at[req.offset] -= 1
            offset -= req.limit
        if self.clamp and offset >= self.n:
            offset = max(0, self.n - limit)
        positions = range(offset, max(offset, min(self.n, offset + limit)))
        if not self.ties:
            return list(positions), total
        # A fresh order of each tied group for every request, as a database
        # may return rows with equal sort keys in any order on each query.
        orders: dict[int, list[int]] = {}
        out = []
        for p in positions:
            group = p - p % self.ties
            if group not in orders:
                orders[group] = list(range(group, min(self.n, group + self.ties)))
                self.rng.shuffle(orders[group])
            out.append(orders[group][p - group])
        return out, total


def drive(
    plan: ScanPlan, server: ModelServer, order: str | int = "fifo", max_steps: int = 100_000
) -> list[int]:
    """Run the plan to completion as the walker does; return the emitted items."""
    rng = random.Random(order) if isinstance(order, int) else None
    pending: list[PageRequest] = []
    emitted: list[int] = []
    pages: dict[int, list[int]] = {}
    expect = plan.start_offset
    for _ in range(max_steps):
        if plan.finished:
            return emitted
        pending.extend(plan.next_requests())
        assert pending, "the plan is stuck: not finished, nothing to request"
        if order == "fifo":
            req = pending.pop(0)
        elif order == "lifo":
            req = pending.pop()
        else:
            assert rng is not None
            req = pending.pop(rng.randrange(len(pending)))
        answer = server.answer(req)
        if isinstance(answer, Refused):
            assert plan.limit_rejected(req.offset, answer.le), "a refused limit was not learned"
            continue
        items, total = answer
        keys = [f"k{i}" for i in items]
        first, last = (keys[0], keys[-1]) if keys else (None, None)
        readies = plan.record(
            req.offset, len(items), total=total, first_key=first, last_key=last, keys=keys
        )
        pages[req.offset] = items
        for ready in readies:
            assert ready.offset == expect, "pages must be emitted in order, without gaps"
            expect = ready.offset + ready.count
            got = pages[ready.offset][: ready.take]
            if ready.dedup:
                seen = set(ready.skip)
                got = [i for i in got if hash(f"k{i}") not in seen and not seen.add(hash(f"k{i}"))]  # type: ignore[func-returns-value]
            emitted.extend(got)
    raise AssertionError("the plan did not finish")


TOTALS: dict[str, TotalFn] = {
    "exact": lambda n: n,
    "missing": lambda n: None,
    "too_high": lambda n: 2 * n + 7,
    "too_low": lambda n: n // 3,
    "zero": lambda n: 0,
}
