"""One request budget per client: every attempt of every call and scan passes here.

* ``max_concurrency`` bounds the requests in flight across the whole client; the
  width adapts (AIMD): halved once per congestion episode when any request gets a
  429, grown back by ``1/width`` per success.
* ``rate_limit`` (requests per second, a token bucket of ``burst`` tokens) paces
  them; ``None`` turns pacing off.
* A 429's ``Retry-After`` pauses *every* request of the client (not only the scan
  that got it): each waiter wakes at its own moment after the pause, spread by
  the retry policy's jitter (above the pause, never below).
* Fairness: waiting requests are served round-robin by *flow* (a scan, or the task
  of a one-shot call), so a small scan beside a huge one waits for about one
  request of each other flow, not for the huge scan's whole backlog.

Time (``sleep``, ``monotonic``) and randomness come from the client's
``RetryPolicy``, so tests drive it without sleeping.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from collections import deque

from ._errors import ConfigurationError
from ._retry import RetryPolicy

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_RATE_LIMIT",
    "RequestBudget",
    "new_flow",
]

#: Requests in flight per client, all calls and scans together.
DEFAULT_MAX_CONCURRENCY = 64
#: Requests per second per client (``None``: unpaced; 429s still slow everyone).
DEFAULT_RATE_LIMIT: float | None = None

_flow: contextvars.ContextVar[object | None] = contextvars.ContextVar("aiobatch_flow", default=None)


def new_flow() -> None:
    """Mark the current task (and the tasks it starts) as one flow: a scan."""
    _flow.set(object())


class RequestBudget:
    def __init__(
        self,
        max_concurrency: int,
        rate_limit: float | None,
        policy: RetryPolicy,
        *,
        burst: int | None = None,
    ) -> None:
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
            raise ConfigurationError(f"max_concurrency must be an integer, got {max_concurrency!r}")
        if max_concurrency < 1:
            raise ConfigurationError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if rate_limit is not None and (
            isinstance(rate_limit, bool)
            or not isinstance(rate_limit, int | float)
            or not math.isfinite(rate_limit)
            or rate_limit <= 0
        ):
            raise ConfigurationError(
                f"rate_limit must be a finite number of requests per second > 0, or None; "
                f"got {rate_limit!r}"
            )
        self.max_concurrency = max_concurrency
        self.rate_limit = None if rate_limit is None else float(rate_limit)
        self._policy = policy
        self._window = float(max_concurrency)
        self._limit = max_concurrency
        self._active = 0
        #: flow -> its waiters; the dict's order is the round-robin ring.
        self._queues: dict[object, deque[asyncio.Future[None]]] = {}
        self._interval = 0.0 if self.rate_limit is None else 1.0 / self.rate_limit
        default_burst = max(1, math.ceil(self.rate_limit or 1))
        self._burst = default_burst if burst is None else max(1, burst)
        self._tat = -math.inf  # the token bucket's theoretical arrival time
        self._paused_until = -math.inf
        self._pause = 0.0
        #: The task whose 429 set the pause: its retry loop already waits it out.
        self._pause_owner: asyncio.Task[object] | None = None
        self._last_cut = -math.inf
        #: Counters, for tests and curious users.
        self.requests = 0
        self.peak_in_flight = 0
        self.rate_limited = 0

    @property
    def limit(self) -> int:
        """Requests allowed in flight now (``max_concurrency``, or less after 429s)."""
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._active

    # --- one request --------------------------------------------------------------

    async def acquire(self) -> None:
        """Wait for a place in flight, the shared pause, and a token."""
        if self._active < self._limit and not self._queues:
            self._active += 1
        else:
            await self._queue()
        try:
            await self._pace()
        except BaseException:
            self.release()
            raise
        self.requests += 1
        self.peak_in_flight = max(self.peak_in_flight, self._active)

    async def _queue(self) -> None:
        flow = _flow.get()
        if flow is None:
            flow = asyncio.current_task()
        fut = asyncio.get_running_loop().create_future()
        self._queues.setdefault(flow, deque()).append(fut)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.release()  # the place was handed over as we were cancelled
            else:
                queue = self._queues.get(flow)
                if queue is not None and fut in queue:
                    queue.remove(fut)
                    if not queue:
                        del self._queues[flow]
            raise

    async def _pace(self) -> None:
        policy = self._policy
        wait = self._paused_until - policy.monotonic()
        if wait > 0 and asyncio.current_task() is not self._pause_owner:
            # Everyone waits out a 429's Retry-After, each a little longer than
            # asked (never less), so they do not come back as one herd.
            await policy.sleep(wait + policy.retry_after_extra(self._pause))
        if self._interval:
            now = policy.monotonic()
            slot = max(self._tat, now - (self._burst - 1) * self._interval)
            self._tat = slot + self._interval  # reserved before awaiting: no herd
            if slot > now:
                await policy.sleep(slot - now)

    def release(self) -> None:
        self._active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._active < self._limit and self._queues:
            flow, queue = next(iter(self._queues.items()))
            fut = queue.popleft()
            del self._queues[flow]
            if queue:
                self._queues[flow] = queue  # to the back of the ring
            if not fut.done():
                self._active += 1
                fut.set_result(None)

    # --- what the answers say -------------------------------------------------------

    def on_rate_limited(self, retry_after: float | None) -> None:
        """A 429 anywhere: pause everyone for its ``Retry-After`` (when it gave a
        sane one) and halve the width once per episode."""
        policy = self._policy
        self.rate_limited += 1
        if retry_after is None:
            delay = 0.0  # no wait was asked for: the narrower width is the slowdown
        elif retry_after > policy.max_retry_after:
            delay = 0.0  # the request fails fast; do not freeze the client that long
        else:
            delay = retry_after
        now = policy.monotonic()
        if delay > 0 and now + delay > self._paused_until:
            self._paused_until = now + delay
            self._pause = delay
            self._pause_owner = asyncio.current_task()
        if now >= self._last_cut + max(delay, 0.05):
            self._last_cut = now
            self._set(max(1.0, self._window / 2))

    def on_success(self) -> None:
        if self._window < self.max_concurrency:
            self._set(min(float(self.max_concurrency), self._window + 1.0 / self._window))

    def _set(self, window: float) -> None:
        self._window = window
        limit = max(1, int(window))
        if limit != self._limit:
            self._limit = limit
            self._wake()

    def __repr__(self) -> str:
        rate = "unpaced" if self.rate_limit is None else f"{self.rate_limit:g}/s"
        return (
            f"<RequestBudget in_flight={self._active}/{self._limit} "
            f"max_concurrency={self.max_concurrency} rate={rate}>"
        )
