"""The I/O around the planner: workers in a task group, pages out through a
bounded memory object stream, in offset order.

``produce`` runs in its own task (a child of the client's task group, or of a
``scan()`` context manager's); the consumer only ever awaits the receiving end
of the stream, so nothing yields while inside a task group or cancel scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from .._errors import (
    AiobatchError,
    APIStatusError,
    PaginationError,
    UnprocessableEntityError,
)
from .._retry import call_with_retries
from .endpoint import Fetched
from .plan import PageRequest, Ready, ScanPlan
from .position import page_failed
from .throttle import AdaptiveLimiter
from .types import Page, ScanProgress

__all__ = [
    "Failure",
    "Finished",
    "Listing",
    "deliver",
    "drop_repeats",
    "is_permanent",
    "produce",
]

log = logging.getLogger("aiobatch.scan")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Listing(Generic[T]):
    """One offset scan's endpoint, resolved: one attempt at a page, the item key."""

    fetch: Callable[[int, int], Awaitable[Fetched[T]]]
    key: Callable[[T], str]
    #: Client-side filter (``None``: keep every item).
    keep: Callable[[T], bool] | None = None
    #: One attempt at the listing's expected length (the job's counts), asked
    #: only when the first page carries no total (``None``: nothing to ask).
    sizing: Callable[[], Awaitable[int | None]] | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    """Sent down the stream instead of a page: the scan failed with ``error``."""

    error: Exception


@dataclass(frozen=True, slots=True)
class Finished:
    """Sent down the stream after the last page: the scan reached its end."""


async def produce(
    listing: Listing[T],
    plan: ScanPlan,
    limiter: AdaptiveLimiter,
    progress: ScanProgress,
    out: MemoryObjectSendStream[Page[T] | Failure | Finished],
) -> None:
    """Walk an offset listing; send pages in order, then ``Finished`` (or a Failure)."""
    await deliver(lambda: _drive(listing, plan, limiter, progress, out), progress, out)


async def deliver(
    walk: Callable[[], Awaitable[None]],
    progress: ScanProgress,
    out: MemoryObjectSendStream[Page[T] | Failure | Finished],
) -> None:
    """Run a scan's walk in its producer task: end the stream with ``Finished``,
    or with the failure (never lost in a task group), and close it."""
    finished = False
    async with out:
        try:
            await walk()
            await out.send(Finished())
            finished = True  # the consumer marks the scan done when it reads this
        except anyio.BrokenResourceError:
            log.debug("scan consumer went away; stopping", extra={"stopped": True})
        except Exception as exc:
            progress.state = "failed"
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await out.send(Failure(exc))
        finally:
            if progress.state == "running" and not finished:
                progress.state = "stopped"


async def _drive(
    listing: Listing[T],
    plan: ScanPlan,
    limiter: AdaptiveLimiter,
    progress: ScanProgress,
    out: MemoryObjectSendStream[Page[T] | Failure | Finished],
) -> None:
    async with anyio.create_task_group() as tg:
        walk = _Walk(tg, listing, plan, limiter, progress, out)
        walk.launch()
        await walk.over.wait()
        # Whatever is still in flight lies beyond the end (or is moot): drop it.
        tg.cancel_scope.cancel()
    if walk.failure is not None:
        # Raised after the group exits, so the caller sees the error itself, not
        # an ExceptionGroup.
        raise walk.failure
    if plan.shortfall is not None:
        raise plan.shortfall  # after every page: the consumer has all there was


def is_permanent(error: AiobatchError) -> bool:
    """A 4xx that asking again cannot fix (bad key, no access, no such job, bad input)."""
    return isinstance(error, APIStatusError) and error.status_code in (400, 401, 403, 404, 422)


def _limit_refused(error: AiobatchError, plan: ScanPlan, req: PageRequest) -> bool:
    """A 422 naming ``limit``: learn the server's maximum page size and go on."""
    if not isinstance(error, UnprocessableEntityError) or not isinstance(error.detail, list):
        return False
    for entry in error.detail:
        if not isinstance(entry, dict) or list(entry.get("loc") or [])[-1:] != ["limit"]:
            continue
        ctx = entry.get("ctx")
        le = ctx.get("le") if isinstance(ctx, dict) else None
        ceiling = le if isinstance(le, int) and not isinstance(le, bool) else None
        return plan.limit_rejected(req.offset, ceiling)
    return False


def _report(plan: ScanPlan, progress: ScanProgress, drift_from: int, notes_from: int) -> None:
    """Publish what the planner saw since the last page: live, for pollers and logs."""
    for what in plan.drift[drift_from:]:
        log.warning("aiobatch scan drift: %s", what, extra={"drift": what})
        progress.drift.append(what)
    for what in plan.notes[notes_from:]:
        log.info("aiobatch scan: %s", what, extra={"note": what})
        progress.notes.append(what)


