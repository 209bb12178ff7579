"""The pagination engine: ``plan`` decides, ``walk`` (offset pages) and
``cursor`` (token pages) do the I/O, ``iterators`` hand the result to the
caller.  ``start_scan`` wires one scan of a declared ``Endpoint`` together."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from .._budget import new_flow
from .cursor import produce_cursor
from .endpoint import Endpoint, Fetched, Requester, Send
from .iterators import ItemIterator, PageIterator, Scan, Spawner
from .plan import DriftError, ScanPlan
from .throttle import AdaptiveLimiter
from .types import FilterMode, OnDrift, Page, Resolved, ScanKw, ScanOptions, ScanProgress
from .walk import Failure, Finished, Listing, produce

__all__ = [
    "DriftError",
    "Endpoint",
    "Fetched",
    "FilterMode",
    "ItemIterator",
    "OnDrift",
    "Page",
    "PageIterator",
    "Requester",
    "Resolved",
    "Scan",
    "ScanKw",
    "ScanOptions",
    "ScanProgress",
    "Send",
    "Spawner",
    "start_scan",
]

T = TypeVar("T")


def start_scan(
    endpoint: Endpoint[Any, T],
    resolve: Callable[[], Awaitable[Resolved[T]]],
    options: ScanOptions,
    client: Requester,
    spawn: Spawner,
    *,
    last_total: int | None = None,
) -> PageIterator[T]:
    """A lazily started scan of a declared endpoint.

    ``resolve`` picks the query (it may ask the API first); the engine does the
    rest and is the only writer of the scan's ``ScanProgress``.
    """
    progress = ScanProgress(
        next_offset=options.start_offset,
        next_token=options.start_token,
        next_skip=options.start_skip,
        style=endpoint.style,
    )

    async def starter(out: MemoryObjectSendStream[Page[T] | Failure | Finished]) -> None:
        new_flow()  # the scan's requests share the client's budget as one flow
        async with out:
            try:
                resolved = await resolve()
            except Exception as exc:
                # Nothing was received: the consumer raises the cause as itself.
                progress.state = "failed"
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await out.send(Failure(exc))
                return
            progress.filter_mode = resolved.filter_mode
            limiter = AdaptiveLimiter(options.concurrency, client.policy, progress)
            if endpoint.style == "cursor":
                fetch_next = endpoint.by_token(client.send, resolved.query)
                await produce_cursor(
                    fetch_next, endpoint.key, options, limiter, progress, out.clone()
                )
                return
            listing = Listing(
                endpoint.by_offset(client.send, resolved.query),
                endpoint.key,
                resolved.keep,
                resolved.sizing,
            )
            filtered = resolved.keep is not None
            plan = ScanPlan(
                start_offset=options.start_offset,
                page_size=options.page_size,
                # Twice the concurrency: a slow head page does not idle every slot,
                # and memory stays bounded by ~2x concurrency pages.
                window=2 * options.concurrency,
                max_items=None if filtered else options.max_items,
                max_kept=options.max_items if filtered else None,
                raise_on_drift=options.on_drift == "raise",
                total_is_exact=resolved.total_is_exact,
                dedup_window=options.dedup_window,
                expected_end=resolved.expected,
                last_total=last_total,
            )
            await produce(listing, plan, limiter, progress, out.clone())

    return PageIterator(starter, spawn, progress)
