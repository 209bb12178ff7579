"""``client.job_items``: the items of a batch job, and an item's processing results."""

from __future__ import annotations

import operator
import sys
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING

from .. import _protocol as proto
from .._checks import check_int, check_seconds
from .._paging import (
    Endpoint,
    FilterMode,
    ItemIterator,
    PageIterator,
    Resolved,
    Scan,
    ScanKw,
    ScanOptions,
)
from .._paging.types import MAX_CONCURRENCY
from .._results import (
    RESOLVERS,
    ResultIterator,
    ResultsProgress,
    Setup,
    UnsupportedJobTypeError,
    start_results,
)
from ..events import path_template
from ..models import (
    BatchItem,
    BatchItemListResponse,
    BatchJob,
    BatchJobStatus,
    ItemStatus,
    JobType,
    ProcessingResults,
)
from ..workflows import JobWatch
from ._declare import Declared, check_checkpoint, options_of
from ._requester import Api

if TYPE_CHECKING:
    from ..checkpoint import Checkpoint

if sys.version_info >= (3, 12):  # pragma: no cover
    from typing import Unpack
else:  # pragma: no cover
    from typing_extensions import Unpack

__all__ = ["ItemScanKw", "JobItems"]


class ItemScanKw(ScanKw, total=False):
    """What every form of an item scan takes besides ``job_id``."""

    status: ItemStatus | str | None
    options: ScanOptions | None
    organization_id: str | None
    project_id: str | None
    #: Resume from (and record into) a ``Checkpoint``.
    checkpoint: Checkpoint | None


_ITEM_ARGS = frozenset({"status", "organization_id", "project_id", "checkpoint"})


def items_listing(job_id: str, status: str | None) -> str:
    """What a checkpoint of this item listing is bound to."""
    return f"job_items/{job_id}" + (f"?status={status}" if status is not None else "")


def items_endpoint(job_id: str) -> Endpoint[BatchItemListResponse, BatchItem]:
    """``GET /batch-processing/{job_id}/items``: offset pages with a total."""
    return Endpoint(
        path=proto.path("/{job_id}/items", job_id=job_id),
        page=BatchItemListResponse,
        items=operator.attrgetter("items"),
        key=operator.attrgetter("item_id"),
        total=operator.attrgetter("total_size"),
    )


