"""``BatchClient``: configuration + transport + the API resources."""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import IO, Any, Literal, Self, TypeVar, cast

import anyio

from . import _protocol as proto
from ._budget import RequestBudget
from ._config import ClientConfig, Limits, Timeout, resolve_budget
from ._errors import AiobatchError, ClientClosedError, ConfigurationError
from ._paging.supervisor import Supervisor
from ._paging.types import ScanOptions
from ._retry import (
    RetryPolicy,
    call_with_retries,
    current_attempt,
    finite_non_negative,
    parse_retry_after,
)
from ._stats import ClientStats, Counters
from ._storage import StorageTransport
from ._transport import AiohttpTransport, ClientSession, Transport
from .events import (
    EventHook,
    Hooks,
    RateLimitedEvent,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    emit,
    path_template,
    safe_request_id,
)
from .resources._sizes import KnownSizes
from .resources.batches import Batches
from .resources.directories import Directories
from .resources.job_items import JobItems
from .resources.jobs import Jobs

__all__ = ["BatchClient"]

T = TypeVar("T")


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class BatchClient:
    """Async client for the LlamaCloud batch-processing API.

    Use it as an async context manager; it owns one ``aiohttp.ClientSession``
    (created on first use inside the running loop, closed on exit), or borrows
    ``session`` and leaves it open::

        async with BatchClient() as client:
            page = await client.job_items.list("bjb-...", status="failed")
            async for item in client.job_items.iter("bjb-...", status="failed"):
                ...

    The API key comes from ``api_key``, else ``LLAMA_CLOUD_API_KEY``, else
    ``LLAMA_PARSE_API_KEY``; the base URL from ``base_url``, else
    ``LLAMA_CLOUD_BASE_URL``, else the public endpoint.

    Every request of the client (every call, every page of every scan, every
    retry) shares one budget (``client.budget``): at most ``max_concurrency``
    in flight (default 64, halved while the server answers 429), paced to
    ``rate_limit`` requests per second when set (default: unpaced), and a 429's
    ``Retry-After`` pauses them all.  Scans share it round-robin.

    ``event_hooks`` (httpx's shape) maps ``"request"``, ``"response"``, ``"retry"``,
    ``"rate_limited"``, ``"scan"``, ``"result"`` and ``"wait"`` to lists of
    callables (plain or async) that get the typed events of ``aiobatch.events``;
    ``client.stats()`` counts requests the same way.  Unset arguments come from
    the environment: ``LLAMA_CLOUD_TIMEOUT``, ``LLAMA_CLOUD_MAX_RETRIES``,
    ``LLAMA_CLOUD_MAX_CONCURRENCY``, ``LLAMA_CLOUD_RATE_LIMIT``, and for item
    scans ``LLAMA_CLOUD_PAGE_SIZE`` and ``LLAMA_CLOUD_SCAN_CONCURRENCY``;
    ``LLAMA_CLOUD_LOG`` sets the ``aiobatch`` log level.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        limits: Limits | None = None,
        session: ClientSession | None = None,
        transport: Transport | None = None,
        max_concurrency: int | None = None,
        rate_limit: float | None = None,
        event_hooks: Mapping[str, Iterable[EventHook]] | None = None,
    ) -> None:
        if session is not None and transport is not None:
            raise ConfigurationError(
                "pass session= or transport=, not both: a transport brings its own "
                "connections, so the session would be silently unused"
            )
        self._config = ClientConfig.resolve(
            api_key=api_key,
            base_url=base_url,
            organization_id=organization_id,
            project_id=project_id,
            timeout=timeout,
            limits=limits,
            retry=retry,
            max_retries=max_retries,
        )
        concurrency, rate = resolve_budget(max_concurrency, rate_limit)
        self._budget = RequestBudget(concurrency, rate, self._config.retry)
        self._counters = Counters()
        self._hooks = Hooks(event_hooks or {})
        # The hot path checks one attribute: None unless some hook listens.
        self._observed: Hooks | None = self._hooks or None
        self._policy = self._observe_retries(self._config.retry)
        self._transport: Transport = transport or AiohttpTransport(self._config, session=session)
        self._storage = StorageTransport(self._config)  # presigned URLs: another host
        self._state = _State.NEW
        self._scans = Supervisor()
        api = _Api(self)
        self.job_items = JobItems(api)
        self.jobs = Jobs(api)
        self.batches = Batches(api)  # v2: /api/v2/batches
        self.directories = Directories(api)  # a v2 batch's source files and their names

    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def budget(self) -> RequestBudget:
        """The request budget every request of this client passes through."""
        return self._budget

    def stats(self) -> ClientStats:
        """The client's counters so far, as a plain snapshot (for a health endpoint)."""
        return self._counters.snapshot(self._budget)

    def add_event_hook(self, name: str, hook: EventHook) -> None:
        """Append ``hook`` to ``name``'s list, as ``event_hooks`` would have
        (``aiobatch.otel.instrument`` uses it)."""
        self._hooks.add(name, hook)
        self._observed = self._hooks
        self._policy = self._observe_retries(self._config.retry)

    def _observe_retries(self, policy: RetryPolicy) -> RetryPolicy:
        if not self._hooks.retry:
            return policy
        retry_hooks = self._hooks

        async def observer(what: str, exc: AiobatchError, delay: float, attempt: int) -> None:
            event = RetryEvent(
                # A request's path is templated; a scan's own words ("page at
                # offset 500", "GET presigned URL") hold no id and stay as they are.
                operation=path_template(what) if "/" in what else what,
                cause=type(exc).__name__,
                status=getattr(exc, "status_code", None),
                delay=delay,
                attempt=attempt,
            )
            await emit(retry_hooks.retry, event)

        return replace(policy, observer=observer)

    def _spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        # Plain `async for` scans run in the client's supervisor task group: they
        # cannot outlive the client, and the consumer never holds a cancel scope.
        self._check_open()
        self._scans.spawn(cast(Callable[[], Coroutine[Any, Any, None]], fn))

    def __repr__(self) -> str:
        c = self._config
        return f"<BatchClient base_url={c.base_url!r} state={self._state.value}>"

    async def __aenter__(self) -> Self:
        if self._state is not _State.NEW:
            raise ClientClosedError(f"this BatchClient is already {self._state.value}")
        await self._scans.start()
        self._state = _State.OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop running scans and close the owned session (a borrowed one is left
        open).  Idempotent; may be called from any task."""
        self._state = _State.CLOSED
        try:
            await self._scans.aclose()
        finally:
            try:
                await self._transport.aclose()
            finally:
                await self._storage.aclose()

    def _check_open(self) -> None:
        if self._state is not _State.OPEN:
            raise ClientClosedError(
                "BatchClient is closed"
                if self._state is _State.CLOSED
                else "BatchClient is not open: use `async with BatchClient() as client:`"
            )

    # --- the one request path every resource uses ---------------------------

    def _scope(self, organization_id: str | None, project_id: str | None) -> proto.Params:
        """Query parameters shared by every endpoint, call arguments winning."""
        return proto.query(
            organization_id=organization_id or self._config.organization_id,
            project_id=project_id or self._config.project_id,
        )

    async def _send(
        self,
        model: type[T],
        method: str,
        path: str,
        params: proto.Query,
        body: bytes | None = None,
    ) -> T:
        """One attempt: send, then turn the answer into ``model`` or an error."""
        self._check_open()
        policy = self._config.retry
        secret = self._config.api_key.reveal().encode()  # masked if a server echoes it
        budget, counters, hooks = self._budget, self._counters, self._observed
        attempt = current_attempt()
        if attempt > 1:
            counters.retries += 1
        # Events begin once the budget lets the attempt go: the shared 429 pause
        # and the queue are not the request's duration, and an attempt cancelled
        # while it waits was never sent (no span, nothing in flight).
        await budget.acquire()
        request: RequestEvent | None = None
        started = 0.0
        try:
            if hooks is not None:
                request = RequestEvent(method, path_template(path), attempt)
                await emit(hooks.request, request)
                started = time.perf_counter()
            resp = await self._transport.send(method, path, params=dict(params), body=body)
        except BaseException as exc:
            # Cancelled too: an attempt sent and never answered (the metrics'
            # ``error.type``), so responses and errors add up to the requests.
            counters.count_error(type(exc).__name__)
            if request is not None and hooks is not None:
                # Cancelled too: every request event gets its response event.
                await self._emit_failure(hooks, request, started, exc)
            raise
        finally:
            budget.release()
        counters.count_response(resp.status, len(resp.body))
        if resp.status == 429:
            pause = parse_retry_after(resp.headers, now=policy.wall_clock())
            budget.on_rate_limited(pause)
            if hooks is not None:
                await emit(hooks.rate_limited, _rate_limited(method, path, resp.headers, pause))
        elif 200 <= resp.status < 300:
            budget.on_success()
        if request is not None and hooks is not None:
            await emit(
                hooks.response,
                ResponseEvent(
                    request,
                    resp.status,
                    time.perf_counter() - started,
                    len(resp.body),
                    safe_request_id(
                        resp.headers.get("x-request-id") or resp.headers.get("request-id"),
                        secret=self._config.api_key.reveal(),
                    ),
                ),
            )
        return proto.decipher(
            model,
            status=resp.status,
            headers=resp.headers,
            body=resp.body,
            framed=resp.framed,
            method=method,
            path=path,
            now=policy.wall_clock(),
            secret=secret,
        )

    @staticmethod
    async def _emit_failure(
        hooks: Hooks, request: RequestEvent, started: float, exc: BaseException
    ) -> None:
        event = ResponseEvent(
            request, None, time.perf_counter() - started, 0, error=type(exc).__name__
        )
        # Shielded: a cancelled attempt still ends its span and its in-flight count.
        with anyio.CancelScope(shield=True):
            await emit(hooks.response, event)

    async def _call(
        self,
        model: type[T],
        method: str,
        path: str,
        *,
        params: proto.Query,
        body: bytes | None = None,
        idempotent: bool = True,
    ) -> T:
        """One request, retried by the client's policy."""
        self._check_open()
        return await call_with_retries(
            self._policy,
            functools.partial(self._send, model, method, path, params, body),
            idempotent=idempotent,
            what=f"{method} {path}",
        )


