"""``client.batches``: the v2 Batches API (``/api/v2/batches``).

A batch runs one product job (``parse_v2`` / ``extract_v2``, named by a saved
configuration) on every file of a source directory.  The listing is cursor-paged
(``page_token`` / ``next_page_token``, no total), so its scans walk pages in
sequence with the next page prefetched, refuse a token that repeats, and resume
with ``start_token``.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import _protocol as proto
from .._checks import check_int, check_seconds
from .._errors import BatchNotFinishedError
from .._paging import Endpoint, ItemIterator, PageIterator, Resolved, Scan, ScanKw, ScanOptions
from .._paging.types import MAX_CONCURRENCY
from .._results import (
    FILE_RESOLVERS,
    FileResultIterator,
    FileSetup,
    ResultsProgress,
    UnsupportedJobTypeError,
    start_file_results,
)
from .._webhook_setup import WebhookConfiguration
from ..models import Batch, BatchFileResult, BatchJobType, BatchList, BatchStatus, encode
from ..workflows import BatchResultsWatch, BatchWatch, results_state
from ._declare import Declared, check_checkpoint, fixed, options_of
from ._requester import Api

if TYPE_CHECKING:
    from ..checkpoint import Checkpoint

if sys.version_info >= (3, 12):  # pragma: no cover
    from typing import Unpack
else:  # pragma: no cover
    from typing_extensions import Unpack

__all__ = ["V2_BATCHES", "BatchScanKw", "Batches"]

#: The root of the v2 Batches API.
V2_BATCHES = "/api/v2/batches"

#: ``GET /api/v2/batches``: cursor pages, newest first, no total.
BATCHES = Endpoint(
    path=proto.api_path(V2_BATCHES, ""),
    page=BatchList,
    items=operator.attrgetter("items"),
    key=operator.attrgetter("id"),
    next_token=operator.attrgetter("next_page_token"),
    limit_param="page_size",
    token_param="page_token",
    defaults=ScanOptions(page_size=100),
)

_EXPANDS = ("results",)
_BATCH_ARGS = frozenset(
    {
        "status",
        "source_directory_id",
        "created_at_on_or_after",
        "created_at_on_or_before",
        "organization_id",
        "project_id",
        "checkpoint",
    }
)


class BatchScanKw(ScanKw, total=False):
    """What every form of a batch listing takes."""

    status: BatchStatus | str | None
    source_directory_id: str | None
    created_at_on_or_after: datetime | str | None
    created_at_on_or_before: datetime | str | None
    options: ScanOptions | None
    organization_id: str | None
    project_id: str | None
    #: Resume from (and record into) a ``Checkpoint``.
    checkpoint: Checkpoint | None


def _timestamp(name: str, value: datetime | str | None) -> str | None:
    """A ``created_at`` bound: an aware ``datetime`` (naive ones are refused: the
    server would read them in its own zone) or an ISO 8601 string."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware (e.g. datetime(..., tzinfo=UTC))")
        return value.isoformat()
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name} must be an ISO 8601 date-time, got {value!r}") from None
        return value
    raise TypeError(f"{name} must be a datetime or an ISO 8601 str, got {type(value).__name__}")


def _file_key(file: BatchFileResult) -> str:
    return file.source_directory_file_id


