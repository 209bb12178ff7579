"""``client.job_items``: the items of a batch job, and an item's processing results."""

from __future__ import annotations

import operator
import sys

from .. import _protocol as proto
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
from ..models import (
    BatchItem,
    BatchItemListResponse,
    BatchJobStatus,
    ItemStatus,
    JobType,
    ProcessingResults,
)
from ._declare import Declared, options_of
from ._requester import Api

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


_ITEM_ARGS = frozenset({"status", "organization_id", "project_id"})


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
        opts = options_of(ScanOptions(), kw, _ITEM_ARGS)
        scope = self._api.scope(kw.get("organization_id"), kw.get("project_id"))
        proto.check_id("job_id", job_id)
        wanted = proto.check_status(kw.get("status"), ItemStatus)
        if wanted is not None and opts.filter_mode == "auto" and opts.start_offset:
            # "auto" may pick another mode than the interrupted scan did, and the
            # two count offsets differently (filtered vs every item).
            raise ValueError(
                "resuming a status-filtered scan (start_offset > 0) needs the "
                "filter_mode the first scan used (see progress.filter_mode or the "
                "error message): 'server' or 'client', not 'auto'"
            )

        async def resolve() -> Resolved[BatchItem]:
            if wanted is None:
                return Resolved(scope)
            mode = await self._filter_mode(job_id, opts.filter_mode, scope)
            if mode == "client":
                return Resolved(scope, lambda item: item.status == wanted, "client")
            # Only a server-filtered listing has an exact total worth watching.
            query = {**scope, **proto.query(status=wanted)}
            return Resolved(query, None, "server", total_is_exact=True)

        return Declared(self._api, items_endpoint(job_id), resolve, opts)

    async def _filter_mode(self, job_id: str, mode: FilterMode, scope: proto.Params) -> FilterMode:
        if mode != "auto":
            return mode
        # A finished job's statuses no longer move: the server-side filter is exact.
        path = proto.path("/{job_id}", job_id=job_id)
        job = await self._api.call(BatchJobStatus, "GET", path, params=scope)
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
        params.update(self._api.scope(organization_id, project_id))
        return await self._api.call(ProcessingResults, "GET", path, params=params)