class _Api:
    """The narrow, private seam resources and the engine use (``resources.Api``)."""

    __slots__ = ("_client", "call", "scope", "sizes")

    def __init__(self, client: BatchClient) -> None:
        self._client = client
        self.call = client._call
        self.scope = client._scope
        self.sizes = KnownSizes()

    @property
    def policy(self) -> RetryPolicy:
        return self._client._policy

    @property
    def hooks(self) -> Hooks | None:
        return self._client._observed

    @property
    def scan_defaults(self) -> ScanOptions:
        return self._client._config.scan_defaults

    @property
    def counters(self) -> Counters:
        return self._client._counters

    def send(self, model: type[T], path: str, params: proto.Query) -> Awaitable[T]:
        return self._client._send(model, "GET", path, params)

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._client._spawn(fn)

    def redact(self, text: str) -> str:
        return proto.scrub_text(text, self._client._config.api_key.reveal())

    def download(self, url: str, sink: IO[bytes]) -> Awaitable[int]:
        """One attempt at a presigned URL, streamed into ``sink`` (no key sent)."""
        self._client._check_open()
        return self._client._storage.fetch(url, sink)


def _rate_limited(
    method: str, path: str, headers: Mapping[str, str], pause: float | None
) -> RateLimitedEvent:
    source: Literal["retry-after-ms", "retry-after", "none"] = "none"
    if pause is not None:
        # The header the pause came from: an unusable retry-after-ms is ignored.
        usable_ms = finite_non_negative(headers.get("retry-after-ms")) is not None
        source = "retry-after-ms" if usable_ms else "retry-after"
    return RateLimitedEvent(method, path_template(path), pause, source)
