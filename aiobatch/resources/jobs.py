"""``client.jobs``: list, inspect, cancel and create batch jobs."""

from __future__ import annotations

import operator
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec

from .. import _protocol as proto
from .._checks import check_seconds
from .._errors import ConfigurationError
from .._paging import Endpoint, ItemIterator, PageIterator, Resolved, Scan, ScanKw, ScanOptions
from .._rerun.plan import RetryChunk, RetryPlan
from .._rerun.run import Rerun, rerun
from .._rerun.state import RetryStateStore, state_store
from ..events import observed_run
from ..models import (
    BatchJob,
    BatchJobList,
    BatchJobStatus,
    CancelResponse,
    ItemStatus,
    JobStatus,
    JobType,
    encode,
)
from ..workflows import JobWatch
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


#: ``page_size`` of ``POST /batch-processing`` (the published schema: 1..1000).
MAX_CREATE_PAGE_SIZE = 1000
#: Items per new job when re-running failed items.
DEFAULT_CHUNK_SIZE = 1000
#: Seconds after a create attempt by which its job is listed, if it was made.
DEFAULT_SETTLE = 60.0


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
        ).observe(self._api.hooks, spawn=self._api.spawn)

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
        ``x-should-retry: true``.  ``item_ids`` need a project (``project_id``
        here or on the client); ``page_size`` is 1..1000.  The server answers 201.
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
            payload["item_ids"] = [proto.check_body_id("item_ids[]", i) for i in item_ids]
        if page_size is not None:
            payload["page_size"] = proto.check_limit(page_size, name="page_size")
            if page_size > MAX_CREATE_PAGE_SIZE:
                raise ValueError(f"page_size must be <= {MAX_CREATE_PAGE_SIZE}, got {page_size}")
        if continue_as_new_threshold is not None:
            payload["continue_as_new_threshold"] = proto.check_limit(
                continue_as_new_threshold, name="continue_as_new_threshold"
            )
        params = self._api.scope(organization_id, project_id)
        if item_ids is not None:
            _need_project(params, "jobs.create(item_ids=...)")
        return await self._api.call(
            BatchJob, "POST", proto.path(""), params=params, body=encode(payload), idempotent=False
        )

    @observed_run("retry_failed", "/api/v1/beta/batch-processing/{id}")
    async def retry_failed(
        self,
        job_id: str,
        *,
        statuses: Sequence[ItemStatus | str] = ("failed",),
        job_config: Mapping[str, Any] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        dry_run: bool = False,
        state: str | os.PathLike[str] | RetryStateStore | None = None,
        already_created: RetryPlan | Iterable[RetryChunk] | None = None,
        settle: float = DEFAULT_SETTLE,
        on_created: Callable[[RetryChunk], Any] | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> RetryPlan:
        """Re-run the items of ``job_id`` that ended with one of ``statuses``, as
        new jobs of at most ``chunk_size`` items each (``POST /batch-processing``
        with ``item_ids``); returns the ``RetryPlan`` (new job ids with their
        items, and anything not submitted).

        The configuration is ``job_config``, else the original job's as its
        items were processed with it (the whole ``job_config`` of the
        ``processing_results`` of a scanned item, else of a completed item of
        the job), else ``MissingJobConfigError``.  ``dry_run`` only scans and
        plans.  A create that fails stops the run with ``RetryFailedError``
        (``.plan`` says which chunks exist).

        ``state`` (a file path, or a ``RetryStateStore``) keeps the plan between
        calls, saved before each create is sent: calling again with the same
        ``state`` resumes instead of creating any chunk twice (passing a
        ``.plan`` back as ``already_created=`` does the same without a store).
        A chunk whose create may have made a job unheard of (interrupted, timed
        out, a 5xx) is *uncertain*: the next call looks for its job among the
        jobs created since the attempt, and submits the chunk again only when
        no job holds its items ``settle`` seconds after the attempt (it waits
        out the rest); when jobs it cannot tell apart exist, the chunk stays
        uncertain, naming them (``chunk.candidates``).  ``on_created`` (a
        function or coroutine function) hears each chunk as soon as its job is
        known: made by this call, or found by it (``chunk.found``: an earlier
        uncertain create made its job).
        """
        proto.check_id("job_id", job_id)
        if isinstance(statuses, str) or not statuses:
            raise ValueError("statuses must be a non-empty sequence of item statuses")
        wanted = tuple(str(proto.check_status(s, ItemStatus, name="statuses")) for s in statuses)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
        if job_config is not None and not isinstance(job_config, Mapping):
            raise TypeError("job_config must be a mapping (the parse/classify config object)")
        check_seconds("settle", settle, none_ok=False, zero_ok=True)
        if not dry_run:  # before the scan: its new jobs are item-ids jobs
            _need_project(self._api.scope(organization_id, project_id), "jobs.retry_failed")
        if state is not None and already_created is not None:
            raise ValueError("pass state= or already_created=, not both")
        run = Rerun(
            job_id=job_id,
            statuses=wanted,
            chunk_size=chunk_size,
            dry_run=dry_run,
            job_config=job_config,
            settle=float(settle),
            policy=self._api.policy,
            store=None if state is None else state_store(state),
            on_created=on_created,
            organization_id=organization_id,
            project_id=project_id,
        )
        return await rerun(self, JobItems(self._api), run, already_created)


def _need_project(scope: Mapping[str, str], what: str) -> None:
    """Item-ids jobs live in a project: without one the server can only refuse."""
    if "project_id" not in scope:
        raise ConfigurationError(
            f"{what} creates jobs over item ids, which need a project: pass project_id= "
            "(to the call or to BatchClient)"
        )
