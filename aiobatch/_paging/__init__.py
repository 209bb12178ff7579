"""The pagination engine: ``plan`` decides, ``walk`` does the I/O, ``iterators``
hand the result to the caller.  ``start`` wires one scan together."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from .._errors import AiobatchError
from .._retry import RetryPolicy
from .iterators import ItemIterator, PageIterator, Scan, Spawner
from .plan import DriftError, ScanPlan
from .throttle import AdaptiveLimiter
from .types import FilterMode, OnDrift, Page, ScanOptions, ScanProgress
from .walk import Failure, Fetched, Finished, Listing, is_permanent, page_error, produce

__all__ = [
    "DriftError",
    "Fetched",
    "FilterMode",
    "ItemIterator",
    "Listing",
    "OnDrift",
    "Page",
    "PageIterator",
    "Scan",
    "ScanOptions",
    "ScanProgress",
    "Spawner",
    "page_iterator",
]

T = TypeVar("T")


def page_iterator(
    resolve: Callable[[ScanProgress], Awaitable[Listing[T]]],
    options: ScanOptions,
    policy: RetryPolicy,
    spawn: Spawner,
) -> PageIterator[T]:
    """A lazily started scan: ``resolve`` picks the listing (it may ask the API first)."""
    progress = ScanProgress(next_offset=options.start_offset)

    async def starter(out: MemoryObjectSendStream[Page[T] | Failure | Finished]) -> None:
        async with out:
            try:
                listing = await resolve(progress)
            except Exception as exc:
                progress.state = "failed"
                if isinstance(exc, AiobatchError) and not is_permanent(exc):
                    # Same contract as a failed page: one type to catch, a resume
                    # offset.  A permanent error (no such job, bad key) is raised
                    # as itself: nothing was delivered, nothing to resume.
                    exc = page_error(
                        exc, "the scan could not start", options.start_offset, progress
                    )
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await out.send(Failure(exc))
                return
            plan = ScanPlan(
                start_offset=options.start_offset,
                page_size=options.page_size,
                # Twice the concurrency: a slow head page does not idle every slot,
                # and memory stays bounded by ~2x concurrency pages.
                window=2 * options.concurrency,
                max_items=None if listing.keep is not None else options.max_items,
                max_kept=options.max_items if listing.keep is not None else None,
                raise_on_drift=options.on_drift == "raise",
                # Only a server-filtered listing has an exact total worth watching.
                total_is_exact=progress.filter_mode == "server",
                dedup_window=options.dedup_window,
            )
            limiter = AdaptiveLimiter(options.concurrency, policy, progress)
            await produce(listing, plan, limiter, progress, out.clone())

    return PageIterator(starter, spawn, progress)
