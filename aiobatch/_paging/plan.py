"""The pagination planner: pure decisions, no I/O.

Given the pages that came back, the planner says which ``(offset, limit)``
requests to send next, which received pages can be emitted (strictly in offset
order), and when the scan is complete.  It never trusts a single signal:

* The first page goes out alone; the rest are planned from its ``total_size``,
  tiled exactly up to it, with one probe at the total sent alongside.  The total
  is a plan, not a verdict (it "may be an estimate"): only an empty page at
  exactly the end of the data ends a scan, never the total, never a short page.
* A short page is the end of data or a silent cap; they look alike.  The hole
  behind it is fetched; if that holds items, the cap is learned and becomes the
  page size.  Past the total (or without one) the hole is probed a step at a
  time; speculation beyond the total doubles with every full page found there.
* Requests never overlap: a hole request starts exactly where the short page
  ended, so emitting pages in offset order neither skips nor repeats items.
* A server that ignores ``offset`` (the same page at two offsets) raises; the
  same first item at two offsets, an id repeated across a page boundary, items
  after an empty page, or (for a server-filtered listing) a moving total are
  drift, and whether drift raises is the caller's choice.

Memory is bounded: at most ``window`` pages are requested-but-not-emitted.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from .._errors import DriftError, PaginationError

__all__ = ["DriftError", "PageRequest", "Ready", "ScanPlan"]


@dataclass(frozen=True, slots=True)
class PageRequest:
    offset: int
    limit: int


@dataclass(frozen=True, slots=True)
class Ready:
    """Emit the page received at ``offset``, keeping its first ``take`` items."""

    offset: int
    take: int
    count: int  # items the page really covered (take <= count when max_items trims)


@dataclass(slots=True)
class ScanPlan:
    start_offset: int
    page_size: int
    window: int
    max_items: int | None = None
    raise_on_drift: bool = True
    #: A moving total means drift only for a server-filtered listing; otherwise
    #: it is an estimate wobbling (the item checks still guard the scan).
    total_is_exact: bool = True
    #: With client-side filtering, ``max_items`` counts kept items: the walker
    #: counts them and calls ``halt()`` (the planner only sees raw offsets).
    max_kept: int | None = None

    step: int = field(init=False)
    next_emit: int = field(init=False)
    frontier: int = field(init=False)
    total: int | None = field(init=False, default=None)
    end: int | None = field(init=False, default=None)
    emitted: int = field(init=False, default=0)
    drift: list[str] = field(init=False, default_factory=list)
    _gaps: list[tuple[int, int]] = field(init=False, default_factory=list)
    _inflight: dict[int, int] = field(init=False, default_factory=dict)
    _received: dict[int, tuple[int, str | None, str | None]] = field(
        init=False, default_factory=dict
    )
    _first_keys: dict[str, tuple[int, str | None]] = field(init=False, default_factory=dict)
    _suspect_caps: dict[int, int] = field(init=False, default_factory=dict)
    _held: dict[int, tuple[int, int]] = field(init=False, default_factory=dict)
    _first_done: bool = field(init=False, default=False)
    _beyond_full: int = field(init=False, default=0)
    _cap_known: bool = field(init=False, default=False)
    kept: int = field(init=False, default=0)
    _halted: bool = field(init=False, default=False)
    _last_key: str | None = field(init=False, default=None)
    _nonempty_beyond: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {self.page_size}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if self.start_offset < 0:
            raise ValueError(f"start_offset must be >= 0, got {self.start_offset}")
        if self.max_items is not None and self.max_items < 0:
            raise ValueError(f"max_items must be >= 0, got {self.max_items}")
        self.step = self.page_size
        self.next_emit = self.frontier = self.start_offset

    # --- state -------------------------------------------------------------

    def halt(self) -> None:
        """Stop here: enough items were kept."""
        self._halted = True

    @property
    def finished(self) -> bool:
        if self._halted:
            return True
        if self.max_items is not None and self.emitted >= self.max_items:
            return True
        return self.end is not None and self.next_emit >= self.end

    @property
    def outstanding(self) -> int:
        return len(self._inflight) + len(self._received)

    @property
    def stalled(self) -> bool:
        """Not finished, nothing in flight, nothing to ask: a planner bug, never a hang."""
        return not self.finished and not self._inflight

    # --- what to request ---------------------------------------------------

    def next_requests(self) -> list[PageRequest]:
        """Requests to send now; call again after every ``record``."""
        out: list[PageRequest] = []
        while not self.finished and self.outstanding < self.window:
            if not self._first_done and self._inflight:
                break  # the first page tells the total and any cap: plan from it
            req = self._next_gap() or self._next_frontier()
            if req is None:
                break
            self._inflight[req.offset] = req.limit
            out.append(req)
        return out

    def _next_gap(self) -> PageRequest | None:
        while self._gaps:
            start, stop = self._gaps[0]
            if self.end is not None and start >= self.end:
                self._gaps.clear()
                return None
            limit = min(self.step, stop - start)
            if start + limit >= stop:
                self._gaps.pop(0)
            else:
                self._gaps[0] = (start + limit, stop)
            return PageRequest(start, limit)
        return None

    def _next_frontier(self) -> PageRequest | None:
        if self.end is not None:
            return None
        if self._suspect_caps and not self._cap_known:
            # A short page may be a silent cap: learn it before planning more
            # pages of a size the server does not serve.
            return None
        offset = self.frontier
        total = self.total
        if total is not None and offset >= total:
            # Past the total (it may be an estimate): probe with one request, and
            # double the speculation each time a probe finds a full page.
            beyond = sum(1 for o in self._inflight if o >= total)
            if beyond >= min(self.window, 1 << min(self._beyond_full, 16)):
                return None
        limit = self.step
        if total is not None and offset < total:
            # Tile exactly up to the total, so the probe at the total (sent with
            # the last pages) proves the end without an extra round trip.
            limit = min(limit, total - offset)
        self.frontier += limit
        return PageRequest(offset, limit)

    # --- what came back ----------------------------------------------------

    def record(
        self,
        offset: int,
        count: int,
        *,
        total: int | None,
        first_key: str | None,
        last_key: str | None,
    ) -> list[Ready]:
        """Take one page's outcome; return the pages that may now be emitted, in order."""
        limit = self._inflight.pop(offset)
        count = min(count, limit)  # the caller trims a page that returned too many
        self._first_done = True
        self._observe_total(total, offset)
        self._check_offset_ignored(offset, first_key, last_key)
        if count == limit and self.total is not None and offset >= self.total:
            self._beyond_full += 1
        suspect = self._suspect_caps.pop(offset, None)
        held = self._held.pop(offset, None)
        if count > 0:
            if suspect is not None:
                # Data behind a short page: it was a silent cap. Ask for what the
                # server serves now (the larger of the two pages, so a cap that
                # varies does not shrink the step to its smallest case).
                self.step = min(self.step, max(suspect, count))
                self._cap_known = True
                if held is not None:
                    self._add_gap(*held)
            self._saw_items(offset, count)
        if count == 0:
            self._empty_at(offset)
        elif count < limit:
            self._short_at(offset, count, limit)
        self._received[offset] = (count, first_key, last_key)
        ready = self._ready()
        if self.end is not None:
            end = self.end
            for o in [o for o, (c, _, _) in self._received.items() if o >= end and c == 0]:
                del self._received[o]
        return ready

    def _observe_total(self, total: int | None, offset: int) -> None:
        if total is None:
            return
        if self.total is not None and total != self.total:
            what = f"total_size moved from {self.total} to {total} (page at {offset})"
            if self.total_is_exact:
                self._drift(what)
            else:
                self.drift.append(what)
        self.total = total

    def _check_offset_ignored(
        self, offset: int, first_key: str | None, last_key: str | None
    ) -> None:
        if first_key is None:
            return
        seen = self._first_keys.get(first_key)
        if seen is not None and seen[0] != offset:
            if seen[1] == last_key:
                raise PaginationError(
                    f"the server returned the same page at offsets {seen[0]} and {offset}: "
                    "it ignores `offset`; refusing to loop",
                    offset=self.next_emit,
                )
            # Same first item elsewhere, different page: the listing shifted.
            self._drift(f"item {first_key!r} seen first at offsets {seen[0]} and {offset}")
        if len(self._first_keys) < 4 * self.window:  # the first pages are enough
            self._first_keys[first_key] = (offset, last_key)

    def _saw_items(self, offset: int, count: int) -> None:
        if self.end is None or offset + count <= self.end:
            if self._nonempty_beyond is None or offset > self._nonempty_beyond:
                self._nonempty_beyond = offset
            return
        self._drift(f"items at offset {offset}, after an empty page at {self.end}")

    def _empty_at(self, offset: int) -> None:
        if self._nonempty_beyond is not None and self._nonempty_beyond > offset:
            self._drift(f"empty page at offset {offset}, but items at {self._nonempty_beyond}")
        if self.end is None or offset < self.end:
            self.end = offset

    def _short_at(self, offset: int, count: int, limit: int) -> None:
        # A short page never ends a scan by itself: the end of data and a silent
        # cap look alike (even when the page ends exactly at the total, which may
        # be an estimate).  Only an empty page at exactly its end proves the end.
        self._suspect(offset + count, offset + limit, count=count)

    def _suspect(self, start: int, stop: int, *, count: int) -> None:
        """Fetch the hole ``[start, stop)`` behind a short page of ``count`` items.

        Past the total (or without one), probe its first step only and hold the
        rest: an empty probe proves the end, a non-empty one proves a cap.
        """
        self._suspect_caps[start] = max(1, count)
        beyond_total = self.total is None or start >= self.total
        if beyond_total and start + self.step < stop:
            self._add_gap(start, start + self.step)
            self._held[start] = (start + self.step, stop)
        else:
            self._add_gap(start, stop)

    def _add_gap(self, start: int, stop: int) -> None:
        if start < stop:
            bisect.insort(self._gaps, (start, stop))

    def _ready(self) -> list[Ready]:
        out: list[Ready] = []
        while not self.finished and self.next_emit in self._received:
            offset = self.next_emit
            count, first_key, last_key = self._received.pop(offset)
            if count == 0:
                break
            if first_key is not None and first_key == self._last_key:
                self._drift(f"item {first_key!r} repeated across the page boundary at {offset}")
            take = count
            if self.max_items is not None:
                take = min(count, self.max_items - self.emitted)
            self.emitted += take
            self.next_emit = offset + count
            self._last_key = last_key
            out.append(Ready(offset, take, count))
        if self.finished:
            self._received.clear()
        return out

    def _drift(self, what: str) -> None:
        self.drift.append(what)
        if self.raise_on_drift:
            raise DriftError(
                f"the listing changed during the scan ({what}); items may be skipped or "
                "repeated. Scan a finished job, use filter_mode='client', or pass "
                "on_drift='warn' to accept it",
                offset=self.next_emit,
            )