class JobItems:
    def __init__(self, api: Api) -> None:
        self._api = api

    async def list(
        self,
        job_id: str,
        *,
        limit: int | None = None,
        offset: int | None = None,
        status: ItemStatus | str | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> BatchItemListResponse:
        """One page of ``GET /batch-processing/{job_id}/items`` (one request, retried)."""
        path = proto.path("/{job_id}/items", job_id=job_id)
        query = proto.query(
            limit=proto.check_limit(limit),
            offset=proto.check_offset(offset),
            status=proto.check_status(status, ItemStatus),
        )
        query.update(self._api.scope(organization_id, project_id))
        return await self._api.call(BatchItemListResponse, "GET", path, params=query)

    def iter_pages(self, job_id: str, **kw: Unpack[ItemScanKw]) -> PageIterator[BatchItem]:
        """Every page of a job's items, fetched ``concurrency`` at a time, in order.

        ``async for page in client.job_items.iter_pages(job_id): page.items``.
        Options: ``options=ScanOptions(...)`` and/or its fields as keywords;
        ``.progress`` can be polled.
        """
        return self._declare(job_id, kw).pages()

    def iter(self, job_id: str, **kw: Unpack[ItemScanKw]) -> ItemIterator[BatchItem]:
        """Every item of a job (optionally of one status), in server order.

        ``async for item in client.job_items.iter(job_id, status="failed"): ...``
        """
        return self._declare(job_id, kw).items()

    def scan(self, job_id: str, **kw: Unpack[ItemScanKw]) -> Scan[BatchItem]:
        """``async with client.job_items.scan(job_id) as pages:`` — the scan's tasks
        live exactly as long as the block (the strictest structured form)."""
        return self._declare(job_id, kw).scan()

    def _declare(self, job_id: str, kw: ItemScanKw) -> Declared[BatchItem]:
        opts = options_of(self._api.scan_defaults, kw, _ITEM_ARGS)
        scope = self._api.scope(kw.get("organization_id"), kw.get("project_id"))
        proto.check_id("job_id", job_id)
        wanted = proto.check_status(kw.get("status"), ItemStatus)
        cp = check_checkpoint(kw.get("checkpoint"))
        if cp is not None and cp._filter_mode is not None and opts.filter_mode == "auto":
            # The resumed scan must count offsets as the checkpoint's scan did.
            opts = opts.with_(filter_mode=cp._filter_mode)
        if wanted is not None and opts.filter_mode == "auto" and opts.start_offset:
            # "auto" may pick another mode than the interrupted scan did, and the
            # two count offsets differently (filtered vs every item).
            raise ValueError(
                "resuming a status-filtered scan (start_offset > 0) needs the "
                "filter_mode the first scan used (see progress.filter_mode or the "
                "error message): 'server' or 'client', not 'auto'"
            )

        sizes, api = self._api.sizes, self._api

        def sizing(status: str | None) -> Callable[[], Awaitable[int | None]]:
            async def read() -> int | None:
                # One attempt (no retries): the counts are a hint for the end.
                path = proto.path("/{job_id}", job_id=job_id)
                sizes.job((await api.send(BatchJobStatus, path, scope)).job)
                return sizes.items(job_id, status)

            return read

        async def resolve() -> Resolved[BatchItem]:
            if wanted is None:
                return Resolved(scope, expected=sizes.items(job_id), sizing=sizing(None))
            mode = await self._filter_mode(job_id, opts.filter_mode, scope)
            if mode == "client":
                return Resolved(
                    scope,
                    lambda item: item.status == wanted,
                    "client",
                    expected=sizes.items(job_id),
                    sizing=sizing(None),
                )
            # Only a server-filtered listing has an exact total worth watching.
            query = {**scope, **proto.query(status=wanted)}
            expected = sizes.items(job_id, str(wanted))
            return Resolved(
                query,
                None,
                "server",
                total_is_exact=True,
                expected=expected,
                sizing=sizing(str(wanted)),
            )

        listing = items_listing(job_id, wanted)
        return Declared(self._api, items_endpoint(job_id), resolve, opts, cp, listing)

    async def _filter_mode(self, job_id: str, mode: FilterMode, scope: proto.Params) -> FilterMode:
        if mode != "auto":
            return mode
        # A finished job's statuses no longer move: the server-side filter is exact.
        path = proto.path("/{job_id}", job_id=job_id)
        job = await self._api.call(BatchJobStatus, "GET", path, params=scope)
        self._api.sizes.job(job.job)
        return "server" if job.job.status.terminal else "client"

    def iter_results(
        self,
        job_id: str,
        *,
        result: str | None = None,
        status: ItemStatus | str | None = "completed",
        concurrency: int = 8,
        start_offset: int = 0,
        max_items: int | None = None,
        page_size: int | None = None,
        filter_mode: FilterMode = "auto",
        job_type: JobType | str | None = None,
        wait: bool = False,
        poll_interval: float = 2.0,
        timeout: float | None = None,
        only: Collection[str] | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> ResultIterator:
        """Every item of a job with its output, in item order (``ItemResult``).

        ``result`` is the kind of output (parse: ``markdown`` (default), ``text``,
        ``json``; classify: ``classification``).  ``concurrency`` result
        requests in flight at most (halved on 429, grown back); at most
        ``2 * concurrency + 3`` results are held, so a slow consumer stops the
        fetching.  One item's failure is that result's ``error``; a systemic one
        (401, 403, the listing failing for good) raises.  Resume with
        ``start_offset=result.next_offset`` (and, with a status filter, the
        ``filter_mode`` in ``progress.filter_mode``), or pass a ``Checkpoint``
        as ``checkpoint=`` and ``ack`` each result when it is done (workers may
        finish out of order).  ``job_type`` skips asking the job for it.  While
        the job runs, its pending and processing items' results are
        ``not_ready``; ``wait`` first waits for the job to end, as
        ``client.jobs.wait(poll_interval=, timeout=)`` does.  ``only`` (item
        ids): fetch the results of these items alone (to fetch again what
        failed); the listing still runs in order and passes the others by.
        """
        proto.check_id("job_id", job_id)
        wanted = proto.check_only(only)
        check_int("concurrency", concurrency, minimum=1, maximum=MAX_CONCURRENCY)
        known = proto.check_status(job_type, JobType, name="job_type")
        if result is not None:
            resolvers = [RESOLVERS[known]] if known in RESOLVERS else list(RESOLVERS.values())
            kinds = [k for r in resolvers for k in r.kinds]
            if result not in kinds:
                raise ValueError(f"result must be one of {', '.join(kinds)}; got {result!r}")
        if wait:
            check_seconds("poll_interval", poll_interval, none_ok=False)
            check_seconds("timeout", timeout, none_ok=True, zero_ok=True)
        scope = self._api.scope(organization_id, project_id)
        cp = check_checkpoint(checkpoint)
        if cp is not None and cp._filter_mode is not None and filter_mode == "auto":
            filter_mode = cp._filter_mode
        listing: ItemScanKw = {
            "status": status,
            "start_offset": start_offset,
            "max_items": max_items,
            "filter_mode": filter_mode,
            "organization_id": organization_id,
            "project_id": project_id,
            "checkpoint": cp,
        }
        if page_size is not None:  # else the item scans' default (LLAMA_CLOUD_PAGE_SIZE)
            listing["page_size"] = page_size
        declared = self._declare(job_id, listing)  # the listing's arguments, checked now
        progress = ResultsProgress(next_offset=declared.start_offset())

        path = proto.path("/{job_id}", job_id=job_id)

        async def fetch() -> BatchJobStatus:
            return await self._api.call(BatchJobStatus, "GET", path, params=scope)

        async def setup() -> Setup:
            jtype: str | None = known
            job: BatchJob | None = None
            if wait:
                watch = JobWatch(
                    job_id,
                    fetch,
                    self._api.policy,
                    poll_interval=poll_interval,
                    max_interval=max(30.0, poll_interval),
                    timeout=timeout,
                )
                job = (await watch.wait()).job
            elif jtype is None or (filter_mode == "auto" and status is not None):
                # One request answers both: the job's type, and whether it is
                # finished (a status filter can then run on the server).
                job = (await fetch()).job
            if job is not None:
                jtype = jtype or job.job_type
                if filter_mode == "auto" and status is not None:
                    listing["filter_mode"] = "server" if job.status.terminal else "client"
            assert jtype is not None  # given, or read from the job
            progress.job_type = str(jtype)
            resolver = RESOLVERS.get(jtype)
            if resolver is None:
                raise UnsupportedJobTypeError(
                    f"job {job_id} is a {str(jtype)!r} job: aiobatch does not know where the "
                    f"output of {str(jtype)!r} jobs lives (results are supported for "
                    f"{', '.join(map(str, RESOLVERS))} jobs)",
                    job_type=str(jtype),
                )
            kind = result or resolver.kinds[0]
            if kind not in resolver.kinds:
                raise ValueError(
                    f"result={kind!r} does not exist for {str(jtype)!r} jobs: "
                    f"use one of {', '.join(resolver.kinds)}"
                )
            return Setup(resolver, kind, self._declare(job_id, listing).items())

        where = path_template(proto.path("/{job_id}/items", job_id=job_id))
        return start_results(self._api, setup, scope, concurrency, progress, wanted, path=where)

    async def get_processing_results(
        self,
        item_id: str,
        *,
        job_type: JobType | str | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> ProcessingResults:
        """``GET /batch-processing/items/{item_id}/processing-results``."""
        path = proto.path("/items/{item_id}/processing-results", item_id=item_id)
        params = proto.query(job_type=proto.check_status(job_type, JobType, name="job_type"))
        params.update(self._api.scope(organization_id, project_id))
        return await self._api.call(ProcessingResults, "GET", path, params=params)
