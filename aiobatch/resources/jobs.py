"""``client.jobs``: list, inspect, cancel and create batch jobs."""

from __future__ import annotations

import inspect
import operator
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec

from .. import _protocol as proto
from .._errors import (
    AiobatchError,
    APIConnectionError,
    APIStatusError,
    MissingJobConfigError,
    RetryFailedError,
)
from .._paging import Endpoint, ItemIterator, PageIterator, Resolved, Scan, ScanKw, ScanOptions
from ..models import (
    BatchItem,
    BatchJob,
    BatchJobList,
    BatchJobStatus,
    CancelResponse,
    ItemStatus,
    JobStatus,
    JobType,
    encode,
)
from ..workflows import JobWatch, RetryChunk, RetryPlan, plan_chunks, with_job
from ._declare import Declared, fixed, options_of
from ._requester import Api
from .job_items import JobItems

if sys.version_info >= (3, 12):  # pragma: no cover
    from typing import Unpack
else:  # pragma: no cover
    from typing_extensions import Unpack

__all__ = ["JobScanKw", "Jobs"]

#: ``GET /batch-processing``: offset pages with a total.  Jobs are created while
#: one lists them, so drift only warns by default.
JOBS = Endpoint(
    path=proto.path(""),
    page=BatchJobList,
    items=operator.attrgetter("items"),
    key=operator.attrgetter("id"),
    total=operator.attrgetter("total_size"),
    defaults=ScanOptions(page_size=100, concurrency=4, on_drift="warn"),
)


_JOB_ARGS = frozenset({"directory_id", "job_type", "status", "organization_id", "project_id"})


#: Items per new job when re-running failed items.
DEFAULT_CHUNK_SIZE = 1000
#: Items whose processing results are read to find the original configuration.
CONFIG_PROBES = 3


class JobScanKw(ScanKw, total=False):
    """What every form of a job listing takes."""

    directory_id: str | None
    job_type: JobType | str | None
    status: JobStatus | str | None
    options: ScanOptions | None
    organization_id: str | None
    project_id: str | None


