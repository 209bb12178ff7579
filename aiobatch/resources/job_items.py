"""``client.job_items``: the items of a batch job, and an item's processing results."""

from __future__ import annotations

from .. import _protocol as proto
from ..models import BatchItemListResponse, ItemStatus, JobType, ProcessingResults
from ._requester import Requester

__all__ = ["JobItems"]


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
        params = proto.query(
            limit=proto.check_limit(limit),
            offset=proto.check_offset(offset),
            status=proto.check_status(status, ItemStatus),
        )
        params.update(self._client.scope(organization_id, project_id))
        return await self._client.request(BatchItemListResponse, "GET", path, params=params)

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
