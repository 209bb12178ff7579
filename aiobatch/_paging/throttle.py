"""Scan-wide flow control: an AIMD concurrency window and a shared 429 pause.

A 429 means the *client* is too fast, not one request: every worker waits out
the server's Retry-After (the pause gate) and the window of requests in flight
is halved; each success grows it back by ``1/window`` (additive increase).
"""

from __future__ import annotations

import logging

from .._errors import AiobatchError, APIStatusError, RateLimitError
from .._retry import RetryPolicy
from .slots import Slots
from .types import ScanProgress

__all__ = ["AdaptiveLimiter"]

log = logging.getLogger("aiobatch.scan")


class AdaptiveLimiter:
    """Implements ``RetryHooks`` for every request of one scan."""

    def __init__(self, limit: int, policy: RetryPolicy, progress: ScanProgress) -> None:
        self._max = limit
        self._window = float(limit)
        self._slots = Slots(limit)
        self._policy = policy
        self._progress = progress
        self._paused_until = 0.0
        self._pause = 0.0  # the server-requested wait behind ``_paused_until``
        self._last_cut = float("-inf")
        progress.concurrency = limit

    @property
    def max(self) -> int:
        return self._max

    @property
    def policy(self) -> RetryPolicy:
        return self._policy

    @property
    def limit(self) -> int:
        return self._slots.limit

    @property
    def slots(self) -> Slots:
        """Hold one slot per page request (retries included)."""
        return self._slots

    async def before_attempt(self) -> None:
        self._progress.requests += 1
        wait = self._paused_until - self._policy.monotonic()
        if wait > 0:
            # Each waiting worker wakes at its own moment *after* the pause (never
            # before it): released together, they would all be rate-limited again.
            await self._policy.sleep(wait + self._policy.retry_after_extra(self._pause))

    def on_retry(self, error: AiobatchError, delay: float) -> None:
        self._progress.retries += 1
        if isinstance(error, RateLimitError) or (
            isinstance(error, APIStatusError) and error.status_code == 503
        ):
            self._progress.rate_limited += isinstance(error, RateLimitError)
            now = self._policy.monotonic()
            if now + delay > self._paused_until:
                self._paused_until = now + delay
                self._pause = delay
            # One cut per congestion episode: a burst of 429s from requests sent
            # together must not collapse the window to 1.
            if now >= self._last_cut + max(delay, 0.05):
                self._last_cut = now
                self._set(max(1.0, self._window / 2))

    def on_success(self) -> None:
        if self._window < self._max:
            self._set(min(float(self._max), self._window + 1.0 / self._window))

    def _set(self, window: float) -> None:
        before = self.limit
        self._window = window
        tokens = max(1, int(window))
        if tokens != before:
            self._slots.limit = tokens
            self._progress.concurrency = tokens
            log.debug(
                "scan concurrency %d -> %d",
                before,
                tokens,
                extra={"concurrency_before": before, "concurrency": tokens},
            )
