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

import copy
import functools
import inspect
import itertools
import logging
import re
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Concatenate, Literal, ParamSpec, TypeAlias, TypeVar

import anyio

from ._errors import ConfigurationError

__all__ = [
    "EVENT_NAMES",
    "Event",
    "EventHook",
    "RateLimitedEvent",
    "RequestEvent",
    "ResponseEvent",
    "ResultEvent",
    "RetryEvent",
    "ScanEvent",
    "WaitEvent",
    "current_run",
    "path_template",
]

log = logging.getLogger("aiobatch.events")

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class RequestEvent:
    """An attempt is about to be sent: the client's budget has let it go (an
    attempt cancelled while it queued was never sent and has no events).
    ``attempt`` counts from 1 (2: first retry)."""

    method: str
    path: str
    attempt: int


@dataclass(frozen=True, slots=True, eq=False)
class ResponseEvent:
    """An attempt ended: with an answer (``status``), or without one (``status`` is
    None and ``error`` names the exception type, e.g. ``APITimeoutError``, or
    ``CancelledError`` for an attempt its scan no longer needed).  ``duration``
    is the exchange's seconds, from the request event on (not the wait for the
    budget nor a 429's shared pause)."""

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


RunKind = Literal["scan", "results", "retry_failed"]
ScanPhase = Literal["started", "page", "finished", "failed", "stopped"]
WaitPhase = Literal["started", "status", "timed_out", "failed", "stopped"]


@dataclass(frozen=True, slots=True, eq=False)
class ScanEvent:
    """A run of the client moved: a listing scan (``kind="scan"``), a results
    stream (``"results"``) or a ``retry_failed`` run.  ``run`` numbers the runs
    of the process (every event of one run carries it; ``current_run()`` in a
    request hook says which run the request works for).  ``progress`` is a copy
    of the run's progress (``ScanProgress`` / ``ResultsProgress``) at that
    moment, counting what the consumer has received; ``items`` is the size of
    the page just handed out (phase ``"page"``); ``error`` the exception's type
    name (phase ``"failed"``).  ``parent`` is the run this one works for (the
    item scan under a results stream), or None."""

    phase: ScanPhase
    kind: RunKind
    run: int
    path: str
    progress: Any = None
    items: int = 0
    error: str | None = None
    parent: int | None = None


@dataclass(frozen=True, slots=True, eq=False)
class ResultEvent:
    """One item's (or file's) output reached the consumer: ``ok`` with
    ``bytes`` of content, or failed with ``error`` (the ``ItemError`` kind:
    ``missing``, ``failed``, ``unavailable``...) and its HTTP ``status``.
    ``position`` is the resume point just past it."""

    run: int
    ok: bool
    bytes: int
    position: int
    error: str | None = None
    status: int | None = None


@dataclass(frozen=True, slots=True, eq=False)
class WaitEvent:
    """A wait on a job or batch (``noun``) began (phase ``"started"``, before
    the first poll), its status changed (``"status"``; ``final`` on the
    terminal one), or it gave up: ``"timed_out"``,
    ``"failed"`` when a poll failed for good (``error``: the exception's type
    name), or ``"stopped"`` when it was cancelled, closed or dropped before its
    end.  ``status`` is the last status seen (a value the API lists, or
    ``"unknown"``), ``polls`` the polls made so far,
    ``elapsed`` the seconds since the first (on the retry policy's clock)."""

    phase: WaitPhase
    run: int
    noun: str
    status: str | None
    final: bool
    polls: int
    elapsed: float
    error: str | None = None
    parent: int | None = None


Event: TypeAlias = (
    RequestEvent
    | ResponseEvent
    | RetryEvent
    | RateLimitedEvent
    | ScanEvent
    | ResultEvent
    | WaitEvent
)
EventHook: TypeAlias = Callable[[Event], object]
EventName = Literal["request", "response", "retry", "rate_limited", "scan", "result", "wait"]
EVENT_NAMES: frozenset[str] = frozenset(
    {"request", "response", "retry", "rate_limited", "scan", "result", "wait"}
)

_runs = itertools.count(1)
_current_run: ContextVar[int | None] = ContextVar("aiobatch_run", default=None)


def current_run() -> int | None:
    """The run (``ScanEvent.run`` / ``WaitEvent.run``) the calling task works
    for, or None outside any: how a request hook nests a request under its scan."""
    return _current_run.get()


def new_run() -> int:
    return next(_runs)


@contextmanager
def in_run(run: int) -> Iterator[None]:
    """Requests made inside the block (and by tasks started there) belong to ``run``."""
    token = _current_run.set(run)
    try:
        yield
    finally:
        _current_run.reset(token)


def set_run(run: int) -> None:
    """For a task of its own (a producer): the run holds until the task ends."""
    _current_run.set(run)


def snapshot(progress: Any) -> Any:
    """A copy of a progress object that later updates do not change."""
    copied = copy.copy(progress)
    for name in ("drift", "notes"):
        if isinstance(getattr(copied, name, None), list):
            setattr(copied, name, list(getattr(copied, name)))
    for name in ("fetches", "listing"):
        inner = getattr(copied, name, None)
        if inner is not None:
            setattr(copied, name, snapshot(inner))
    return copied