class Batches:
    def __init__(self, api: Api) -> None:
        self._api = api

    def _filters(
        self,
        status: BatchStatus | str | None,
        source_directory_id: str | None,
        created_at_on_or_after: datetime | str | None,
        created_at_on_or_before: datetime | str | None,
        organization_id: str | None,
        project_id: str | None,
    ) -> proto.Params:
        if source_directory_id is not None:
            proto.check_id("source_directory_id", source_directory_id)
        params = proto.query(
            status=proto.check_status(status, BatchStatus),
            source_directory_id=source_directory_id,
            created_at_on_or_after=_timestamp("created_at_on_or_after", created_at_on_or_after),
            created_at_on_or_before=_timestamp("created_at_on_or_before", created_at_on_or_before),
        )
        params.update(self._api.scope(organization_id, project_id))
        return params

    async def list(
        self,
        *,
        status: BatchStatus | str | None = None,
        source_directory_id: str | None = None,
        created_at_on_or_after: datetime | str | None = None,
        created_at_on_or_before: datetime | str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> BatchList:
        """One page of ``GET /api/v2/batches``; pass ``page.next_page_token`` back as
        ``page_token`` for the next one (``iter`` does it for you)."""
        params = self._filters(
            status,
            source_directory_id,
            created_at_on_or_after,
            created_at_on_or_before,
            organization_id,
            project_id,
        )
        if page_token is not None and (not isinstance(page_token, str) or not page_token):
            raise ValueError("page_token must be a non-empty str (a page's next_page_token)")
        params.update(
            proto.query(
                page_size=proto.check_limit(page_size, name="page_size"), page_token=page_token
            )
        )
        return await self._api.call(BatchList, "GET", BATCHES.path, params=params)

    def iter_pages(self, **kw: Unpack[BatchScanKw]) -> PageIterator[Batch]:
        """Every page of batches (``page.next_token`` resumes after a page)."""
        return self._declare(kw).pages()

    def iter(self, **kw: Unpack[BatchScanKw]) -> ItemIterator[Batch]:
        """Every batch: ``async for b in client.batches.iter(status="RUNNING"): ...``"""
        return self._declare(kw).items()

    def scan(self, **kw: Unpack[BatchScanKw]) -> Scan[Batch]:
        """``async with client.batches.scan() as pages:`` (the structured form)."""
        return self._declare(kw).scan()

    def _declare(self, kw: BatchScanKw) -> Declared[Batch]:
        filters = self._filters(
            kw.get("status"),
            kw.get("source_directory_id"),
            kw.get("created_at_on_or_after"),
            kw.get("created_at_on_or_before"),
            kw.get("organization_id"),
            kw.get("project_id"),
        )
        opts = options_of(BATCHES.defaults, kw, _BATCH_ARGS)
        listing = "batches?" + "&".join(f"{k}={v}" for k, v in sorted(filters.items()))
        cp = check_checkpoint(kw.get("checkpoint"))
        return Declared(self._api, BATCHES, fixed(Resolved(filters)), opts, cp, listing)

    async def get(
        self,
        batch_id: str,
        *,
        expand: str | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> Batch:
        """A batch: ``GET /api/v2/batches/{batch_id}``.  ``expand="results"`` adds the
        per-file results (``None`` while the batch runs)."""
        if expand is not None and expand not in _EXPANDS:
            raise ValueError(f"expand must be one of {', '.join(_EXPANDS)}; got {expand!r}")
        path = proto.api_path(V2_BATCHES, "/{batch_id}", batch_id=batch_id)
        params = {**self._api.scope(organization_id, project_id), **proto.query(expand=expand)}
        return await self._api.call(Batch, "GET", path, params=params)

    def watch(
        self,
        batch_id: str,
        *,
        poll_interval: float = 2.0,
        max_interval: float = 30.0,
        timeout: float | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> BatchWatch:
        """Each change of a batch's status until it ends::

            async for batch in client.batches.watch(batch_id):
                print(batch.status)

        Polls ``GET /api/v2/batches/{batch_id}`` as ``client.jobs.watch`` polls a
        job (every ``poll_interval`` s while it moves, x1.5 per unchanged poll up
        to ``max_interval``); stops after ``COMPLETED``, ``FAILED`` or
        ``CANCELLED`` (``THROTTLED`` and unknown statuses are not terminal).
        ``timeout`` raises ``BatchWaitTimeoutError`` with the last state seen.
        """
        path = proto.api_path(V2_BATCHES, "/{batch_id}", batch_id=batch_id)
        params = self._api.scope(organization_id, project_id)

        def fetch() -> Awaitable[Batch]:
            return self._api.call(Batch, "GET", path, params=params)

        return BatchWatch(
            batch_id,
            fetch,
            self._api.policy,
            poll_interval=poll_interval,
            max_interval=max_interval,
            timeout=timeout,
        ).observe(self._api.hooks, spawn=self._api.spawn)

    async def wait(
        self,
        batch_id: str,
        *,
        poll_interval: float = 2.0,
        max_interval: float = 30.0,
        timeout: float | None = None,  # noqa: ASYNC109 (a deadline on the policy's clock)
        on_progress: Callable[[Batch], Any] | None = None,
        raise_on_failure: bool = False,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> Batch:
        """Wait until the batch ends; its final state (without ``results``: get it
        with ``expand="results"`` or use ``iter_results``).

        ``on_progress`` (a function or a coroutine function) gets every change.
        A batch that ends ``FAILED`` or ``CANCELLED`` is returned, unless
        ``raise_on_failure`` (then ``BatchFailedError`` with ``.batch``).
        ``timeout`` raises ``BatchWaitTimeoutError``.  Polling as in ``watch``.
        """
        watch = self.watch(
            batch_id,
            poll_interval=poll_interval,
            max_interval=max_interval,
            timeout=timeout,
            organization_id=organization_id,
            project_id=project_id,
        )
        return await watch.wait(on_progress, raise_on_failure=raise_on_failure)

    def iter_results(
        self,
        batch_id: str,
        *,
        result: str | None = None,
        concurrency: int = 8,
        start_offset: int = 0,
        wait: bool = False,
        poll_interval: float = 2.0,
        timeout: float | None = None,
        only: Collection[str] | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> FileResultIterator:
        """Every file of a finished batch with its output, in the batch's result
        order (``FileResult``), fetched through each file's job reference.

        ``result``: parse_v2: ``markdown`` (default), ``text``, ``json`` (the
        ``items`` pages); extract_v2: ``json`` (``extract_result``).  At most
        ``concurrency`` job requests in flight, as in ``job_items.iter_results``
        (the same bounded, in-order fetcher).  A file without a result is that
        result's ``error`` (``no_job``: the batch made no job for it, with its
        ``error_message``; ``failed``; ``missing``; ``not_ready``).  A batch not
        finished (or ``COMPLETED`` with its result mappings not available yet)
        raises ``BatchNotFinishedError``, unless ``wait`` (then both are waited for
        as by ``wait(poll_interval=, timeout=)``, within one ``timeout``).  Resume with
        ``start_offset=result.next_offset``, or with a ``Checkpoint`` passed as
        ``checkpoint=`` (``ack`` each result when it is done).  ``only`` (source
        file ids): fetch the results of these files alone (to fetch again what
        failed).
        """
        proto.check_id("batch_id", batch_id)
        wanted = proto.check_only(only)
        check_int("concurrency", concurrency, minimum=1, maximum=MAX_CONCURRENCY)
        if isinstance(start_offset, bool) or not isinstance(start_offset, int) or start_offset < 0:
            raise ValueError(f"start_offset must be an int >= 0, got {start_offset!r}")
        if result is not None:
            kinds = {k for r in FILE_RESOLVERS.values() for k in r.kinds}
            if result not in kinds:
                raise ValueError(
                    f"result must be one of {', '.join(sorted(kinds))}; got {result!r}"
                )
        if wait:
            check_seconds("poll_interval", poll_interval, none_ok=False)
            check_seconds("timeout", timeout, none_ok=True, zero_ok=True)
        scope = self._api.scope(organization_id, project_id)
        cp = check_checkpoint(checkpoint)
        listing = f"batch_results/{batch_id}"
        if cp is not None:
            if start_offset:
                raise TypeError(
                    "checkpoint= says where the results start: pass it without start_offset"
                )
            start_offset = cp._resume(listing, "offset")[0]
        progress = ResultsProgress(next_offset=start_offset)

        def fetch() -> Awaitable[Batch]:
            return self.get(
                batch_id, expand="results", organization_id=organization_id, project_id=project_id
            )

        async def setup() -> FileSetup:
            if wait:
                # One deadline for the end and for the result mappings after it
                # (null "before result mappings are available"); while the batch
                # runs its results are null, so the polls stay small.
                watch = BatchResultsWatch(
                    batch_id,
                    fetch,
                    self._api.policy,
                    poll_interval=poll_interval,
                    max_interval=max(30.0, poll_interval),
                    timeout=timeout,
                )
                batch = await watch.wait()
            else:
                batch = await fetch()
            if not batch.status.terminal or (
                batch.results is None and batch.status == BatchStatus.COMPLETED
            ):
                raise BatchNotFinishedError(
                    f"batch {batch_id} is {results_state(batch)}: its results exist once it "
                    "ends and its result mappings are available (wait for them: "
                    "iter_results(..., wait=True) or the CLI's --wait)",
                    batch=batch,
                )
            jtype = str(batch.config.job.type)
            progress.job_type = jtype
            resolver = FILE_RESOLVERS.get(jtype)
            if resolver is None:
                raise UnsupportedJobTypeError(
                    f"batch {batch_id} runs {jtype!r} jobs: aiobatch does not know where "
                    f"their output lives (supported: {', '.join(map(str, FILE_RESOLVERS))})",
                    job_type=jtype,
                )
            kind = result or resolver.kinds[0]
            if kind not in resolver.kinds:
                raise ValueError(
                    f"result={kind!r} does not exist for {jtype!r} batches: "
                    f"use one of {', '.join(resolver.kinds)}"
                )
            files = list(batch.results or ())
            if cp is None:
                return FileSetup(resolver, kind, files)
            start = cp._resume(listing, "offset")[0]
            tap = cp._tap(listing, "offset", _file_key)
            return FileSetup(resolver, kind, files, start, tap)

        where = V2_BATCHES + "/{id}"
        return start_file_results(
            self._api, setup, scope, concurrency, progress, start_offset, wanted, path=where
        )

    async def cancel(
        self,
        batch_id: str,
        *,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> Batch:
        """Cancel a batch.  Retried like a GET: cancelling twice cannot duplicate work."""
        path = proto.api_path(V2_BATCHES, "/{batch_id}/cancel", batch_id=batch_id)
        params = self._api.scope(organization_id, project_id)
        return await self._api.call(Batch, "POST", path, params=params, idempotent=True)

    async def create(
        self,
        *,
        job_type: BatchJobType | str,
        configuration_id: str,
        source_directory_id: str,
        webhook_configurations: Sequence[WebhookConfiguration | Mapping[str, Any]] | None = None,
        webhook_configuration_ids: Sequence[str] | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
    ) -> Batch:
        """Create a batch: run ``job_type`` with a saved configuration on every file
        of a source directory.

        Not idempotent: retried only when the request provably never reached the
        server (connection refused), the server said 429, or it sent
        ``x-should-retry: true``.
        """
        kind = proto.check_status(job_type, BatchJobType, name="job_type")
        payload: dict[str, Any] = {
            "config": {
                "job": {
                    "type": kind,
                    "configuration_id": proto.check_id("configuration_id", configuration_id),
                }
            },
            "source_directory_id": proto.check_id("source_directory_id", source_directory_id),
        }
        if webhook_configurations is not None:
            if isinstance(webhook_configurations, Mapping | str | WebhookConfiguration) or not all(
                isinstance(w, Mapping | WebhookConfiguration) for w in webhook_configurations
            ):
                raise TypeError(
                    "webhook_configurations must be a sequence of WebhookConfiguration "
                    "(aiobatch.webhooks) or mappings"
                )
            payload["webhook_configurations"] = [
                w.to_json() if isinstance(w, WebhookConfiguration) else dict(w)
                for w in webhook_configurations
            ]
        if webhook_configuration_ids is not None:
            if isinstance(webhook_configuration_ids, str):
                raise TypeError("webhook_configuration_ids must be a sequence of id strings")
            payload["webhook_configuration_ids"] = [
                proto.check_id("webhook_configuration_ids[]", i) for i in webhook_configuration_ids
            ]
        params = self._api.scope(organization_id, project_id)
        return await self._api.call(
            Batch, "POST", BATCHES.path, params=params, body=encode(payload), idempotent=False
        )
