"""Where each status sits in a job, computed instead of stored.

Items are grouped in fixed-size blocks.  Every full block holds the *same exact
number* of items of each status (the mix apportioned over the block size), and
a seeded shuffle spreads them inside the block.  That makes "how many failed
items come before index n" and "the k-th failed item" plain arithmetic plus one
lookup in a single block, so any page, filtered or not, at any offset, costs
time proportional to the page rather than the job.  Only a bounded LRU of
recently used blocks is kept in memory.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Mapping, Sequence

__all__ = [
    "BLOCK",
    "CANCELLED",
    "CODE",
    "COMPLETED",
    "DEFAULT_MIX",
    "FAILED",
    "PENDING",
    "PROCESSING",
    "SKIPPED",
    "STATUSES",
    "ExplicitLayout",
    "StatusLayout",
    "apportion",
    "mix_weights",
]

STATUSES = ("pending", "processing", "completed", "failed", "skipped", "cancelled")
PENDING, PROCESSING, COMPLETED, FAILED, SKIPPED, CANCELLED = range(6)
CODE = {name: code for code, name in enumerate(STATUSES)}
BLOCK = 1000

#: Final statuses of a finished-looking job, with a few items still in flight.
#: A finished job, as most scans meet them (so its status is terminal and
#: status filters can run on the server); running jobs get pending/processing
#: from their progress, and any mix may name all six statuses.
DEFAULT_MIX: Mapping[str, float] = {
    "completed": 0.88,
    "failed": 0.05,
    "skipped": 0.045,
    "cancelled": 0.025,
}

_CODES_CACHE = 512
_POS_CACHE = 2048


def mix_weights(mix: Mapping[str, float], *, final_only: bool = False) -> tuple[float, ...]:
    """The mix as six weights in code order.

    ``final_only`` drops pending/processing: a running job's own progress decides
    which items are in flight, the mix only decides how finished items ended.
    """
    unknown = set(mix) - set(CODE)
    if unknown:
        raise ValueError(f"unknown status in mix: {sorted(unknown)}; use {list(STATUSES)}")
    weights = [float(mix.get(name, 0.0)) for name in STATUSES]
    if any(w < 0 for w in weights):
        raise ValueError("mix weights must be >= 0")
    if final_only:
        weights[PENDING] = weights[PROCESSING] = 0.0
    if sum(weights) <= 0:
        raise ValueError("mix must give a positive weight to at least one (final) status")
    return tuple(weights)


def apportion(weights: Sequence[float], size: int) -> tuple[int, ...]:
    """Exact integer counts summing to ``size`` (largest remainder, ties by code)."""
    total = sum(weights)
    quotas = [w / total * size for w in weights]
    counts = [int(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda k: (counts[k] - quotas[k], k))
    for k in order[: size - sum(counts)]:
        counts[k] += 1
    return tuple(counts)


class StatusLayout:
    """The raw (mix-drawn) status code of every index of one job."""

    def __init__(self, total: int, weights: Sequence[float], seed: int, block: int = BLOCK):
        if total < 0:
            raise ValueError("total must be >= 0")
        self.total = total
        self.block = block
        self.seed = seed
        self.full_blocks, self.tail = divmod(total, block)
        self.counts = apportion(weights, block)
        self.tail_counts = apportion(weights, self.tail) if self.tail else (0,) * len(weights)
        self._codes: OrderedDict[int, bytes] = OrderedDict()
        self._positions: OrderedDict[tuple[int, int], array[int]] = OrderedDict()

    # --- one block ----------------------------------------------------------

    def codes(self, b: int) -> bytes:
        """Status code of each position of block ``b``."""
        cached = self._codes.get(b)
        if cached is not None:
            self._codes.move_to_end(b)
            return cached
        counts = self.counts if b < self.full_blocks else self.tail_counts
        arr = bytearray()
        for code, n in enumerate(counts):
            arr += bytes((code,)) * n
        # A str seed is hashed with SHA-512: stable across processes, unlike hash().
        random.Random(f"aiobatch-sim/{self.seed}/{b}").shuffle(arr)
        out = bytes(arr)
        self._codes[b] = out
        if len(self._codes) > _CODES_CACHE:
            self._codes.popitem(last=False)
        return out

    def positions(self, b: int, mask: int) -> array[int]:
        """Sorted in-block positions of block ``b`` whose code is in ``mask``."""
        key = (b, mask)
        cached = self._positions.get(key)
        if cached is not None:
            self._positions.move_to_end(key)
            return cached
        codes = self.codes(b)
        out = array("H", [p for p, c in enumerate(codes) if mask >> c & 1])
        self._positions[key] = out
        if len(self._positions) > _POS_CACHE:
            self._positions.popitem(last=False)
        return out

    # --- arithmetic over blocks ---------------------------------------------

    def per_block(self, mask: int) -> int:
        return sum(n for code, n in enumerate(self.counts) if mask >> code & 1)

    def count_before(self, mask: int, n: int) -> int:
        """How many of indices ``[0, n)`` have a code in ``mask``."""
        n = min(max(n, 0), self.total)
        b, rem = divmod(n, self.block)
        count = b * self.per_block(mask)
        if rem:
            count += bisect_left(self.positions(b, mask), rem)
        return count

    def select(self, mask: int, rank: int, limit: int, below: int) -> list[int]:
        """Indices (ascending, all ``< below``) of the ``rank``-th and following
        items whose code is in ``mask``; at most ``limit`` of them."""
        out: list[int] = []
        if limit <= 0 or rank >= self.count_before(mask, below):
            return out
        per = self.per_block(mask)
        if per and rank < per * self.full_blocks:
            b, r = divmod(rank, per)
        else:
            b, r = self.full_blocks, rank - per * self.full_blocks
        last = self.full_blocks if self.tail else self.full_blocks - 1
        while len(out) < limit and b <= last:
            base = b * self.block
            for p in self.positions(b, mask)[r : r + limit - len(out)]:
                if base + p >= below:
                    return out
                out.append(base + p)
            b, r = b + 1, 0
            if not per and b < self.full_blocks:
                b = self.full_blocks  # no full block holds this status: skip to the tail
        return out


class ExplicitLayout(StatusLayout):
    """The status codes of a job described item by item (``SimJob(items=...)``):
    small by nature, so counting is a prefix sum per status mask."""

    def __init__(self, codes: bytes, block: int = BLOCK) -> None:
        super().__init__(len(codes), (1.0,), 0, block)
        self._all = codes
        self._prefix: dict[int, array[int]] = {}

    def codes(self, b: int) -> bytes:
        return self._all[b * self.block : (b + 1) * self.block]

    def _sums(self, mask: int) -> array[int]:
        sums = self._prefix.get(mask)
        if sums is None:
            sums = array("q", [0])
            for c in self._all:
                sums.append(sums[-1] + (mask >> c & 1))
            self._prefix[mask] = sums
        return sums

    def count_before(self, mask: int, n: int) -> int:
        return self._sums(mask)[min(max(n, 0), self.total)]

    def select(self, mask: int, rank: int, limit: int, below: int) -> list[int]:
        out: list[int] = []
        sums = self._sums(mask)
        # The first index whose count-before reaches rank holds the rank-th match.
        i = bisect_left(sums, rank + 1) - 1
        while 0 <= i < min(below, self.total) and len(out) < limit:
            if mask >> self._all[i] & 1:
                out.append(i)
            i += 1
        return out
