"""The pagination planner: pure decisions, no I/O.

Given the pages that came back, the planner says which ``(offset, limit)``
requests to send next, which received pages can be emitted (strictly in offset
order), and when the scan is complete.  It never trusts a single signal:

* The first page goes out alone; the rest are planned from its ``total_size``,
  tiled exactly up to it, with one probe at the total sent alongside.  Without a
  total, the look-ahead grows as pages come back full (slow start: each full
  page admits two more requests, up to the window), never a fixed burst.  The total
  is a plan, not a verdict (it "may be an estimate"): only an empty page at
  exactly the end of the data ends a scan, never the total, never a short page.
* An empty page is the end only when nothing contradicts it: one with items
  already seen beyond it is asked again (bounded) and never believed; one
  anywhere but exactly at the known total is confirmed (bounded); and a scan never
  ends while requests beyond its end are still out (their answer could
  contradict it).
* A short page is the end of data or a silent cap; they look alike.  The hole
  behind it is fetched; if that holds items, the cap is learned and becomes the
  page size.  Past the total (or without one) the hole is probed a step at a
  time; speculation beyond the total doubles with every full page found there.
  A 422 that rejects ``limit`` lowers the page size the same way.
* Requests never overlap: a hole request starts exactly where the short page
  ended, so emitting pages in offset order neither skips nor repeats items.
* Every item key is checked against the keys already received (``SeenKeys``):
  of two pages that claim the same items, the one at the lower offset is
  believed and the other is asked again (bounded).  If it keeps
  repeating: past the total it is a server clamping offsets (the end); a whole
  page again below the total is a server ignoring ``offset`` (an error); items
  repeated in a different arrangement are drift (an unstable order or a moving
  listing), and whether drift raises is the caller's choice.

Memory is bounded: at most ``window`` pages are requested-but-not-emitted, and
the duplicate check keeps hashes of the last ``dedup_window`` items.
"""

from __future__ import annotations

import bisect
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._errors import DriftError, PaginationError
from .position import cut
from .seen import SeenKeys

__all__ = ["DriftError", "PageRequest", "Ready", "ScanPlan"]


@dataclass(frozen=True, slots=True)
class PageRequest:
    offset: int
    limit: int
    #: How many times this offset was asked again because its answer was in
    #: doubt: the walker waits a retry's backoff first, so that a blip of bad
    #: answers is not "confirmed" by re-asks a few milliseconds apart.
    reask: int = 0


@dataclass(frozen=True, slots=True)
class Ready:
    """Emit the page received at ``offset``, keeping its first ``take`` items."""

    offset: int
    take: int
    count: int  # items the page really covered (take <= count when max_items trims)
    #: Key hashes to drop from the page: items already received, accepted
    #: with ``on_drift='warn'`` (empty in every other case).
    skip: frozenset[int] = frozenset()
    #: Drop ``skip`` and keep only the first of keys repeated within the page.
    dedup: bool = False