def drop_repeats(items: list[T], key: Callable[[T], str], skip: frozenset[int]) -> list[T]:
    """Drop items received before, and repeats within the page (``on_drift='warn'``)."""
    seen = set(skip)
    out: list[T] = []
    for item in items:
        h = hash(key(item))
        if h not in seen:
            seen.add(h)
            out.append(item)
    return out


def _keep(
    keep: Callable[[T], bool], items: list[T], plan: ScanPlan, offset: int
) -> tuple[list[T], list[int], int]:
    """Filter one page; with ``max_kept``, stop at the item that reaches it.

    Returns the kept items, their offsets in the scanned listing, and how many
    raw items were consumed (the page's resume point moves only past what was
    really looked at).
    """
    limit = plan.max_kept
    need = len(items) if limit is None else limit - plan.kept
    kept: list[T] = []
    positions: list[int] = []
    used = 0
    if need <= 0:
        return kept, positions, used
    for used, item in enumerate(items, 1):
        if keep(item):
            kept.append(item)
            positions.append(offset + used - 1)
            if len(kept) >= need:
                break
    if limit is not None:
        plan.kept += len(kept)
        if plan.kept >= limit:
            plan.halt()
    else:
        used = len(items)
    return kept, positions, used


class _Walk(Generic[T]):
    """One offset scan in flight: a pool of workers, each recording its own page
    with the planner and shipping whatever became ready, in offset order.

    No driver task sits between the workers and the stream: the planner is pure
    and synchronous, so the worker that got a page records it on the spot (one
    task switch per page saved).  Pages ready for the consumer queue in
    ``outbox``; one worker at a time ships them, so the stream sees them in order
    even when it is full.  While pages wait there, nothing new is requested: the
    read-ahead stays within the planner's window plus the stream's buffer.
    """

    def __init__(
        self,
        tg: TaskGroup,
        listing: Listing[T],
        plan: ScanPlan,
        limiter: AdaptiveLimiter,
        progress: ScanProgress,
        out: MemoryObjectSendStream[Page[T] | Failure | Finished],
    ) -> None:
        self._tg, self._listing, self._plan = tg, listing, plan
        self._limiter, self._progress, self._out = limiter, progress, out
        # A plain asyncio queue: anyio's streams add a checkpoint per call, a
        # real cost per page here (the queue is bounded by the planner's window).
        self._todo: asyncio.Queue[PageRequest] = asyncio.Queue()
        self._pages: dict[int, Fetched[T]] = {}
        self._outbox: deque[Page[T]] = deque()
        self._shipping = False
        self._workers = 0
        self._idle = 0
        #: Set once the scan is over: every page shipped, or ``failure`` set.
        self.over = asyncio.Event()
        self.failure: Exception | None = None

    # --- requests --------------------------------------------------------------

    def launch(self) -> None:
        """Queue what the plan wants next; starts workers only as needed (a small
        job with a large ``concurrency`` starts a few), never more than the
        scan's concurrency."""
        if self._outbox or self.over.is_set():
            return  # the consumer is behind: ask for nothing new until it catches up
        plan, todo = self._plan, self._todo
        for req in plan.next_requests():
            todo.put_nowait(req)
            if self._idle < todo.qsize() and self._workers < self._limiter.max:
                self._workers += 1
                self._idle += 1
                self._tg.start_soon(self._work)
        if plan.finished:
            self.over.set()
        elif plan.stalled:
            # Nothing in flight and nothing to ask, yet not done: fail loudly rather
            # than wait forever for a result that cannot come.
            self.fail(
                PaginationError(
                    f"the scan cannot make progress at offset {plan.next_emit} (please "
                    "report this aiobatch bug)",
                    offset=plan.next_emit,
                )
            )

    def fail(self, exc: Exception) -> None:
        if self.failure is None:
            self.failure = exc
        self.over.set()

    async def _work(self) -> None:
        # The engine owns each page's attempt loop: one declared attempt, retried
        # by the client's policy, paced by the scan's limiter.  A page holds its
        # slot across its retries, so a failing head page never queues behind
        # later ones.  (A pool twice as wide as the slots, with the slot given
        # back before decoding, measured no faster at 0, 20 or 50 ms and held
        # twice the pages in memory.)
        limiter = self._limiter
        policy, slots, fetch, todo = limiter.policy, limiter.slots, self._listing.fetch, self._todo
        while True:
            req = await todo.get()
            self._idle -= 1
            page: Fetched[T] | None = None
            error: Exception | None = None
            if req.reask:
                # An answer in doubt is asked again after a retry's backoff, on
                # the policy's clock: a blip must outlast it to be believed.
                await policy.sleep(policy.backoff(req.reask - 1))
            await slots.acquire()
            try:
                page = await call_with_retries(
                    policy,
                    functools.partial(fetch, req.offset, req.limit),
                    idempotent=True,
                    what=f"page at offset {req.offset}",
                    hooks=limiter,
                )
            except Exception as exc:  # to the scan, never into the task group
                error = exc
            finally:
                slots.release()
            try:
                if page is not None:
                    await self._ship(self._accept(req, page))
                else:
                    assert error is not None
                    self._refused(req, error)
            except Exception as exc:
                self.fail(exc)
                return
            self._idle += 1
            if not self._shipping:
                self.launch()

    # --- answers ---------------------------------------------------------------

    def _refused(self, req: PageRequest, error: Exception) -> None:
        plan, progress = self._plan, self._progress
        if not isinstance(error, AiobatchError):
            raise error  # a bug or a misuse: as it is, not dressed as a page error
        if _limit_refused(error, plan, req):
            _report(plan, progress, 0, len(plan.notes) - 1)
            return
        raise page_failed(error, f"page at offset {req.offset} failed")

    def _accept(self, req: PageRequest, page: Fetched[T]) -> list[Page[T]]:
        """Record one page with the planner; the pages now ready, in order."""
        listing, plan, progress, pages = self._listing, self._plan, self._progress, self._pages
        items = page.items
        if len(items) > req.limit:
            items = items[: req.limit]  # a server that over-delivers would make pages overlap
            page = Fetched(items, page.total)
        keys = list(map(listing.key, items))
        drift_before, notes_before = len(plan.drift), len(plan.notes)
        try:
            ready = plan.record(
                req.offset,
                len(items),
                total=page.total,
                first_key=keys[0] if keys else None,
                last_key=keys[-1] if keys else None,
                keys=keys,
            )
        finally:
            if len(plan.drift) != drift_before or len(plan.notes) != notes_before:
                _report(plan, progress, drift_before, notes_before)
        pages[req.offset] = page
        progress.total = plan.total
        sizing = listing.sizing
        if sizing is not None and plan.wants_size():
            plan.sizing()
            self._tg.start_soon(self._size, sizing)
        return self._pages_of(ready)

    async def _size(self, sizing: Callable[[], Awaitable[int | None]]) -> None:
        """Read the job's counts once, beside the pages; a hint, so a failure
        only means the end is confirmed the slow way."""
        try:
            expected = await sizing()
        except AiobatchError as exc:
            log.debug("the job's counts could not be read: %s", exc)
            expected = None
        plan = self._plan
        drift_before, notes_before = len(plan.drift), len(plan.notes)
        try:
            ready = plan.sized(expected)
            _report(plan, self._progress, drift_before, notes_before)
            await self._ship(self._pages_of(ready))
        except Exception as exc:
            self.fail(exc)
            return
        if not self._shipping:
            self.launch()

    def _pages_of(self, ready: list[Ready]) -> list[Page[T]]:
        """The pages the planner released, as the consumer gets them."""
        listing, plan, progress, pages = self._listing, self._plan, self._progress, self._pages
        out: list[Page[T]] = []
        for r in ready:
            fetched = pages.pop(r.offset)
            got = fetched.items
            chosen = list(got[: r.take]) if r.take < len(got) or not isinstance(got, list) else got
            if r.dedup:
                chosen = drop_repeats(chosen, listing.key, r.skip)
            progress.scanned += len(chosen)
            stop = r.offset + r.take
            positions: list[int] | None = None
            if listing.keep is not None:
                chosen, positions, used = _keep(listing.keep, chosen, plan, r.offset)
                stop = r.offset + used
            out.append(Page(r.offset, stop, chosen, fetched.total, positions))
        if len(pages) > plan.window or plan.end is not None:
            end = plan.end if plan.end is not None else math.inf
            for stale in [o for o in pages if o < plan.next_emit or end <= o]:
                del pages[stale]
        return out

    async def _ship(self, ready: list[Page[T]]) -> None:
        """Hand pages to the consumer in order; one worker ships at a time."""
        box = self._outbox
        box.extend(ready)
        if self._shipping or not box:
            return
        self._shipping = True
        out = self._out
        try:
            while box:
                try:
                    out.send_nowait(box[0])
                except anyio.WouldBlock:
                    await out.send(box[0])  # backpressure: the consumer is slower
                box.popleft()
        finally:
            self._shipping = False
