"""Cursor pagination: pages in sequence, each naming the next by a token.

Sequential by nature, so the only overlap is with the consumer: the next page
is fetched while the consumer works on this one (the stream's buffer is the
prefetch).  Runs in its own task, like ``walk.produce``.

Every item the server sends belongs to the listing: its token points past all
of them, so a page is never cut to ``page_size``.  Only ``max_items`` cuts a
page, and then the resume position is the page's own token plus the items
already taken (``next_skip``), never the next token.

Never trusted blindly: a token seen before means the server loops, and so does
a run of pages that bring nothing new; both are errors, never an endless scan.
Item keys are checked for repeats as in offset scans.  What is remembered is
bounded per page, not by the server's text: tokens as 16-byte digests, and a
1-in-64 sample of item key hashes for repeats beyond the duplicate window.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from .._errors import AiobatchError, DriftError, PaginationError
from .._retry import call_with_retries
from .endpoint import Fetched
from .position import cut, page_failed
from .seen import SeenKeys
from .throttle import AdaptiveLimiter
from .types import Page, ScanOptions, ScanProgress
from .walk import Failure, Finished, deliver, drop_repeats

__all__ = ["produce_cursor"]

log = logging.getLogger("aiobatch.scan")
T = TypeVar("T")

#: Empty pages in a row that still carry a token before the scan gives up: a
#: server may skip over filtered rows, but not forever.
MAX_EMPTY_RUN = 50
#: Pages in a row whose items were all delivered before: the listing loops.
MAX_STALE_RUN = 3
#: One item key hash in this many is remembered for the whole scan.
_SAMPLE_MASK = 63


@dataclass(slots=True)
class _Guard:
    """What proves a cursor listing goes forward, in bounded memory per page."""

    tokens: set[bytes] = field(default_factory=set)
    sample: set[int] = field(default_factory=set)
    empty_run: int = 0
    stale_run: int = 0

    def new_token(self, token: str) -> bool:
        digest = hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        if digest in self.tokens:
            return False
        self.tokens.add(digest)
        return True

    def page(self, hashes: list[int], kept: int) -> str | None:
        """Record one page (its key hashes, the items kept of it); why the
        listing is looping, or None."""
        sampled = [h for h in hashes if not h & _SAMPLE_MASK]
        old = self.sample.intersection(sampled)
        self.sample.update(sampled)
        if not hashes:
            self.empty_run += 1
            if self.empty_run > MAX_EMPTY_RUN:
                return f"{self.empty_run} empty pages in a row that still carry a next token"
            return None
        self.empty_run = 0
        if kept == 0 or (sampled and len(old) == len(set(sampled))):
            self.stale_run += 1
        elif sampled:
            self.stale_run = 0  # a page without a sampled key proves nothing either way
        if self.stale_run >= MAX_STALE_RUN:
            return f"{self.stale_run} pages in a row held only items delivered before"
        return None


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
    token, skip = options.start_token, options.start_skip
    guard = _Guard()
    if token is not None:
        guard.new_token(token)
    seen = SeenKeys(options.dedup_window)
    wanted = options.max_items
    offset = 0  # items sent to the consumer so far
    while wanted is None or offset < wanted:
        limit = options.page_size if wanted is None else min(options.page_size, wanted - offset)
        page = await _fetch(fetch, limiter, token, skip + limit)
        items = list(page.items)
        if skip:
            items = _skipped(items, skip, options, progress)
        nxt, next_skip = page.next_token, 0
        if wanted is not None and len(items) > wanted - offset:
            # Cut by max_items: resume inside this page, never after it.
            items, nxt, next_skip = items[: wanted - offset], token, skip + wanted - offset
        hashes = _check_repeats(items, key, seen, offset, options, progress)
        progress.total = page.total
        progress.scanned += len(items)
        if next_skip == 0 and nxt is not None and not guard.new_token(nxt):
            raise PaginationError(
                f"the server returned page token {cut(nxt)} a second time: its pagination "
                "loops; refusing to go round again",
                offset=-1,
            )
        looping = guard.page(hashes, len(items))
        if looping is not None:
            raise PaginationError(f"{looping}: refusing to follow the token further", offset=-1)
        page_out = Page(offset, offset + len(items), items, page.total, None, nxt, next_skip)
        offset += len(items)
        try:
            out.send_nowait(page_out)
        except anyio.WouldBlock:
            await out.send(page_out)  # backpressure: the consumer is slower than the pages
        if nxt is None or next_skip:
            return
        token, skip = nxt, 0


async def _fetch(
    fetch: Callable[[str | None, int], Awaitable[Fetched[T]]],
    limiter: AdaptiveLimiter,
    token: str | None,
    limit: int,
) -> Fetched[T]:
    try:
        return await call_with_retries(
            limiter.policy,
            lambda: fetch(token, limit),
            idempotent=True,
            what="page after token" if token else "first page",
            hooks=limiter,
        )
    except AiobatchError as exc:
        raise page_failed(exc, "a page request failed") from exc


def _skipped(items: list[T], skip: int, options: ScanOptions, progress: ScanProgress) -> list[T]:
    """The page a resume token names, past the ``start_skip`` items received."""
    if len(items) < skip:
        what = (
            f"the page at the resume token holds {len(items)} items, fewer than "
            f"start_skip={skip}: the listing changed since"
        )
        _drift(what, options, progress)
    return items[skip:]


def _drift(what: str, options: ScanOptions, progress: ScanProgress) -> None:
    progress.drift.append(what)
    log.warning("aiobatch scan drift: %s", what, extra={"drift": what})
    if options.on_drift == "raise":
        raise DriftError(
            f"the listing changed during the scan ({what}); items may be skipped or "
            "repeated. Pass on_drift='warn' to accept it",
            offset=-1,
        )


def _check_repeats(
    items: list[T],
    key: Callable[[T], str],
    seen: SeenKeys,
    offset: int,
    options: ScanOptions,
    progress: ScanProgress,
) -> list[int]:
    """The page's key hashes; drops (or raises on) items received before."""
    keys = list(map(key, items))
    if seen.add_if_new(offset, keys):
        seen.delivered(offset)
        return list(map(hash, keys))
    page = set(map(hash, keys))
    repeats = seen.overlap(page)
    name = _first_repeat(keys, repeats)
    what = f"item {cut(name)} was returned twice (page starting at item {offset})"
    _drift(what, options, progress)
    items[:] = drop_repeats(items, key, frozenset(repeats))
    seen.add(offset, page - repeats)
    seen.delivered(offset)
    return list(map(hash, keys))


def _first_repeat(keys: list[str], repeats: set[int]) -> str:
    """The first key seen before, or else repeated within the page."""
    within: set[str] = set()
    for k in keys:
        if hash(k) in repeats or k in within:
            return k
        within.add(k)
    return keys[0] if keys else ""
