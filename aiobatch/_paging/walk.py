"""The I/O around the planner: workers in a task group, pages out through a
bounded memory object stream, in offset order.

``produce`` runs in its own task (a child of the client's task group, or of a
``scan()`` context manager's); the consumer only ever awaits the receiving end
of the stream, so nothing yields while inside a task group or cancel scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from .._errors import AiobatchError, PageFetchError, PaginationError
from .._retry import RetryHooks
from .plan import PageRequest, ScanPlan
from .throttle import AdaptiveLimiter
from .types import Page, ScanProgress

__all__ = ["Failure", "Fetched", "Listing", "produce"]

log = logging.getLogger("aiobatch")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Fetched(Generic[T]):
    """One page as the server returned it."""

    items: Sequence[T]
    total: int | None


@dataclass(frozen=True, slots=True)
class Listing(Generic[T]):
    """What the engine needs to know about one paginated endpoint."""

    fetch: Callable[[int, int, RetryHooks], Awaitable[Fetched[T]]]
    key: Callable[[T], str]
    #: Client-side filter (``None``: keep every item).
    keep: Callable[[T], bool] | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    """Sent down the stream instead of a page: the scan failed with ``error``."""

    error: Exception


@dataclass(frozen=True, slots=True)
class Finished:
    """Sent down the stream after the last page: the scan reached its end."""


@dataclass(frozen=True, slots=True)
class _Result(Generic[T]):
    request: PageRequest
    page: Fetched[T] | None
    error: Exception | None


async def produce(
    listing: Listing[T],
    plan: ScanPlan,
    limiter: AdaptiveLimiter,
    progress: ScanProgress,
    out: MemoryObjectSendStream[Page[T] | Failure | Finished],
) -> None:
    """Walk the listing; send pages in order, then close ``out`` (or send a Failure)."""
    async with out:
        try:
            await _drive(listing, plan, limiter, progress, out)
            await out.send(Finished())
        except anyio.BrokenResourceError:
            log.debug("scan consumer went away; stopping")
        except Exception as exc:  # delivered to the consumer, never lost in a task group
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await out.send(Failure(exc))
        finally:
            progress.done = True
            progress.drift = list(plan.drift)


async def _drive(
    listing: Listing[T],
    plan: ScanPlan,
    limiter: AdaptiveLimiter,
    progress: ScanProgress,
    out: MemoryObjectSendStream[Page[T] | Failure | Finished],
) -> None:
    # A fixed pool of workers pulls requests from one stream and pushes results to
    # another: cheaper than a task per page, and the pool size caps concurrency.
    # Plain asyncio queues inside the scan (both bounded by the planner's window):
    # anyio's streams add a checkpoint per call, a real cost per page here.
    todo: asyncio.Queue[PageRequest] = asyncio.Queue()
    done: asyncio.Queue[_Result[T]] = asyncio.Queue()
    pages: dict[int, Fetched[T]] = {}
    failure: Exception | None = None
    async with anyio.create_task_group() as tg:
        for _ in range(limiter.max):
            tg.start_soon(_worker, listing, limiter, todo, done)
        try:
            _launch(plan, todo)
            while not plan.finished:
                result = await done.get()
                await _accept_result(listing, plan, progress, pages, result, out)
                _launch(plan, todo)
        except Exception as exc:
            # Raised after the group exits, so the caller sees the error itself,
            # not an ExceptionGroup.
            failure = exc
        # Whatever is still in flight lies beyond the end (or is moot): drop it.
        tg.cancel_scope.cancel()
    if failure is not None:
        raise failure


async def _accept_result(
    listing: Listing[T],
    plan: ScanPlan,
    progress: ScanProgress,
    pages: dict[int, Fetched[T]],
    result: _Result[T],
    out: MemoryObjectSendStream[Page[T] | Failure | Finished],
) -> None:
    req = result.request
    if result.error is not None:
        if not isinstance(result.error, AiobatchError):
            raise result.error  # a bug or a misuse: as it is, not dressed as a page error
        mode = f", filter_mode={progress.filter_mode!r}" if progress.filter_mode else ""
        raise PageFetchError(
            f"page at offset {req.offset} failed: {result.error}; every item "
            f"before offset {plan.next_emit} was delivered: resume with "
            f"start_offset={plan.next_emit}{mode}",
            offset=plan.next_emit,
            error=result.error,
        ) from result.error
    assert result.page is not None
    await _accept(listing, plan, progress, pages, req, result.page, out)


async def _accept(
    listing: Listing[T],
    plan: ScanPlan,
    progress: ScanProgress,
    pages: dict[int, Fetched[T]],
    req: PageRequest,
    page: Fetched[T],
    out: MemoryObjectSendStream[Page[T] | Failure | Finished],
) -> None:
    items = page.items
    if len(items) > req.limit:
        items = items[: req.limit]  # a server that over-delivers would make pages overlap
    key = listing.key
    first = key(items[0]) if items else None
    last = key(items[-1]) if items else None
    drift_before = len(plan.drift)
    ready = plan.record(req.offset, len(items), total=page.total, first_key=first, last_key=last)
    for what in plan.drift[drift_before:]:
        log.warning("aiobatch scan drift: %s", what)
    pages[req.offset] = Fetched(items, page.total)
    progress.total = plan.total
    for r in ready:
        fetched = pages.pop(r.offset)
        got = fetched.items
        chosen = list(got[: r.take]) if r.take < len(got) or not isinstance(got, list) else got
        progress.scanned += len(chosen)
        stop = r.offset + r.take
        if listing.keep is not None:
            chosen, used = _keep(listing.keep, chosen, plan)
            stop = r.offset + used
        page_out = Page(r.offset, stop, chosen, fetched.total)
        try:
            out.send_nowait(page_out)
        except anyio.WouldBlock:
            await out.send(page_out)  # backpressure: the consumer is slower than the pages
    for stale in [o for o in pages if o < plan.next_emit or (plan.end or math.inf) <= o]:
        del pages[stale]


def _keep(keep: Callable[[T], bool], items: list[T], plan: ScanPlan) -> tuple[list[T], int]:
    """Filter one page; with ``max_kept``, stop at the item that reaches it.

    Returns the kept items and how many raw items were consumed (the page's
    resume point moves only past what was really looked at).
    """
    limit = plan.max_kept
    if limit is None:
        return [item for item in items if keep(item)], len(items)
    kept: list[T] = []
    need = limit - plan.kept
    used = 0
    for item in items:
        if len(kept) >= need:
            break
        used += 1
        if keep(item):
            kept.append(item)
    plan.kept += len(kept)
    if plan.kept >= limit:
        plan.halt()
    return kept, used


def _launch(plan: ScanPlan, todo: asyncio.Queue[PageRequest]) -> None:
    for req in plan.next_requests():
        todo.put_nowait(req)
    if plan.stalled:
        # Nothing in flight and nothing to ask, yet not done: fail loudly rather
        # than wait forever for a result that cannot come.
        raise PaginationError(
            f"the scan cannot make progress at offset {plan.next_emit} (please report "
            f"this aiobatch bug); resume with start_offset={plan.next_emit}",
            offset=plan.next_emit,
        )


async def _worker(
    listing: Listing[T],
    limiter: AdaptiveLimiter,
    todo: asyncio.Queue[PageRequest],
    done: asyncio.Queue[_Result[T]],
) -> None:
    slots = limiter.slots
    while True:
        req = await todo.get()
        await slots.acquire()
        try:
            page = await listing.fetch(req.offset, req.limit, limiter)
        except Exception as exc:  # to the driver, never into the task group
            done.put_nowait(_Result(req, None, exc))
            continue
        finally:
            slots.release()
        done.put_nowait(_Result(req, page, None))
