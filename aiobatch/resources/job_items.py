"""``client.job_items``: the items of a batch job, and an item's processing results."""

from __future__ import annotations

import operator

from .. import _protocol as proto
from .._paging import (
    Fetched,
    FilterMode,
    ItemIterator,
    Listing,
    OnDrift,
    PageIterator,
    Scan,
    ScanOptions,
    ScanProgress,
    Spawner,
    page_iterator,
)
from .._retry import RetryHooks
from ..models import (
    BatchItem,
    BatchItemListResponse,
    BatchJobStatus,
    ItemStatus,
    JobType,
    ProcessingResults,
)
from ._requester import Requester

__all__ = ["JobItems"]

_item_key = operator.attrgetter("item_id")


class JobItems:
    def __init__(self, client: Requester) -> None:
        self._client = client

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
        query.update(self._client.scope(organization_id, project_id))
        return await self._client.request(BatchItemListResponse, "GET", path, params=query)

    def iter_pages(
        self,
        job_id: str,
        *,
        status: ItemStatus | str | None = None,
        page_size: int = 500,
        concurrency: int = 8,
        start_offset: int = 0,
        max_items: int | None = None,
        filter_mode: FilterMode = "auto",
        on_drift: OnDrift = "raise",
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> PageIterator[BatchItem]:
        """Every page of a job's items, fetched ``concurrency`` at a time, in order.

        ``async for page in client.job_items.iter_pages(job_id): page.items``.
        See ``ScanOptions`` for the options; ``.progress`` can be polled.
        """
        return self._pages(
            job_id,
            status,
            ScanOptions(page_size, concurrency, start_offset, max_items, filter_mode, on_drift),
            self._client.scope(organization_id, project_id),
            self._client.spawn,
        )

    def iter(
        self,
        job_id: str,
        *,
        status: ItemStatus | str | None = None,
        page_size: int = 500,
        concurrency: int = 8,
        start_offset: int = 0,
        max_items: int | None = None,
        filter_mode: FilterMode = "auto",
        on_drift: OnDrift = "raise",
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> ItemIterator[BatchItem]:
        """Every item of a job (optionally of one status), in server order.

        ``async for item in client.job_items.iter(job_id, status="failed"): ...``
        """
        return ItemIterator(
            self.iter_pages(
                job_id,
                status=status,
                page_size=page_size,
                concurrency=concurrency,
                start_offset=start_offset,
                max_items=max_items,
                filter_mode=filter_mode,
                on_drift=on_drift,
                organization_id=organization_id,
                project_id=project_id,
            )
        )

    def scan(
        self,
        job_id: str,
        *,
        status: ItemStatus | str | None = None,
        options: ScanOptions | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> Scan[BatchItem]:
        """``async with client.job_items.scan(job_id) as pages:`` — the scan's tasks
        live exactly as long as the block (the strictest structured form)."""
        opts = options or ScanOptions()
        params = self._client.scope(organization_id, project_id)
        return Scan(lambda spawn: self._pages(job_id, status, opts, params, spawn))

    def _pages(
        self,
        job_id: str,
        status: ItemStatus | str | None,
        options: ScanOptions,
        params: proto.Params,
        spawn: Spawner,
    ) -> PageIterator[BatchItem]:
        proto.check_id("job_id", job_id)
        wanted = proto.check_status(status, ItemStatus)
        if wanted is not None and options.filter_mode == "auto" and options.start_offset:
            # "auto" may pick another mode than the interrupted scan did, and the
            # two count offsets differently (filtered vs every item).
            raise ValueError(
                "resuming a status-filtered scan (start_offset > 0) needs the "
                "filter_mode the first scan used (see progress.filter_mode or the "
                "error message): 'server' or 'client', not 'auto'"
            )

        async def resolve(progress: ScanProgress) -> Listing[BatchItem]:
            mode = await self._filter_mode(job_id, wanted, options.filter_mode, params)
            progress.filter_mode = mode
            # Built once per scan: each page only adds its offset and limit.
            path = proto.path("/{job_id}/items", job_id=job_id)
            base = {**params, **proto.query(status=wanted if mode == "server" else None)}
            request = self._client.request

            async def fetch(offset: int, limit: int, hooks: RetryHooks) -> Fetched[BatchItem]:
                query = {**base, "offset": str(offset), "limit": str(limit)}
                page = await request(BatchItemListResponse, "GET", path, params=query, hooks=hooks)
                return Fetched(page.items, page.total_size)

            if mode == "client" and wanted is not None:
                return Listing(fetch, _item_key, lambda item: item.status == wanted)
            return Listing(fetch, _item_key)

        return page_iterator(resolve, options, self._client.retry_policy, spawn)

    async def _filter_mode(
        self,
        job_id: str,
        status: ItemStatus | None,
        mode: FilterMode,
        params: proto.Params,
    ) -> str:
        if status is None:
            return "none"
        if mode != "auto":
            return mode
        # A finished job's statuses no longer move: the server-side filter is exact.
        path = proto.path("/{job_id}", job_id=job_id)
        job = await self._client.request(BatchJobStatus, "GET", path, params=params)
        return "server" if job.job.status.terminal else "client"

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
        params.update(self._client.scope(organization_id, project_id))
        return await self._client.request(ProcessingResults, "GET", path, params=params)