# The API's own path words; any other segment is an id (or a name) and becomes
# ``{id}``: an allowlist, so a job id made of plain letters ("bjb-events") never
# reaches a metric label, and an unknown route costs cardinality, never a leak.
_ROUTE_WORDS = frozenset(
    {
        "api", "v1", "v2", "beta", "batch-processing", "batches", "items", "cancel",
        "processing-results", "parsing", "classifier", "job", "jobs", "result", "results",
        "markdown", "text", "json", "files", "directories", "presigned-url", "webhooks",
    }
)  # fmt: skip
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")


def path_template(path: str) -> str:
    """``/api/v1/beta/batch-processing/bjb-1f2e/items`` -> ``.../{id}/items``: the
    low-cardinality name OpenTelemetry wants (``url.template``), free of ids.
    A leading method (``"GET /api/..."``) is kept."""
    method, space, rest = path.rpartition(" ")
    if space:
        return f"{method} {path_template(rest)}"
    return "/".join(s if not s or s in _ROUTE_WORDS else "{id}" for s in path.split("/"))


def safe_request_id(value: str | None, *, secret: str) -> str | None:
    """A server's request id, if it is a short run of plain characters and does
    not echo the API key (or a piece of it long enough to matter)."""
    if value is None or not _SAFE_ID.match(value):
        return None
    if secret in value or (len(value) >= 8 and value in secret):
        return None
    return value


class Hooks:
    """The validated hook lists; one tuple per event name, empty when unused."""

    __slots__ = ("rate_limited", "request", "response", "result", "retry", "scan", "wait")

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
            try:
                fns = tuple(given)
            except TypeError:
                raise ConfigurationError(
                    f"event_hooks[{name!r}] must be a list of callables, got {type(given).__name__}"
                ) from None
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
    scan: tuple[EventHook, ...]
    result: tuple[EventHook, ...]
    wait: tuple[EventHook, ...]

    def add(self, name: str, fn: EventHook) -> None:
        if name not in EVENT_NAMES:
            raise ConfigurationError(f"unknown event name {name!r}")
        setattr(self, name, (*getattr(self, name), fn))

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in EVENT_NAMES)


async def emit(fns: tuple[EventHook, ...], event: Event) -> None:
    """Call each hook; one that raises is logged and does not stop the others."""
    for fn in fns:
        try:
            result = fn(event)
            if inspect.isawaitable(result):
                await _await(result)
        except Exception:
            _hook_failed(fn, event)


async def _await(result: Awaitable[object]) -> None:
    await result


def _hook_failed(fn: EventHook, event: Event) -> None:
    log.exception(
        "event hook %r raised on %s; ignored",
        getattr(fn, "__qualname__", type(fn).__name__),
        type(event).__name__,
        extra={"hook_event": type(event).__name__},
    )


def emit_now(
    fns: tuple[EventHook, ...],
    event: Event,
    spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], object],
) -> None:
    """``emit`` from sync code (a ``__del__``, a stop): a plain hook runs at once,
    so it hears the event even if the client closes next; ``async def`` hooks
    run in a task ``spawn`` starts (none when it cannot: a closed client)."""
    later: list[EventHook] = []
    for fn in fns:
        if _is_async(fn):
            later.append(fn)
            continue
        try:
            result = fn(event)
        except Exception:
            _hook_failed(fn, event)
            continue
        if inspect.isawaitable(result):  # a plain function handing back an awaitable
            later.append(functools.partial(_returned, result))
    if later:

        async def tell() -> None:
            await emit(tuple(later), event)

        with suppress(Exception):
            spawn(tell)


def _is_async(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 (an object with an async __call__)
    )


def _returned(result: Awaitable[object], event: Event) -> Awaitable[object]:
    return result


@asynccontextmanager
async def run_events(hooks: Hooks, kind: RunKind, path: str) -> AsyncIterator[None]:
    """``scan`` events around a run in the caller's task (``retry_failed``):
    started, then finished, failed or stopped (cancelled)."""
    run, parent = new_run(), current_run()
    await emit(hooks.scan, ScanEvent("started", kind, run, path, parent=parent))
    phase: ScanPhase = "finished"
    error: str | None = None
    try:
        with in_run(run):
            yield
    except BaseException as exc:
        phase = "failed" if isinstance(exc, Exception) else "stopped"
        error = type(exc).__name__
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await emit(hooks.scan, ScanEvent(phase, kind, run, path, error=error, parent=parent))


def observed_run(
    kind: RunKind, path: str
) -> Callable[
    [Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]],
    Callable[Concatenate[Any, P], Coroutine[Any, Any, T]],
]:
    """A resource method that is one run (``self._api.hooks`` hear it)."""

    def wrap(
        fn: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]],
    ) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]:
        @functools.wraps(fn)
        async def run(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
            hooks: Hooks | None = self._api.hooks
            if hooks is None:
                return await fn(self, *args, **kwargs)
            async with run_events(hooks, kind, path):
                return await fn(self, *args, **kwargs)

        return run

    return wrap
