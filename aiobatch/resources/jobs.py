"""``client.jobs``: list, inspect, cancel and create batch jobs."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

from .. import _protocol as proto
from .._paging import (
    Fetched,
    ItemIterator,
    Listing,
    OnDrift,
    PageIterator,
    ScanOptions,
    ScanProgress,
    page_iterator,
)
from .._retry import RetryHooks
from ..models import (
    BatchJob,
    BatchJobList,
    BatchJobStatus,
    CancelResponse,
    JobStatus,
    JobType,
    encode,
)
from ._requester import Requester

__all__ = ["Jobs"]

_job_key = operator.attrgetter("id")


class Jobs:
    def __init__(self, client: Requester) -> None:
        self._client = client

    async def list(
        self,
        *,
        directory_id: str | None = None,
        job_type: JobType | str | None = None,
        status: JobStatus | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> BatchJobList:
        """One page of ``GET /batch-processing``."""
        filters = self._filters(directory_id, job_type, status, organization_id, project_id)
        return await self._list(filters, proto.check_limit(limit), proto.check_offset(offset))

    def _filters(
        self,
        directory_id: str | None,
        job_type: JobType | str | None,
        status: JobStatus | str | None,
        organization_id: str | None,
        project_id: str | None,
    ) -> proto.Params:
        params = proto.query(
            directory_id=directory_id,
            job_type=proto.check_status(job_type, JobType, name="job_type"),
            status=proto.check_status(status, JobStatus),
        )
        params.update(self._client.scope(organization_id, project_id))
        return params

    async def _list(
        self,
        filters: proto.Params,
        limit: int | None,
        offset: int | None,
        hooks: RetryHooks | None = None,
    ) -> BatchJobList:
        params = {**filters, **proto.query(limit=limit, offset=offset)}
        return await self._client.request(
            BatchJobList, "GET", proto.path(""), params=params, hooks=hooks
        )

    def iter_pages(
        self,
        *,
        directory_id: str | None = None,
        job_type: JobType | str | None = None,
        status: JobStatus | str | None = None,
        page_size: int = 100,
        concurrency: int = 4,
        start_offset: int = 0,
        max_items: int | None = None,
        on_drift: OnDrift = "warn",
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> PageIterator[BatchJob]:
        """Every page of jobs, with the same engine as item scans.

        Jobs are created while one lists them, so drift only warns by default.
        """
        filters = self._filters(directory_id, job_type, status, organization_id, project_id)
        options = ScanOptions(page_size, concurrency, start_offset, max_items, "server", on_drift)

        async def fetch(offset: int, limit: int, hooks: RetryHooks) -> Fetched[BatchJob]:
            page = await self._list(filters, limit, offset, hooks)
            return Fetched(page.items, page.total_size)

        async def resolve(progress: ScanProgress) -> Listing[BatchJob]:
            progress.filter_mode = "server"
            return Listing(fetch, _job_key)

        return page_iterator(resolve, options, self._client.retry_policy, self._client.spawn)

    def iter(
        self,
        *,
        directory_id: str | None = None,
        job_type: JobType | str | None = None,
        status: JobStatus | str | None = None,
        page_size: int = 100,
        concurrency: int = 4,
        start_offset: int = 0,
        max_items: int | None = None,
        on_drift: OnDrift = "warn",
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> ItemIterator[BatchJob]:
        """Every job: ``async for job in client.jobs.iter(status="running"): ...``"""
        return ItemIterator(
            self.iter_pages(
                directory_id=directory_id,
                job_type=job_type,
                status=status,
                page_size=page_size,
                concurrency=concurrency,
                start_offset=start_offset,
                max_items=max_items,
                on_drift=on_drift,
                organization_id=organization_id,
                project_id=project_id,
            )
        )

    async def get(
        self,
        job_id: str,
        *,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> BatchJobStatus:
        """A job and its progress: ``GET /batch-processing/{job_id}``."""
        path = proto.path("/{job_id}", job_id=job_id)
        params = self._client.scope(organization_id, project_id)
        return await self._client.request(BatchJobStatus, "GET", path, params=params)

    async def cancel(
        self,
        job_id: str,
        *,
        reason: str | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> CancelResponse:
        """Cancel a job.  Retried like a GET: cancelling twice cannot duplicate work."""
        path = proto.path("/{job_id}/cancel", job_id=job_id)
        params = self._client.scope(organization_id, project_id)
        body = encode({"reason": reason} if reason is not None else {})
        return await self._client.request(
            CancelResponse, "POST", path, params=params, body=body, idempotent=True
        )

    async def create(
        self,
        *,
        job_config: Mapping[str, Any],
        directory_id: str | None = None,
        item_ids: Sequence[str] | None = None,
        page_size: int | None = None,
        continue_as_new_threshold: int | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> BatchJob:
        """Create a job over a directory or explicit items.

        Not idempotent: retried only when the request provably never reached the
        server (connection refused), the server said 429, or it sent
        ``x-should-retry: true``.
        """
        if not isinstance(job_config, Mapping):
            raise TypeError("job_config must be a mapping (the parse/classify config object)")
        if (directory_id is None) == (item_ids is None):
            raise ValueError("pass exactly one of directory_id or item_ids")
        payload: dict[str, Any] = {"job_config": dict(job_config)}
        if directory_id is not None:
            payload["directory_id"] = proto.check_id("directory_id", directory_id)
        if item_ids is not None:
            if isinstance(item_ids, str) or not item_ids:
                raise ValueError("item_ids must be a non-empty sequence of item id strings")
            payload["item_ids"] = [proto.check_id("item_ids[]", i) for i in item_ids]
        if page_size is not None:
            payload["page_size"] = proto.check_limit(page_size, name="page_size")
        if continue_as_new_threshold is not None:
            payload["continue_as_new_threshold"] = proto.check_limit(
                continue_as_new_threshold, name="continue_as_new_threshold"
            )
        params = self._client.scope(organization_id, project_id)
        return await self._client.request(
            BatchJob, "POST", proto.path(""), params=params, body=encode(payload), idempotent=False
        )