class Jobs:
    def __init__(self, api: Api) -> None:
        self._api = api

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
        params = {
            **filters,
            **proto.query(limit=proto.check_limit(limit), offset=proto.check_offset(offset)),
        }
        page = await self._api.call(BatchJobList, "GET", proto.path(""), params=params)
        for job in page.items:
            self._api.sizes.job(job)
        return page

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
        params.update(self._api.scope(organization_id, project_id))
        return params

    def iter_pages(self, **kw: Unpack[JobScanKw]) -> PageIterator[BatchJob]:
        """Every page of jobs, with the same engine as item scans."""
        return self._declare(kw).pages()

    def iter(self, **kw: Unpack[JobScanKw]) -> ItemIterator[BatchJob]:
        """Every job: ``async for job in client.jobs.iter(status="running"): ...``"""
        return self._declare(kw).items()

    def scan(self, **kw: Unpack[JobScanKw]) -> Scan[BatchJob]:
        """``async with client.jobs.scan() as pages:`` (the structured form)."""
        return self._declare(kw).scan()

    def _declare(self, kw: JobScanKw) -> Declared[BatchJob]:
        filters = self._filters(
            kw.get("directory_id"),
            kw.get("job_type"),
            kw.get("status"),
            kw.get("organization_id"),
            kw.get("project_id"),
        )
        opts = options_of(JOBS.defaults, kw, _JOB_ARGS)
        return Declared(self._api, JOBS, fixed(Resolved(filters)), opts)

    async def get(
        self,
        job_id: str,
        *,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> BatchJobStatus:
        """A job and its progress: ``GET /batch-processing/{job_id}``."""
        path = proto.path("/{job_id}", job_id=job_id)
        params = self._api.scope(organization_id, project_id)
        return await self._status(path, params)

    async def _status(self, path: str, params: proto.Params) -> BatchJobStatus:
        status = await self._api.call(BatchJobStatus, "GET", path, params=params)
        self._api.sizes.job(status.job)
        message = status.job.error_message
        if message and (shown := self._api.redact(message)) != message:
            # A server echoing the key in the job's error would put it in every
            # note, table and JobFailedError made from this status.
            job = msgspec.structs.replace(status.job, error_message=shown)
            status = msgspec.structs.replace(status, job=job)
        return status

    def watch(
        self,
        job_id: str,
        *,
        poll_interval: float = 2.0,
        max_interval: float = 30.0,
        timeout: float | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> JobWatch:
        """Each change of a job's status until it ends::

            async for status in client.jobs.watch(job_id):
                print(status.job.status, status.progress_percentage)

        Polls ``GET /batch-processing/{job_id}`` every ``poll_interval`` s while
        the job moves, backing off (x1.5 per unchanged poll) up to ``max_interval``;
        yields every status that differs from the previous one (status and counts),
        and stops after the first terminal one.  ``timeout`` (seconds, default
        none) raises ``JobWaitTimeoutError`` with the last status seen.
        """
        path = proto.path("/{job_id}", job_id=job_id)
        params = self._api.scope(organization_id, project_id)

        async def fetch() -> BatchJobStatus:
            return await self._status(path, params)

        return JobWatch(
            job_id,
            fetch,
            self._api.policy,
            poll_interval=poll_interval,
            max_interval=max_interval,
            timeout=timeout,
        )

    async def wait(
        self,
        job_id: str,
        *,
        poll_interval: float = 2.0,
        max_interval: float = 30.0,
        timeout: float | None = None,  # noqa: ASYNC109 (a deadline on the policy's clock)
        on_progress: Callable[[BatchJobStatus], Any] | None = None,
        raise_on_failure: bool = False,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> BatchJobStatus:
        """Wait until the job ends; its final status.

        ``on_progress`` (a function or a coroutine function) gets every status
        that differs from the last.  A job that ends ``failed`` or ``cancelled``
        is returned, unless ``raise_on_failure`` (then ``JobFailedError`` with
        ``.status``).  ``timeout`` raises ``JobWaitTimeoutError`` (``.status``: the
        last status seen).  Polling as in ``watch``.
        """
        watch = self.watch(
            job_id,
            poll_interval=poll_interval,
            max_interval=max_interval,
            timeout=timeout,
            organization_id=organization_id,
            project_id=project_id,
        )
        return await watch.wait(on_progress, raise_on_failure=raise_on_failure)

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
        params = self._api.scope(organization_id, project_id)
        body = encode({"reason": reason} if reason is not None else {})
        return await self._api.call(
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
        params = self._api.scope(organization_id, project_id)
        return await self._api.call(
            BatchJob, "POST", proto.path(""), params=params, body=encode(payload), idempotent=False
        )

    async def retry_failed(
        self,
        job_id: str,
        *,
        statuses: Sequence[ItemStatus | str] = ("failed",),
        job_config: Mapping[str, Any] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        dry_run: bool = False,
        already_created: RetryPlan | Iterable[RetryChunk] | None = None,
        on_created: Callable[[RetryChunk], Any] | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> RetryPlan:
        """Re-run the items of ``job_id`` that ended with one of ``statuses``, as
        new jobs of at most ``chunk_size`` items each (``POST /batch-processing``
        with ``item_ids``); returns the ``RetryPlan`` (new job ids with their
        items, and anything not submitted).

        The configuration is ``job_config``, else the one the items were processed
        with (``processing_results[].job_config`` of a scanned item, else of a
        completed item of the job), else ``MissingJobConfigError``.  ``dry_run``
        only scans and plans.  A create that fails stops the run with
        ``RetryFailedError``; its ``.plan`` says which chunks exist, and passing
        it back as ``already_created=`` finishes the job without creating any
        chunk twice.  ``on_created`` (a function or coroutine function) hears
        each chunk as soon as its job exists (to persist progress).
        """
        proto.check_id("job_id", job_id)
        if isinstance(statuses, str) or not statuses:
            raise ValueError("statuses must be a non-empty sequence of item statuses")
        wanted = tuple(str(proto.check_status(s, ItemStatus, name="statuses")) for s in statuses)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
        if job_config is not None and not isinstance(job_config, Mapping):
            raise TypeError("job_config must be a mapping (the parse/classify config object)")
        org, proj = organization_id, project_id
        items = JobItems(self._api)
        found: dict[str, BatchItem] = {}
        for status in dict.fromkeys(wanted):
            # Closed on leaving the block: an error's traceback may keep this frame.
            async with items.iter(
                job_id, status=status, organization_id=org, project_id=proj
            ) as scan:
                async for item in scan:
                    found.setdefault(item.item_id, item)
        chunks, earlier, doubtful = plan_chunks(found, chunk_size, already_created)
        plan = RetryPlan(
            job_id,
            wanted,
            chunk_size,
            dry_run,
            chunks=chunks,
            earlier=earlier,
            uncertain=doubtful,
            found=len(found),
        )
        if not chunks:
            return plan
        if job_config is not None:
            config: Mapping[str, Any] = job_config
            plan.config_source = "job_config argument"
        else:
            config, plan.config_source = await self._original_config(
                job_id, list(found.values()), items, org, proj
            )
        if dry_run:
            return plan
        for n, chunk in enumerate(chunks):
            try:
                job = await self.create(
                    job_config=config,
                    item_ids=chunk.item_ids,
                    organization_id=org,
                    project_id=proj,
                )
            except AiobatchError as exc:
                if _maybe_created(exc):
                    plan.uncertain.append(chunk)
                left = len(plan.not_submitted)
                raise RetryFailedError(
                    f"creating job {chunk.index} ({chunk.size} items) of the re-run of "
                    f"{job_id} failed: {exc}; {len(plan.created)} chunk(s) created, "
                    f"{left} item(s) not submitted; pass .plan as already_created= to "
                    "finish without duplicates",
                    plan=plan,
                    error=exc,
                ) from exc
            chunk = chunks[n] = with_job(chunk, job.id)
            if on_created is not None:
                result = on_created(chunk)
                if inspect.isawaitable(result):
                    await result
        return plan

    async def _original_config(
        self,
        job_id: str,
        found: Sequence[BatchItem],
        items: JobItems,
        org: str | None,
        proj: str | None,
    ) -> tuple[Mapping[str, Any], str]:
        """The configuration the job's items were processed with: from the
        processing results of a few of the items found, else of a few completed
        items of the job (failed items often have no result)."""

        async def probe(item_ids: Iterable[str]) -> tuple[Mapping[str, Any], str] | None:
            for item_id in item_ids:
                results = await items.get_processing_results(
                    item_id, organization_id=org, project_id=proj
                )
                for result in results.processing_results:
                    if result.job_config:
                        return result.job_config, f"item {item_id}"
            return None

        got = await probe(i.item_id for i in found[:CONFIG_PROBES])
        if got is None:
            async with items.iter(
                job_id,
                status="completed",
                max_items=CONFIG_PROBES,
                page_size=CONFIG_PROBES,
                organization_id=org,
                project_id=proj,
            ) as completed:
                ids = [i.item_id async for i in completed]
            got = await probe(ids)
        if got is None:
            raise MissingJobConfigError(
                f"no processing result of job {job_id} carries a job_config to re-run "
                "its items with: pass job_config=",
                job_id=job_id,
            )
        return got


def _maybe_created(exc: AiobatchError) -> bool:
    """Whether a failed create may still have made its job: the request left and
    no answer says it was refused (a lost connection, 500/502/504)."""
    if isinstance(exc, APIConnectionError):
        return exc.request_sent
    if isinstance(exc, APIStatusError):
        return exc.status_code in (500, 502, 504)
    return False