@dataclass(frozen=True, slots=True)
class _Accepted:
    """How a page with items was accepted: what to drop from it, and how many."""

    skip: frozenset[int]
    dropped: int


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
    #: Items whose keys the duplicate check remembers (``None``: the whole scan).
    dedup_window: int | None = 20_000
    #: How many times a suspicious answer (an empty page below the total,
    #: repeated items) is asked again before the planner decides what it means.
    reasks: int = 2
    #: Where the listing is expected to end (the job's own counts), if known: the
    #: first wave is tiled up to it at once instead of waiting a round trip for
    #: the first page's total.  Only a plan: every rule below still decides.
    expected_end: int | None = None
    #: The total the consumer last saw before this scan (a checkpoint's): a
    #: lower first total means the listing shrank under the resume point.
    last_total: int | None = None

    step: int = field(init=False)
    next_emit: int = field(init=False)
    frontier: int = field(init=False)
    total: int | None = field(init=False, default=None)
    end: int | None = field(init=False, default=None)
    emitted: int = field(init=False, default=0)
    #: Items dropped as duplicates (``on_drift='warn'`` only).
    skipped: int = field(init=False, default=0)
    kept: int = field(init=False, default=0)
    drift: list[str] = field(init=False, default_factory=list)
    #: What the server did that the plan handled without loss (logged as info).
    notes: list[str] = field(init=False, default_factory=list)
    _seen: SeenKeys = field(init=False)
    _gaps: list[tuple[int, int]] = field(init=False, default_factory=list)
    _inflight: dict[int, int] = field(init=False, default_factory=dict)
    _received: dict[int, tuple[int, _Accepted]] = field(init=False, default_factory=dict)
    _asked: Counter[int] = field(init=False, default_factory=Counter)
    _suspect_caps: dict[int, int] = field(init=False, default_factory=dict)
    _held: dict[int, tuple[int, int]] = field(init=False, default_factory=dict)
    _first_done: bool = field(init=False, default=False)
    _beyond_full: int = field(init=False, default=0)
    #: Full pages received: how far a scan without a total may look ahead.
    _full_seen: int = field(init=False, default=0)
    #: The job's counts are being read (the listing sent no total): empty pages
    #: wait for them (offset -> limit) instead of being asked again.
    _sizing: bool = field(init=False, default=False)
    _sizing_asked: bool = field(init=False, default=False)
    _parked: dict[int, int] = field(init=False, default_factory=dict)
    _cap_known: bool = field(init=False, default=False)
    _halted: bool = field(init=False, default=False)
    _nonempty_beyond: int | None = field(init=False, default=None)
    _end_limit: int = field(init=False, default=0)
    #: The empty page being confirmed, and empty answers above it (offset -> limit).
    _doubting: int | None = field(init=False, default=None)
    _empties: dict[int, int] = field(init=False, default_factory=dict)
    #: Keys of received pages in server order, and of the last two pages
    #: delivered (to tell a clamped repeat of the last page from other repeats).
    _order: dict[int, Sequence[str]] = field(init=False, default_factory=dict)
    _tail: deque[Sequence[str]] = field(init=False, default_factory=lambda: deque(maxlen=2))
    #: Suspect pages to ask again when the scan reaches them: offset -> limit.
    _deferred: dict[int, int] = field(init=False, default_factory=dict)
    _closed: bool = field(init=False, default=False)
    #: Set when the scan ended short of its total with ``raise_on_drift``: the
    #: walker raises it after the last page (a pure planner never raises it).
    shortfall: DriftError | None = field(init=False, default=None)

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
        self._seen = SeenKeys(self.dedup_window)

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
        end = self.end
        if end is None or self.next_emit < end:
            return False
        # An answer still out beyond the end could contradict it: wait for it.
        return all(o < end for o in self._inflight)

    @property
    def outstanding(self) -> int:
        waiting = len(self._deferred) + len(self._empties) + len(self._parked)
        return len(self._inflight) + len(self._received) + waiting

    @property
    def stalled(self) -> bool:
        """Not finished, nothing in flight, nothing to ask: a planner bug, never a hang."""
        return not self.finished and not self._inflight and not self._sizing

    @property
    def delivered_unique(self) -> int:
        return self.emitted - self.skipped

    # --- what to request ---------------------------------------------------

    def next_requests(self) -> list[PageRequest]:
        """Requests to send now; call again after every ``record``."""
        out: list[PageRequest] = []
        while not self.finished:
            if not self._first_done and self._inflight and not self._first_wave_open():
                break  # the first page tells the total and any cap: plan from it
            if self.outstanding >= self.window:
                # Full: only a page asked again may still go, when nothing else
                # is out (pages waiting on it count against the window).
                req = None if self._inflight else self._next_gap()
            else:
                req = self._next_gap() or self._next_frontier()
            if req is None:
                break
            self._inflight[req.offset] = req.limit
            asked = self._asked.get(req.offset)
            out.append(PageRequest(req.offset, req.limit, asked) if asked else req)
        return out

    def _first_wave_open(self) -> bool:
        """Before any answer: more of the expected listing may be asked for."""
        expected = self.expected_end
        return expected is not None and self.frontier < expected

    def _wanted_stop(self) -> int | None:
        """The offset past which no item is wanted (``max_items``), if any."""
        return None if self.max_items is None else self.start_offset + self.max_items

    def _next_gap(self) -> PageRequest | None:
        while self._gaps:
            start, stop = self._gaps[0]
            if self.end is not None and start >= self.end:
                return None  # kept: a contradicted end reopens them
            wanted = self._wanted_stop()
            if wanted is not None and start >= wanted:
                self._gaps.pop(0)
                continue
            limit = min(self.step, stop - start)
            if start + limit >= stop:
                self._gaps.pop(0)
            else:
                self._gaps[0] = (start + limit, stop)
            if start in self._inflight:
                continue  # asked again while its answer is still out: that answer will do
            if wanted is not None:
                limit = min(limit, wanted - start)
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
        wanted = self._wanted_stop()
        if wanted is not None and offset >= wanted:
            return None
        if self._enough_ahead_for_kept():
            return None
        if self._ramp_full(offset):
            return None
        total = self._known_end()
        if (
            total is not None
            and offset >= total
            and self._beyond(total) >= min(self.window, 1 << min(self._beyond_full, 16))
        ):
            # Past the total (it may be an estimate): probe with one request, and
            # double the speculation each time a probe finds a full page.
            return None
        limit = self.step
        if wanted is not None:
            limit = min(limit, wanted - offset)
        self.frontier += limit
        return PageRequest(offset, limit)

    def _known_end(self) -> int | None:
        """Where the listing should end: its total, else the job's counts."""
        return self.total if self.total is not None else self.expected_end

    def wants_size(self) -> bool:
        """The first page came back without a total and the job's counts are not
        known: reading them (one request) saves the confirmations of the end."""
        return (
            self._first_done
            and self.total is None
            and self.expected_end is None
            and not self._sizing_asked
            and not self.finished
        )

    def sizing(self) -> None:
        """The job's counts were asked for: hold any empty page until they come."""
        self._sizing = self._sizing_asked = True

    def sized(self, expected: int | None) -> list[Ready]:
        """The job's counts came (None: not to be had); the held empty pages are
        judged now, as though they had just come back."""
        self._sizing = False
        if expected is not None and self.total is None and self.expected_end is None:
            self.expected_end = expected
        parked, self._parked = self._parked, {}
        out: list[Ready] = []
        for offset, limit in sorted(parked.items()):
            if self.finished:
                break
            self._inflight[offset] = limit
            out += self.record(offset, 0, total=None, first_key=None, last_key=None, keys=())
        return out

    def _ramp_full(self, offset: int) -> bool:
        """Without a total (or the job's counts) to plan from, look ahead no
        further than the full pages already received: each full page admits two
        more requests (slow start), so a small job wastes little past its end
        and a large one reaches the whole window in a few round trips."""
        if self.total is not None or self.expected_end is not None:
            return False
        ahead = min(self.window, max(1, self._full_seen))
        return offset - self.next_emit >= ahead * self.step

    def _beyond(self, total: int) -> int:
        """Requests out (or waiting) that reach past ``total``.

        The last page is asked full-size even where the total says it is
        partial (a total a little low is revealed by it at no extra request); it
        then counts as the first probe past the total, and only an answer from
        exactly the total, never one above it, proves the end.
        """
        pending = (self._inflight, self._deferred, self._empties)
        return sum(1 for waiting in pending for o, lim in waiting.items() if o + lim > total)

    def _enough_ahead_for_kept(self) -> bool:
        """With client-side filtering and ``max_items``: plan no further than the
        kept ratio seen so far says is needed (plus a quarter and a page)."""
        if self.max_kept is None or not self.kept:
            return False
        scanned = self.next_emit - self.start_offset
        need = (self.max_kept - self.kept) * scanned / self.kept
        return self.frontier - self.next_emit >= need * 1.25 + self.step

    def limit_rejected(self, offset: int, max_limit: int | None) -> bool:
        """The request at ``offset`` was refused for its ``limit`` (a 422).

        Lowers the page size to ``max_limit`` (or halves it when the server did
        not say) and asks for the same range again in smaller pages.  Returns
        False when that cannot help (the caller then raises the error).
        """
        limit = self._inflight.get(offset)
        if limit is None:
            return False
        new = max_limit if max_limit is not None else limit // 2
        if new < 1 or new >= limit:
            return False
        del self._inflight[offset]
        self.step = min(self.step, new)
        self._add_gap(offset, offset + limit)
        self.notes.append(f"the server refused limit={limit}; page size lowered to {self.step}")
        return True

    # --- what came back ----------------------------------------------------

    def record(
        self,
        offset: int,
        count: int,
        *,
        total: int | None,
        first_key: str | None,
        last_key: str | None,
        keys: Sequence[str] | None = None,
    ) -> list[Ready]:
        """Take one page's outcome; return the pages that may now be emitted, in order.

        ``keys`` are the page's item keys in order (the walker always passes
        them; without them only the first and last key are checked).
        """
        limit = self._inflight.pop(offset)
        count = min(count, limit)  # the caller trims a page that returned too many
        if keys is None:
            keys = list(dict.fromkeys(k for k in (first_key, last_key) if k is not None))
        known_total = total if total is not None else self._known_end()
        page: set[int] | None = None  # None: remembered by the fast path
        accepted: _Accepted | None = _CLEAN
        if count == 0:
            if self._doubt_empty(offset, limit, known_total):
                return []
        elif not self._seen.add_if_new(offset, keys):
            page = set(map(hash, keys))
            accepted = self._judge_keys(offset, limit, keys, page, known_total)
            if accepted is None:
                return []  # asked again
            if accepted is _CLAMPED:
                count, page = 0, set()
        self._first_done = True
        self._observe_total(total, offset)
        if count == limit:
            self._full_seen += 1
            end = self._known_end()
            if end is not None and offset >= end:
                self._beyond_full += 1
        suspect = self._suspect_caps.pop(offset, None)
        held = self._held.pop(offset, None)
        if count > 0:
            assert accepted is not None
            if suspect is not None:
                # Data behind a short page: it was a silent cap. Ask for what the
                # server serves now (the larger of the two pages, so a cap that
                # varies does not shrink the step to its smallest case).
                self.step = min(self.step, max(suspect, count))
                self._cap_known = True
                if held is not None:
                    self._add_gap(*held)
            self._saw_items(offset, count)
            self._empties.pop(offset, None)
            if offset == self._doubting:
                self._doubt_next()
            if page is not None:
                self._seen.add(offset, page - accepted.skip if accepted.skip else page)
            self._received[offset] = (count, accepted)
            self._order[offset] = keys
            if count < limit:
                self._short_at(offset, count, limit)
        else:
            self._empty_at(offset, limit)
            self._received[offset] = (0, _CLEAN)
        ready = self._ready()
        if self.end is not None:
            end = self.end
            for o in [o for o, (c, _) in self._received.items() if o >= end and c == 0]:
                del self._received[o]
            for o in [o for o in self._order if o >= end and o not in self._received]:
                del self._order[o]
        if self.finished and not self._closed:
            self._close()
        return ready

    def _ask_again(self, offset: int, limit: int, budget: int | None = None) -> bool:
        """Queue ``offset`` once more if its budget allows; True if queued."""
        if offset in self._inflight or any(start == offset for start, _ in self._gaps):
            # Already being asked again: that answer will do, and the budget
            # counts answers (spending it twice on one request lost a page).
            return True
        if self._asked[offset] >= (self.reasks if budget is None else budget):
            return False
        self._asked[offset] += 1
        self._add_gap(offset, offset + limit)
        return True

    def _doubt_empty(self, offset: int, limit: int, known_total: int | None) -> bool:
        """An empty page that may not be the end: ask again (True) or decide.

        Items already seen beyond it contradict it most: it is asked again up to
        ``reasks`` times, then the scan fails rather than end early.  Otherwise
        an empty page at exactly the known total is believed (the common end of
        a scan: no extra request), and so is one beyond the current end (it
        agrees with it); any other (below the total, past it, or without one)
        is asked again up to ``reasks`` times before it becomes the end (below
        the total, which may be an estimate, that is noted).
        """
        beyond = self._nonempty_beyond
        if beyond is not None and beyond > offset:
            if self._ask_again(offset, limit):
                return True
            raise PaginationError(
                f"the server answered offset {offset} with an empty page "
                f"{self._asked[offset] + 1} times, but it holds items at offset {beyond}: "
                "refusing to end the scan early",
                offset=self.next_emit,
            )
        if offset == known_total or (self.end is not None and offset > self.end):
            return False
        if self._sizing and (beyond is None or beyond < offset):
            self._parked[offset] = limit
            return True
        doubting = self._doubting
        if doubting is not None and offset > doubting:
            # It agrees with the lower empty page being confirmed: decided with
            # it (moot if that one is the end, asked again if it is not).
            self._empties[offset] = limit
            return True
        if self._ask_again(offset, limit):
            if doubting is not None and doubting != offset:
                self._empties[doubting] = limit
            self._doubting = offset
            return True
        self._doubting = None
        self._empties.clear()
        if known_total is not None and offset < known_total:
            # Said once the scan ends (``_close``): answers still out may reopen it.
            self.notes.append(
                f"the listing ended at offset {offset}, below its total_size {known_total} "
                f"(the empty page was asked {self._asked[offset] + 1} times)"
            )
        return False

    def _doubt_next(self) -> None:
        """The empty page being confirmed held items after all: the lowest empty
        answer above it, believed only because of it, is asked again."""
        self._doubting = None
        if self._empties:
            nxt = min(self._empties)
            limit = self._empties.pop(nxt)
            self._doubting = nxt
            if not self._ask_again(nxt, limit):
                self._add_gap(nxt, nxt + limit)

    def _judge_keys(
        self,
        offset: int,
        limit: int,
        keys: Sequence[str],
        page: set[int],
        known_total: int | None,
    ) -> _Accepted | None:
        """Check a page's keys against every key received.

        Returns ``_CLEAN`` (no repeat), ``_CLAMPED`` (a clamped answer past the
        end: no items), what to drop (repeats accepted as drift), or None (the
        page was queued to be asked again).
        """
        repeats = self._seen.overlap(page)
        if not repeats and len(page) == len(keys):
            return _CLEAN
        holders = self._seen.holders(repeats)
        if repeats and all(o > offset and self._can_take_back(o) for o in holders):
            # Two answers claim the same items: the one at the lower offset is
            # believed (a stale page repeats earlier items; a clamped one, the
            # last page), and the pages above it are asked again in turn.
            for other in holders:
                self._take_back(other)
            repeats = self._seen.overlap(page)
            if not repeats and len(page) == len(keys):
                return _CLEAN
            holders = self._seen.holders(repeats)
        if offset != self.next_emit:
            # Judge it once every item before it is known: ask again when the
            # scan reaches it (no budget spent on answers that are still out).
            self._deferred[offset] = limit
            return None
        if self._ask_again(offset, limit):
            return None
        whole_repeat = len(repeats) == len(page) == len(keys)
        clamped = whole_repeat and self._repeats_the_tail(keys)
        if clamped and known_total is not None and offset >= known_total:
            self.notes.append(
                f"the server answered offset {offset} (past total_size {known_total}) with "
                "items it had already sent (it clamps offsets past the end): taken as the end"
            )
            return _CLAMPED
        where = ", ".join(map(str, holders)) or "earlier pages"
        if whole_repeat:
            raise PaginationError(
                f"the server returned the items of offset(s) {where} again at offset {offset} "
                f"({self.reasks + 1} times): it ignores `offset` (or clamps it); refusing to loop",
                offset=self.next_emit,
            )
        name = next((k for k in keys if hash(k) in repeats), None)
        also = f"also at offset {where}"
        if name is None:  # a repeat inside this one page: name it too
            name, also = _first_repeat(keys), "twice in this page"
        # Kept: the first occurrence of each key not delivered before.
        dropped = len(keys) - (len(page) - len(repeats))
        self._drift(
            f"{dropped} item(s) at offset {offset} were already received"
            + (f" (item {cut(name)}, {also})" if name is not None else "")
            + ": the server's order is not stable (ties?) or the listing moved"
        )
        return _Accepted(frozenset(repeats), dropped)

    def _repeats_the_tail(self, keys: Sequence[str]) -> bool:
        """Are ``keys`` exactly the last items delivered, in order (a rare path)?"""
        tail = [k for page in self._tail for k in page]
        return len(keys) <= len(tail) and list(keys) == tail[len(tail) - len(keys) :]

    def _can_take_back(self, offset: int) -> bool:
        received = self._received.get(offset)
        return received is not None and received[0] > 0

    def _take_back(self, offset: int) -> None:
        count, _ = self._received.pop(offset)
        self._order.pop(offset, None)
        self._seen.forget(offset)
        self._deferred[offset] = count

    def _observe_total(self, total: int | None, offset: int) -> None:
        if total is None:
            return
        if self.total is None and self.last_total is not None and total < self.last_total:
            # Across two scans as within one: a total that went down means
            # every offset after the removed items shifted back, so starting
            # at the saved position would skip as many items.
            self._drift(
                f"total_size fell from {self.last_total} (when the resume point was saved) "
                f"to {total} (page at {offset})"
            )
        if self.total is not None and total != self.total:
            what = f"total_size moved from {self.total} to {total} (page at {offset})"
            if self.total_is_exact or total < self.total:
                # A total that goes down means items left the listing: every
                # offset after them shifted, so items were skipped.
                self._drift(what)
            else:
                self.notes.append(f"{what}; an estimate here, not drift")
        self.total = total

    def _saw_items(self, offset: int, count: int) -> None:
        end = self.end
        if end is not None and offset + count > end:
            # Items beyond an empty page: the empty answer may have been a
            # glitch.  Reopen the scan and ask for the end once more; if it is
            # still empty, the items beyond it make that an error.
            self.end = None
            self._add_gap(end, end + self._end_limit)
            self.notes.append(f"items at offset {offset} beyond an empty page at {end}")
        if self._nonempty_beyond is None or offset > self._nonempty_beyond:
            self._nonempty_beyond = offset

    def _empty_at(self, offset: int, limit: int) -> None:
        if self.end is None or offset < self.end:
            self.end = offset
            self._end_limit = limit

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
            count, accepted = self._received[offset]
            if count == 0:
                break
            del self._received[offset]
            take = count
            if self.max_items is not None:
                take = min(count, self.max_items - self.emitted)
            self.emitted += take
            self.skipped += accepted.dropped
            self.next_emit = offset + count
            self._seen.delivered(offset)
            # The last items delivered, in order: what a clamping server repeats.
            self._tail.append(self._order.pop(offset, ()))
            out.append(Ready(offset, take, count, accepted.skip, accepted.dropped > 0))
        if self.finished:
            self._received.clear()
            self._order.clear()
        elif self.next_emit in self._deferred and self.next_emit not in self._received:
            head = self.next_emit
            self._add_gap(head, head + self._deferred.pop(head))
        return out

    def _close(self) -> None:
        """Once, at the end: say what the counts show (a warning, never a raise:
        the total may be an estimate)."""
        self._closed = True
        complete = not self._halted and self.max_items is None and self.start_offset == 0
        total = self.total
        if complete and total is not None and self.delivered_unique < total:
            what = (
                f"the scan delivered {self.delivered_unique} unique items but the last "
                f"total_size was {total}: {total - self.delivered_unique} fewer, "
                f"{self.skipped} duplicate(s) dropped"
            )
            if self.skipped:
                self.notes.append(what)  # the drift behind it was reported already
                return
            # Short of the total it was told: loud (the walker raises it once every
            # page is handed out), or accepted as drift with ``on_drift='warn'``.
            self.drift.append(f"{what}: the listing ended short of its total_size")
            if self.raise_on_drift:
                self.shortfall = DriftError(
                    f"the listing ended short of its total_size ({what}); items may be "
                    "missing. Pass on_drift='warn' to accept it",
                    offset=self.next_emit,
                )

    def _drift(self, what: str) -> None:
        self.drift.append(what)
        if self.raise_on_drift:
            raise DriftError(
                f"the listing changed during the scan ({what}); items may be skipped or "
                "repeated. Scan a finished job, use filter_mode='client', or pass "
                "on_drift='warn' to accept it",
                offset=self.next_emit,
            )


_CLEAN = _Accepted(frozenset(), 0)
_CLAMPED = _Accepted(frozenset(), 0)  # a distinct object: compared by identity


def _first_repeat(keys: Sequence[str]) -> str | None:
    """The first key that ``keys`` hold twice (None: none)."""
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    return None
