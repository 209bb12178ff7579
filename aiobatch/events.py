"""What the client tells ``event_hooks`` (httpx's shape: ``{name: [callable, ...]}``).

Every event is a small frozen object holding only what is safe to log or export:
method, a *path template* (ids replaced by ``{id}``), numbers, and error type
names.  Never the API key, a header value, a query string or server text: a
request id from the server is kept only when it is a short run of plain
characters.

A hook may be a plain function or an ``async def``; it runs in the task that made
the request (so a hook can read context variables, e.g. an OpenTelemetry span).
A hook that raises is logged on ``aiobatch.events`` and skipped: observing the
client never breaks a request or a scan.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from ._errors import ConfigurationError

__all__ = [
    "EVENT_NAMES",
    "Event",
    "EventHook",
    "RateLimitedEvent",
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
    "path_template",
]

log = logging.getLogger("aiobatch.events")


@dataclass(frozen=True, slots=True, eq=False)
class RequestEvent:
    """An attempt is about to be sent.  ``attempt`` counts from 1 (2: first retry)."""

    method: str
    path: str
    attempt: int


@dataclass(frozen=True, slots=True, eq=False)
class ResponseEvent:
    """An attempt ended: with an answer (``status``), or without one (``status`` is
    None and ``error`` names the exception type, e.g. ``APITimeoutError``)."""

    request: RequestEvent
    status: int | None
    duration: float
    bytes: int
    request_id: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class RetryEvent:
    """A failed attempt will be retried after ``delay`` seconds; ``attempt`` is the
    number of the attempt that will follow.  ``cause`` is the error's type name,
    ``status`` its HTTP status when it had one."""

    operation: str
    cause: str
    status: int | None
    delay: float
    attempt: int


@dataclass(frozen=True, slots=True, eq=False)
class RateLimitedEvent:
    """A 429: every request of the client pauses ``pause`` seconds, as the header
    named by ``source`` asked (``None`` with source ``"none"``: no usable header,
    so the pause is the retry policy's backoff)."""

    method: str
    path: str
    pause: float | None
    source: Literal["retry-after-ms", "retry-after", "none"]


Event: TypeAlias = RequestEvent | ResponseEvent | RetryEvent | RateLimitedEvent
EventHook: TypeAlias = Callable[[Event], object]
EventName = Literal["request", "response", "retry", "rate_limited"]
EVENT_NAMES: frozenset[str] = frozenset({"request", "response", "retry", "rate_limited"})

# Segments that name a resource rather than a route: anything with a digit or a
# character outside [A-Za-z_-], and long opaque words.
_ROUTE_WORD = re.compile(r"(?:[a-z][a-z_-]{0,39}|v[0-9])\Z")
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")


def path_template(path: str) -> str:
    """``/api/v1/beta/batch-processing/bjb-1f2e/items`` -> ``.../{id}/items``: the
    low-cardinality name OpenTelemetry wants (``url.template``), free of ids."""
    return "/".join(s if not s or _ROUTE_WORD.match(s) else "{id}" for s in path.split("/"))


def safe_request_id(value: str | None) -> str | None:
    """A server's request id, if it is a short run of plain characters."""
    if value is not None and _SAFE_ID.match(value):
        return value
    return None


class Hooks:
    """The validated hook lists; one tuple per event name, empty when unused."""

    __slots__ = ("rate_limited", "request", "response", "retry")

    def __init__(self, hooks: Mapping[str, Iterable[EventHook]]) -> None:
        if not isinstance(hooks, Mapping):
            raise ConfigurationError(
                f"event_hooks must be a mapping of event name to a list of callables, "
                f"got {type(hooks).__name__}"
            )
        unknown = sorted(set(hooks) - EVENT_NAMES)
        if unknown:
            raise ConfigurationError(
                f"event_hooks: unknown event name(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(EVENT_NAMES))}"
            )
        for name in EVENT_NAMES:
            given = hooks.get(name, ())
            if callable(given) or isinstance(given, str | bytes):
                raise ConfigurationError(
                    f"event_hooks[{name!r}] must be a list of callables, not a single value"
                )
            fns = tuple(given)
            for fn in fns:
                if not callable(fn):
                    raise ConfigurationError(
                        f"event_hooks[{name!r}] holds a non-callable {type(fn).__name__}"
                    )
            setattr(self, name, fns)

    request: tuple[EventHook, ...]
    response: tuple[EventHook, ...]
    retry: tuple[EventHook, ...]
    rate_limited: tuple[EventHook, ...]

    def add(self, name: str, fn: EventHook) -> None:
        if name not in EVENT_NAMES:
            raise ConfigurationError(f"unknown event name {name!r}")
        setattr(self, name, (*getattr(self, name), fn))

    def __bool__(self) -> bool:
        return bool(self.request or self.response or self.retry or self.rate_limited)


async def emit(fns: tuple[EventHook, ...], event: Event) -> None:
    """Call each hook; one that raises is logged and does not stop the others."""
    for fn in fns:
        try:
            result = fn(event)
            if inspect.isawaitable(result):
                await _await(result)
        except Exception:
            log.exception(
                "event hook %r raised on %s; ignored",
                getattr(fn, "__qualname__", type(fn).__name__),
                type(event).__name__,
                extra={"hook_event": type(event).__name__},
            )


async def _await(result: Awaitable[object]) -> None:
    await result
