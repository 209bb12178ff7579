"""Exact duplicate detection over a scan's items, by 64-bit key hashes.

Offsets alone cannot prove that a listing was read once each: a server whose
order of tied rows changes per request, a stale cache answer, or one that
clamps offsets past the end all return well-formed pages whose items were
already delivered.  ``SeenKeys`` remembers the keys of every page received (in
flight to the consumer or delivered), so a page that repeats any of them is
caught before it is emitted.

Cost, measured on real pages: the check of a clean page is one C-level
``set.update`` of its hashes (the size of the set tells whether every one was
new), and forgetting a page past the window one ``difference_update``: no
per-item Python code.  Only hashes are kept (an int per item, never the item
ids themselves, whose strings would otherwise outlive their pages).  A page
that repeats anything takes the slow path (``overlap`` and friends), which
only a misbehaving server ever pays for.  Hash collisions (two different ids,
one 64-bit hash) are possible in principle: about one chance in 10^7 for a
1M-item scan, and they can only cause a false alarm, never a silent loss.

``window`` bounds memory to the most recent ``window`` delivered items (plus
the pages not yet delivered), about 90 bytes per item; ``None`` remembers the
whole scan.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

__all__ = ["SeenKeys"]


class SeenKeys:
    __slots__ = ("_all", "_held", "_order", "_pages", "window")

    def __init__(self, window: int | None) -> None:
        if window is not None and window < 1:
            raise ValueError(f"the duplicate-check window must be >= 1 or None, got {window}")
        self.window = window
        #: Invariant: the union of ``_pages``' values.
        self._all: set[int] = set()
        #: Each remembered page's own hashes (never one another page added), for
        #: pages that can still be taken back (not yet delivered) or evicted later.
        self._pages: dict[int, Sequence[int] | set[int]] = {}
        self._order: deque[int] = deque()
        self._held = 0

    def add_if_new(self, offset: int, keys: Sequence[str]) -> bool:
        """Remember a page whose keys are all new and distinct (True), or change
        nothing (False: the caller looks closer with ``overlap``)."""
        hashes = list(map(hash, keys))
        seen = self._all
        before = len(seen)
        seen.update(hashes)
        if len(seen) - before == len(hashes):
            self._pages[offset] = hashes
            return True
        # Rare: undo by rebuilding from the pages (keys shared with another page
        # must stay, so removing this page's keys would be wrong).
        self._all = set().union(*self._pages.values())
        return False

    def overlap(self, page: set[int]) -> set[int]:
        """The hashes of ``page`` that were seen before."""
        seen = self._all
        return set() if seen.isdisjoint(page) else page & seen

    def holders(self, hashes: Iterable[int]) -> list[int]:
        """Offsets of remembered pages holding any of ``hashes`` (a rare path)."""
        wanted = set(hashes)
        return sorted(o for o, page in self._pages.items() if not wanted.isdisjoint(page))

    def add(self, offset: int, page: set[int]) -> None:
        """Remember hashes known to be new (``page`` minus its ``overlap``)."""
        self._all |= page
        self._pages[offset] = page

    def forget(self, offset: int) -> None:
        """Take back a page that was not delivered (it will be asked again)."""
        page = self._pages.pop(offset, None)
        if page is not None:
            self._all.difference_update(page)

    def delivered(self, offset: int) -> None:
        """The page at ``offset`` went to the consumer: keep it within the window."""
        window = self.window
        if window is None:
            return  # the whole scan is remembered (each page's hashes are kept)
        page = self._pages.get(offset)
        if page is None:
            return
        self._order.append(offset)
        self._held += len(page)
        while self._held > window and len(self._order) > 1:
            old = self._pages.pop(self._order.popleft())
            self._held -= len(old)
            self._all.difference_update(old)
