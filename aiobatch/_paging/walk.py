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

from .._errors import AiobatchError, PageFetchError
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
class _Result(Generic[T]):
    request: PageRequest
    page: Fetched[T] | None
    error: AiobatchError | None


async def produce(
    listing: Listing[T],
    plan: ScanPlan,
    limiter: AdaptiveLimiter,
    progress: ScanProgress,
    out: MemoryObjectSendStream[Page[T] | Failure],
) -> None:
    """Walk the listing; send pages in order, then close ``out`` (or send a Failure)."""
    async with out:
        try:
            await _drive(listing, plan, limiter, progress, out)
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
    out: MemoryObjectSendStream[Page[T] | Failure],
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
    out: MemoryObjectSendStream[Page[T] | Failure],
) -> None:
    req = result.request
    if result.error is not None:
        raise PageFetchError(
            f"page at offset {req.offset} failed: {result.error}; every item "
            f"before offset {plan.next_emit} was delivered: resume with "
            f"start_offset={plan.next_emit}",
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
    out: MemoryObjectSendStream[Page[T] | Failure],
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
        if listing.keep is not None:
            keep = listing.keep
            chosen = [item for item in chosen if keep(item)]
        page_out = Page(r.offset, r.offset + r.take, chosen, fetched.total)
        try:
            out.send_nowait(page_out)
        except anyio.WouldBlock:
            await out.send(page_out)  # backpressure: the consumer is slower than the pages
    for stale in [o for o in pages if o < plan.next_emit or (plan.end or math.inf) <= o]:
        del pages[stale]


def _launch(plan: ScanPlan, todo: asyncio.Queue[PageRequest]) -> None:
    for req in plan.next_requests():
        todo.put_nowait(req)


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
        except AiobatchError as exc:
            done.put_nowait(_Result(req, None, exc))
            continue
        finally:
            slots.release()
        done.put_nowait(_Result(req, page, None))
