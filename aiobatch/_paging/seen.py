"""Exact duplicate detection over a scan's items, by 64-bit key hashes.

Offsets alone cannot prove that a listing was read once each: a server whose
order of tied rows changes per request, a stale cache answer, or one that
clamps offsets past the end all return well-formed pages whose items were
already delivered.  ``SeenKeys`` remembers the hashes of the items of every
page received (in flight to the consumer or delivered), so a page that repeats
any of them is caught before it is emitted.

Cost: one ``set`` of Python ints (plus a tuple per page), all work done by
C-level set operations (no per-item Python code): about 100 bytes and 0.3 µs
per remembered item.
``window`` bounds memory to the most recent ``window`` delivered items (plus
the pages not yet delivered); ``None`` remembers the whole scan.  Hash
collisions (two different ids, one 64-bit hash) are possible in principle:
about one chance in 10^7 for a 1M-item scan, and they can only cause a false
alarm, never a silent loss.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

__all__ = ["SeenKeys"]


class SeenKeys:
    __slots__ = ("_all", "_held", "_order", "_pages", "window")

    def __init__(self, window: int | None) -> None:
        if window is not None and window < 1:
            raise ValueError(f"the duplicate-check window must be >= 1 or None, got {window}")
        self.window = window
        self._all: set[int] = set()
        #: Hashes per page (a tuple: a quarter of a set's memory), for pages that
        #: can still be taken back (not yet delivered) or evicted later.
        self._pages: dict[int, tuple[int, ...]] = {}
        self._order: deque[int] = deque()
        self._held = 0

    def overlap(self, page: set[int]) -> set[int]:
        """The hashes of ``page`` that were seen before."""
        seen = self._all
        return set() if seen.isdisjoint(page) else page & seen

    def holders(self, hashes: Iterable[int]) -> list[int]:
        """Offsets of remembered pages holding any of ``hashes`` (a rare path)."""
        wanted = set(hashes)
        return sorted(o for o, page in self._pages.items() if not wanted.isdisjoint(page))

    def add(self, offset: int, page: set[int]) -> None:
        self._all |= page
        self._pages[offset] = tuple(page)

    def forget(self, offset: int) -> None:
        """Take back a page that was not delivered (it will be asked again)."""
        page = self._pages.pop(offset, None)
        if page is not None:
            self._all.difference_update(page)

    def delivered(self, offset: int) -> None:
        """The page at ``offset`` went to the consumer: keep it within the window."""
        window = self.window
        if window is None:
            # The whole scan is remembered in ``_all``; the per-page copy is only
            # needed while the page could still be taken back.
            self._pages.pop(offset, None)
            return
        page = self._pages.get(offset)
        if page is None:
            return
        self._order.append(offset)
        self._held += len(page)
        while self._held > window and len(self._order) > 1:
            old = self._pages.pop(self._order.popleft())
            self._held -= len(old)
            self._all.difference_update(old)
