"""Cursor pagination: pages in sequence, each naming the next by a token.

Sequential by nature, so the only overlap is with the consumer: the next page
is fetched while the consumer works on this one (the stream's buffer is the
prefetch).  Never trusted blindly: a token seen before means the server loops
(an error, never an endless scan), and item keys are checked for repeats as in
offset scans.  Runs in its own task, like ``walk.produce``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from .._errors import AiobatchError, DriftError, PageFetchError, PaginationError
from .._retry import call_with_retries
from .endpoint import Fetched
from .seen import SeenKeys
from .throttle import AdaptiveLimiter
from .types import Page, ScanOptions, ScanProgress
from .walk import Failure, Finished, deliver, drop_repeats, is_permanent

__all__ = ["produce_cursor"]

log = logging.getLogger("aiobatch.scan")
T = TypeVar("T")

#: Empty pages in a row that still carry a token before the scan gives up: a
#: server may skip over filtered rows, but not forever.
MAX_EMPTY_RUN = 50


async def produce_cursor(
    fetch: Callable[[str | None, int], Awaitable[Fetched[T]]],
    key: Callable[[T], str],
    options: ScanOptions,
    limiter: AdaptiveLimiter,
    progress: ScanProgress,
    out: MemoryObjectSendStream[Page[T] | Failure | Finished],
) -> None:
    """Walk a cursor listing; send pages in order, then ``Finished`` (or a Failure)."""
    await deliver(lambda: _walk(fetch, key, options, limiter, progress, out), progress, out)


async def _walk(
    fetch: Callable[[str | None, int], Awaitable[Fetched[T]]],
    key: Callable[[T], str],
    options: ScanOptions,
    limiter: AdaptiveLimiter,
    progress: ScanProgress,
    out: MemoryObjectSendStream[Page[T] | Failure | Finished],
) -> None:
    token = options.start_token
    tokens: set[str] = set() if token is None else {token}
    seen = SeenKeys(options.dedup_window)
    offset = delivered = empty_run = 0
    while options.max_items is None or delivered < options.max_items:
        limit = options.page_size
        if options.max_items is not None:
            limit = min(limit, options.max_items - delivered)
        try:
            page = await call_with_retries(
                limiter.policy,
                lambda: fetch(token, limit),  # noqa: B023 - awaited within this iteration
                idempotent=True,
                what="page after token" if token else "first page",
                hooks=limiter,
            )
        except AiobatchError as exc:
            if delivered == 0 and is_permanent(exc):
                raise
            raise _cursor_error(exc, offset, token) from exc
        items = list(page.items[:limit])
        _check_repeats(items, key, seen, offset, options, progress)
        progress.total = page.total
        progress.scanned += len(items)
        nxt = page.next_token
        empty_run = empty_run + 1 if not items else 0
        if nxt is not None and nxt in tokens:
            raise PaginationError(
                f"the server returned page token {nxt!r} a second time after {offset + len(items)} "
                "items: its pagination loops; refusing to go round again",
                offset=offset,
            )
        if empty_run > MAX_EMPTY_RUN:
            raise PaginationError(
                f"{empty_run} empty pages in a row that still carry a next token: "
                "refusing to follow it further",
                offset=offset,
            )
        delivered += len(items)
        page_out = Page(offset, offset + len(items), items, page.total, next_token=nxt)
        offset += len(items)
        try:
            out.send_nowait(page_out)
        except anyio.WouldBlock:
            await out.send(page_out)  # backpressure: the consumer is slower than the pages
        if nxt is None:
            return
        tokens.add(nxt)
        token = nxt


def _check_repeats(
    items: list[T],
    key: Callable[[T], str],
    seen: SeenKeys,
    offset: int,
    options: ScanOptions,
    progress: ScanProgress,
) -> None:
    keys = list(map(key, items))
    if seen.add_if_new(offset, keys):
        seen.delivered(offset)
        return
    page = set(map(hash, keys))
    repeats = seen.overlap(page)
    name = _first_repeat(keys, repeats)
    what = f"item {name!r} was returned twice (page starting at item {offset})"
    progress.drift.append(what)
    log.warning("aiobatch scan drift: %s", what, extra={"drift": what})
    if options.on_drift == "raise":
        raise DriftError(
            f"the listing changed during the scan ({what}); items may be skipped or "
            "repeated. Pass on_drift='warn' to accept it",
            offset=offset,
        )
    items[:] = drop_repeats(items, key, frozenset(repeats))
    seen.add(offset, page - repeats)
    seen.delivered(offset)


def _first_repeat(keys: list[str], repeats: set[int]) -> str:
    """The first key seen before, or else repeated within the page."""
    within: set[str] = set()
    for k in keys:
        if hash(k) in repeats or k in within:
            return k
        within.add(k)
    return keys[0] if keys else ""


def _cursor_error(error: AiobatchError, offset: int, token: str | None) -> PageFetchError:
    hint = f"start_token={token!r}" if token else "a new scan (nothing was delivered)"
    exc = PageFetchError(
        f"a page request failed: {error}; the first {offset} items were delivered: "
        f"resume with {hint}",
        offset=offset,
        error=error,
    )
    exc.__cause__ = error
    return exc
