"""Retries: a policy object that decides, and a small loop that obeys it.

``RetryPolicy.decide`` is pure (given the failure and how many retries were
made, how long to wait, or give up), so the whole table of cases is tested
without a network or a clock.  The policy also carries the ``sleep`` and clock
it uses: tests pass a policy whose sleep records the delay and returns at once.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

import anyio

from ._errors import (
    AiobatchError,
    APIConnectionError,
    APIStatusError,
    TLSVerificationError,
)

__all__ = [
    "DeadlineReached",
    "RetryHooks",
    "RetryObserver",
    "RetryPolicy",
    "call_with_retries",
    "current_attempt",
    "deadline",
    "finite_non_negative",
    "parse_retry_after",
]

log = logging.getLogger("aiobatch.retry")
T = TypeVar("T")

#: Told of each retry (what, the error, the delay, the attempt that follows);
#: the client sets one when it has ``retry`` event hooks.
RetryObserver = Callable[[str, "AiobatchError", float, int], Awaitable[None]]

# The attempt number of the request being made in this task, set only while a
# retry loop is past its first attempt (the common path never touches it).
_attempt: contextvars.ContextVar[int] = contextvars.ContextVar("aiobatch_attempt", default=1)


def current_attempt() -> int:
    """1 for a first attempt, 2 for the first retry, ..."""
    return _attempt.get()


# The moment (on the policy's monotonic clock) by which a wait must end: set
# around one poll of a watch, so that the poll's retries stop there too.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "aiobatch_deadline", default=None
)


class DeadlineReached(Exception):
    """A retry would have slept past the deadline of ``deadline()`` (the loop
    slept until the deadline instead).  The cause is the last failure."""


@contextlib.contextmanager
def deadline(at: float) -> Iterator[None]:
    """Within the block, retry loops give up at ``at`` (policy monotonic clock)."""
    token = _deadline.set(at)
    try:
        yield
    finally:
        _deadline.reset(token)


RETRYABLE_STATUSES = frozenset({408, 409, 429, *range(500, 600)})
#: Seconds of spread above even a ``Retry-After: 0``.
_RETRY_AFTER_JITTER_BASE = 0.05


def _default_random() -> float:
    return random.random()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to retry a failed request.

    Backoff is ``initial_delay * 2**n`` capped at ``max_delay``, minus up to
    ``jitter`` of itself.  A sane ``retry-after-ms`` / ``Retry-After`` wins over
    backoff; one above ``max_retry_after`` seconds fails fast instead of sleeping.

    A server-requested wait is jittered *upwards* only, never below what the
    server asked: ``delay + random() * min(retry_after_jitter_max,
    retry_after_jitter * delay + 0.05)``.  Without it, every request that got the
    same ``Retry-After`` (a scan's whole window) comes back at the same instant,
    and is rate-limited again.  ``random`` (like ``sleep`` and the clocks) is
    injectable, so tests are deterministic; ``retry_after_jitter_max=0`` turns
    that spread off.
    """

    max_retries: int = 5
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES
    #: Spread above a server-requested wait: this fraction of it (+ 0.05 s) ...
    retry_after_jitter: float = 0.1
    #: ... at most this many seconds.
    retry_after_jitter_max: float = 1.0
    sleep: Callable[[float], Awaitable[None]] = field(default=anyio.sleep, repr=False)
    random: Callable[[], float] = field(default=_default_random, repr=False)
    wall_clock: Callable[[], float] = field(default=time.time, repr=False)
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False)
    #: Told of every retry before its sleep (the client's ``retry`` event hooks).
    observer: RetryObserver | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within [0, 1], got {self.jitter}")
        if not all(
            math.isfinite(v)
            for v in (self.initial_delay, self.max_delay, self.retry_after_jitter_max)
        ):
            raise ValueError(
                "initial_delay, max_delay and retry_after_jitter_max must be finite, got "
                f"{self.initial_delay!r}, {self.max_delay!r}, {self.retry_after_jitter_max!r}"
            )
        if self.initial_delay < 0 or self.max_delay < self.initial_delay:
            raise ValueError("need 0 <= initial_delay <= max_delay")
        if not self.max_retry_after >= 0:  # inf allowed: always wait as asked
            raise ValueError(f"max_retry_after must be >= 0, got {self.max_retry_after!r}")
        if not 0 <= self.retry_after_jitter <= 1:
            raise ValueError(
                f"retry_after_jitter must be within [0, 1], got {self.retry_after_jitter!r}"
            )
        if self.retry_after_jitter_max < 0:
            raise ValueError(
                f"retry_after_jitter_max must be >= 0, got {self.retry_after_jitter_max!r}"
            )

    def with_max_retries(self, max_retries: int) -> RetryPolicy:
        return replace(self, max_retries=max_retries)

    def backoff(self, retries_done: int) -> float:
        base = min(self.max_delay, self.initial_delay * 2.0 ** min(retries_done, 30))
        return base * (1.0 - self.jitter * self.random())

    def retry_after_extra(self, delay: float) -> float:
        """A random extra (>= 0) to add to a server-requested wait of ``delay`` s."""
        span = min(
            self.retry_after_jitter_max, self.retry_after_jitter * delay + _RETRY_AFTER_JITTER_BASE
        )
        return span * self.random()

    def decide(self, retries_done: int, error: AiobatchError, *, idempotent: bool) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up."""
        if retries_done >= self.max_retries:
            return None
        if isinstance(error, APIStatusError):
            return self._decide_status(retries_done, error, idempotent=idempotent)
        if isinstance(error, TLSVerificationError):
            return None  # a bad certificate does not heal by retrying
        if isinstance(error, APIConnectionError):
            # A non-idempotent request that may have reached the server is not replayed.
            if not idempotent and error.request_sent:
                return None
            return self.backoff(retries_done)
        return None

    def _decide_status(
        self, retries_done: int, error: APIStatusError, *, idempotent: bool
    ) -> float | None:
        forced = should_retry_header(error.headers)
        if forced is False:
            return None
        if forced is None:
            if error.status_code not in self.retry_statuses:
                return None
            # 429 means "not processed": safe to replay even a POST.
            if not idempotent and error.status_code != 429:
                return None
        retry_after = parse_retry_after(error.headers, now=self.wall_clock())
        if retry_after is None:
            return self.backoff(retries_done)
        if retry_after > self.max_retry_after:
            return None
        return retry_after + self.retry_after_extra(retry_after)


def should_retry_header(headers: Mapping[str, str]) -> bool | None:
    value = headers.get("x-should-retry", "").strip().lower()
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def parse_retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds the server asks us to wait, or ``None`` when absent or not sane.

    ``retry-after-ms`` wins over ``Retry-After``; the latter may be seconds or an
    HTTP-date.  Negative, NaN, infinite and unparsable values count as absent.
    """
    ms = finite_non_negative(headers.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = finite_non_negative(raw)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def finite_non_negative(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value


class RetryHooks(Protocol):
    """What a caller sharing a budget across requests (a scan) wants to hear."""

    async def before_attempt(self) -> None: ...

    def on_retry(self, error: AiobatchError, delay: float) -> None: ...

    def on_success(self) -> None: ...


async def call_with_retries(
    policy: RetryPolicy,
    attempt: Callable[[], Awaitable[T]],
    *,
    idempotent: bool,
    what: str,
    hooks: RetryHooks | None = None,
) -> T:
    retries = 0
    token: contextvars.Token[int] | None = None
    try:
        while True:
            if hooks is not None:
                await hooks.before_attempt()
            try:
                result = await attempt()
            except AiobatchError as exc:
                delay = policy.decide(retries, exc, idempotent=idempotent)
                if delay is None:
                    exc.attempts = retries + 1
                    raise
                log.debug(
                    "retrying %s in %.2fs after %s (retry %d)",
                    what,
                    delay,
                    exc,
                    retries + 1,
                    extra={
                        "operation": what,
                        "cause": type(exc).__name__,
                        "status": getattr(exc, "status_code", None),
                        "delay": delay,
                        "attempt": retries + 2,
                    },
                )
                end = _deadline.get()
                if end is not None and policy.monotonic() + delay >= end:
                    exc.attempts = retries + 1
                    await policy.sleep(max(0.0, end - policy.monotonic()))
                    raise DeadlineReached(what) from exc
                if hooks is not None:
                    hooks.on_retry(exc, delay)
                if policy.observer is not None:
                    await policy.observer(what, exc, delay, retries + 2)
                await policy.sleep(delay)
                retries += 1
                t = _attempt.set(retries + 1)
                token = token or t
            else:
                if hooks is not None:
                    hooks.on_success()
                return result
    finally:
        if token is not None:
            _attempt.reset(token)
