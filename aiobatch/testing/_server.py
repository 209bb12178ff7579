"""``Simulator``: the batch API on a loopback port, in this process."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import msgspec
from aiohttp import web

from .. import models
from .._results._models import ParseJsonResult, ParseMarkdownResult, ParseTextResult
from .._results._types import ResultContent
from .._retry import RetryPolicy
from ._app import make_app
from ._batches import BATCHES, BatchStore
from ._data import job_object, progress_percentage
from ._faults import Faults, FaultState
from ._jobs import SimClock, SimJob
from ._registry import CreateRecord, Registry
from ._results import outcome, parse_result_body
from ._stats import Stats
from ._storage import ObjectStore, StorageRequest
from ._v2jobs import storage_resolver
from ._webhooks import WebhookDelivery, WebhookDispatcher

if TYPE_CHECKING:
    from .._client import BatchClient

__all__ = ["Simulator"]

_PARSE_MODELS: dict[str, type[Any]] = {
    "markdown": ParseMarkdownResult,
    "text": ParseTextResult,
    "json": ParseJsonResult,
}


class Simulator:
    """A local LlamaCloud batch-processing API for tests, benchmarks and demos::

        async with Simulator(jobs=[SimJob(total_items=10_000)]) as sim:
            async with BatchClient(api_key=sim.api_key, base_url=sim.base_url) as c:
                ...

    ``faults`` may be replaced at any time (``sim.faults = Faults(...)``); doing so
    restarts the trigger counters.  ``clock`` drives running jobs: pass
    ``SimClock.frozen_at()`` and call ``sim.advance(seconds)`` for deterministic
    progress.  ``sleep`` is what latency and trickling await (tests may record it).
    ``total_size=False`` leaves ``total_size`` out of item listings: no request
    asks for it and whether the API sends it is not published, so a client must be
    right (and fast) both ways.  Items carry their unset nullable fields as
    explicit ``null`` (as the API's FastAPI server does); ``explicit_nulls=False``
    leaves them out, as the SDK's types also allow.  Presigned result URLs point at a second
    listener (``storage_url``), valid for ``presigned_ttl`` seconds of the
    simulator's clock, over TLS when ``storage_ssl`` is given.
    """

    def __init__(
        self,
        jobs: Iterable[SimJob] = (),
        *,
        faults: Faults | None = None,
        api_key: str | None = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: SimClock | None = None,
        default_limit: int = 100,
        max_limit: int = 1000,
        seed: int = 0,
        created_job_items: int = 25,
        page_cache_bytes: int = 32 * 1024 * 1024,
        log_limit: int = 100_000,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        presigned_ttl: float = 900.0,
        storage_ssl: ssl.SSLContext | None = None,
        total_size: bool = True,
        explicit_nulls: bool = True,
    ) -> None:
        if not 1 <= default_limit <= max_limit:
            raise ValueError("need 1 <= default_limit <= max_limit")
        self.api_key = api_key
        self.total_size = total_size
        self.explicit_nulls = explicit_nulls
        self.host = host
        self.default_limit = default_limit
        self.max_limit = max_limit
        self.clock = clock or SimClock()
        self.sleep: Callable[[float], Awaitable[None]] = sleep or asyncio.sleep
        self.registry = Registry(
            self.clock,
            seed=seed,
            created_job_items=created_job_items,
            page_cache_bytes=page_cache_bytes,
        )
        self._log_limit = log_limit
        self._stats = Stats(log_limit)
        self._fault_state = FaultState(faults or Faults())
        self._port = port
        self._runner: web.AppRunner | None = None
        self.app = make_app(self)
        self.storage = ObjectStore(
            self.clock,
            storage_resolver(self.app[BATCHES]),
            host=host,
            ttl=presigned_ttl,
            ssl_context=storage_ssl,
        )
        self._webhooks = WebhookDispatcher(self.app[BATCHES], lambda: self._fault_state)
        for job in jobs:
            self.add_job(job)

    def __repr__(self) -> str:
        where = self.base_url if self._runner else "not started"
        return f"<Simulator {where} jobs={len(self.registry.states())}>"

    # --- lifecycle ------------------------------------------------------------

    async def start(self) -> Self:
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        try:
            await self.storage.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]
        self._webhooks.start()
        return self

    async def stop(self) -> None:
        """Close the listener and every connection.  Idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            try:
                await self._webhooks.stop()
            finally:
                try:
                    await runner.cleanup()
                finally:
                    await self.storage.stop()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the simulator is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    # --- knobs and observations -------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._fault_state.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self._fault_state = FaultState(value)

    @property
    def fault_state(self) -> FaultState:
        return self._fault_state

    @property
    def stats(self) -> Stats:
        return self._stats

    @property
    def creates(self) -> list[CreateRecord]:
        """Every accepted ``POST /batch-processing``, in order: the job made, its
        ``job_config``, ``item_ids`` (or ``directory_id``) and ``project_id``."""
        return self.registry.creates

    def reset_stats(self) -> None:
        """Start counting afresh (requests in flight finish on the old ``Stats``)."""
        self._stats = Stats(self._log_limit)

    def now(self) -> float:
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock forward (running jobs progress)."""
        self.clock.advance(seconds)

    @property
    def batches(self) -> BatchStore:
        """The v2 batches (``/api/v2/batches``): ``sim.batches.add(SimBatch(...))``,
        ``sim.batches.ids(status=...)`` (ground truth, in listing order)."""
        return self.app[BATCHES]

    @property
    def storage_url(self) -> str:
        """The origin of the presigned result URLs (``*_content_metadata``
        expands): a second listener, as object storage is another host."""
        return self.storage.base_url

    @property
    def storage_requests(self) -> list[StorageRequest]:
        """Every request the storage listener received, headers included (a
        request with ``Authorization`` is refused there, as S3 does)."""
        return self.storage.requests

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every webhook POST made so far, in the order sent: event, URL, headers,
        the exact body, and the receiver's status (None and ``error`` on failure)."""
        return self._webhooks.deliveries

    async def wait_for_webhooks(
        self,
        count: int,
        timeout: float = 10.0,  # noqa: ASYNC109 (a guard against waiting for too many)
    ) -> list[WebhookDelivery]:
        """Wait until ``count`` webhook deliveries were made; returns them all.
        Wakes as each is sent (no polling); ``TimeoutError`` after ``timeout`` s."""
        return await self._webhooks.wait_for(count, timeout)

    # --- jobs and ground truth ---------------------------------------------------

    def add_job(self, job: SimJob) -> SimJob:
        self.registry.add(job)
        return job

    @property
    def jobs(self) -> list[SimJob]:
        return [s.job for s in self.registry.states()]

    @property
    def job_ids(self) -> list[str]:
        return [s.job.job_id for s in self.registry.states()]

    def job(self, job_id: str) -> models.BatchJobStatus:
        """The job and its progress, as ``GET /{job_id}`` would report them now."""
        state = self.registry.require(job_id)
        now = self.clock.now()
        view = state.view(now)
        return models.BatchJobStatus(
            job=models.decode(models.BatchJob, models.encode(job_object(state, view, now))),
            progress_percentage=progress_percentage(view),
        )

    def count(self, job_id: str, status: str | None = None) -> int:
        """How many items (with ``status``) the job has now: the true ``total_size``."""
        return self.registry.require(job_id).view(self.clock.now()).count(status)

    def items(
        self,
        job_id: str,
        status: str | None = None,
        *,
        offset: int = 0,
        limit: int | None = None,
    ) -> Iterator[models.BatchItem]:
        """The job's items (with ``status``) in server order, as served now without
        faults; lazy, so a slice of a huge job stays cheap."""
        return self.registry.truth(job_id, status, offset, limit)

    def item_ids(self, job_id: str, status: str | None = None) -> list[str]:
        return [item.item_id for item in self.items(job_id, status)]

    def parse_status(self, processing_job_id: str) -> str | None:
        """The status ``GET /parsing/job/{id}`` reports now for an item's
        processing job (``PENDING``, ``SUCCESS``, ``ERROR``), None for a 404."""
        found = self.registry.locate_job(processing_job_id)
        if found is None:
            return None
        state, index = found
        return outcome(state, state.view(self.clock.now()), index, processing_job_id).status

    def parse_result(self, processing_job_id: str, kind: str = "markdown") -> bytes | None:
        """The body ``GET /parsing/job/{id}/result/{kind}`` serves now, or None
        when that request fails (no such job, or a job not in ``SUCCESS``)."""
        found = self.registry.locate_job(processing_job_id)
        if found is None or found[0].job.job_type != "parse":
            return None
        state, index = found
        result = outcome(state, state.view(self.clock.now()), index, processing_job_id)
        if result.status != "SUCCESS":
            return None
        name = self.registry.encoder(state).name(index)
        return parse_result_body(processing_job_id, name, kind, result.size)

    def result_content(
        self, processing_job_id: str, kind: str = "markdown"
    ) -> ResultContent | None:
        """What ``iter_results`` yields for that parse job now, in the client's
        form (``ItemResult.content``: the bytes to store and the metadata), or
        None where ``parse_result`` is None (the item gets an ``ItemError``)."""
        if kind not in _PARSE_MODELS:
            raise ValueError(f"kind must be one of {', '.join(_PARSE_MODELS)}, got {kind!r}")
        body = self.parse_result(processing_job_id, kind)
        if body is None:
            return None
        wire = msgspec.json.decode(body, type=_PARSE_MODELS[kind])
        data = bytes(wire.pages) if kind == "json" else getattr(wire, kind).encode("utf-8")
        return ResultContent(kind, data, wire.job_metadata)

    # --- a client for it ---------------------------------------------------------

    def retry_policy(self, **kwargs: Any) -> RetryPolicy:
        """A ``RetryPolicy`` that sleeps on this simulator's clock: a backoff or a
        ``Retry-After`` pause advances ``sim.clock`` and returns at once, so fault
        tests take no real time (and running jobs progress meanwhile)."""

        async def sleep(delay: float) -> None:
            if delay > 0:
                self.clock.advance(delay)
            await asyncio.sleep(0)

        kwargs.setdefault("random", lambda: 0.5)
        return RetryPolicy(
            sleep=sleep, monotonic=self.clock.now, wall_clock=self.clock.now, **kwargs
        )

    def client(self, **kwargs: Any) -> BatchClient:
        """A ``BatchClient`` for this simulator (its URL and key, and
        ``retry=sim.retry_policy()`` unless given); open it with ``async with``."""
        from .._client import BatchClient

        kwargs.setdefault("retry", self.retry_policy())
        return BatchClient(api_key=self.api_key, base_url=self.base_url, **kwargs)

    def item_id(self, job_id: str, index: int) -> str:
        """The id of item ``index`` of a job."""
        return f"itm_{self.registry.require(job_id).key}_{index:07d}"
