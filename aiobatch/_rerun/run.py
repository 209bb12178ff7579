"""The re-run itself (behind ``client.jobs.retry_failed``): scan the items,
settle what an earlier run left uncertain, plan, and create each chunk after
recording that it is about to be sent (write-ahead).

A chunk is *uncertain* from the moment its create may leave until an answer
proves what happened: the job (created), or a refusal (a 4xx, or a request
that never left: not created).  Anything else (an interruption, a timeout, a
lost connection, any 5xx, a 2xx that could not be read) leaves it uncertain,
and the next run looks for its job (``resolve``) before submitting it again.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .. import _protocol as proto
from .._errors import (
    AiobatchError,
    APIConnectionError,
    APIStatusError,
    MissingJobConfigError,
    RetryFailedError,
)
from .._retry import RetryPolicy
from ..models import BatchItem
from .plan import RetryChunk, RetryPlan, plan_chunks, with_job
from .resolve import Finding, look_for_jobs
from .state import RetryStateStore, load_plan, one_at_a_time, save_plan

if TYPE_CHECKING:  # pragma: no cover
    from ..resources.job_items import JobItems
    from ..resources.jobs import Jobs

__all__ = ["CONFIG_PROBES", "Rerun", "maybe_created", "rerun"]

#: Items whose processing results are read to find the original configuration.
CONFIG_PROBES = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Rerun:
    """The checked arguments of one ``retry_failed`` call."""

    job_id: str
    statuses: tuple[str, ...]
    chunk_size: int
    dry_run: bool
    job_config: Mapping[str, Any] | None
    settle: float
    policy: RetryPolicy
    store: RetryStateStore | None
    on_created: Callable[[RetryChunk], Any] | None
    organization_id: str | None
    project_id: str | None


def maybe_created(exc: AiobatchError) -> bool:
    """Whether a failed create may still have made its job: unless the server
    refused it (4xx) or the request never left, it may have."""
    if isinstance(exc, APIConnectionError):
        return exc.request_sent
    if isinstance(exc, APIStatusError):
        return not 400 <= exc.status_code < 500
    return True  # e.g. a 2xx whose body could not be read: the job exists


async def rerun(
    jobs: Jobs, items: JobItems, r: Rerun, already: RetryPlan | Iterable[RetryChunk] | None
) -> RetryPlan:
    if r.store is None:
        return await _run(jobs, items, r, already)
    async with one_at_a_time(r.store):
        saved = await load_plan(r.store, r.job_id)
        return await _run(jobs, items, r, saved)


async def _run(
    jobs: Jobs, items: JobItems, r: Rerun, already: RetryPlan | Iterable[RetryChunk] | None
) -> RetryPlan:
    found = await _scan(items, r)
    chunks, earlier, doubtful = plan_chunks(found, r.chunk_size, already)
    plan = RetryPlan(
        r.job_id,
        r.statuses,
        r.chunk_size,
        r.dry_run,
        chunks=chunks,
        earlier=earlier,
        uncertain=doubtful,
        found=len(found),
    )
    if doubtful:
        await _settle(jobs, items, plan, r)
    if not plan.pending:
        if doubtful and not r.dry_run:
            await save_plan(r.store, plan)
        return plan
    if r.job_config is not None:
        config: Mapping[str, Any] = r.job_config
        plan.config_source = "job_config argument"
    else:
        config, plan.config_source = await _original_config(items, list(found.values()), r)
    if not r.dry_run:
        await _create_all(jobs, plan, config, r)
    return plan


async def _scan(items: JobItems, r: Rerun) -> dict[str, BatchItem]:
    found: dict[str, BatchItem] = {}
    for status in dict.fromkeys(r.statuses):
        # Closed on leaving the block: an error's traceback may keep this frame.
        async with items.iter(
            r.job_id, status=status, organization_id=r.organization_id, project_id=r.project_id
        ) as scan:
            async for item in scan:
                found.setdefault(item.item_id, item)
    return found


async def _settle(jobs: Jobs, items: JobItems, plan: RetryPlan, r: Rerun) -> None:
    """Resolve ``plan.uncertain`` by looking: a chunk whose job is found joins
    ``earlier``; one that no job holds once ``settle`` seconds have passed since
    its attempt is planned again (first); the rest stay uncertain."""
    policy = r.policy

    async def look(chunks: Sequence[RetryChunk]) -> list[Finding]:
        return await look_for_jobs(
            jobs,
            items,
            chunks,
            known=[r.job_id, *plan.job_ids],
            organization_id=r.organization_id,
            project_id=r.project_id,
        )

    def unsettled(chunk: RetryChunk) -> float:
        if chunk.attempted_at is None:
            return 0.0
        # At most ``settle``: a clock set back since the attempt does not stretch it.
        return max(0.0, min(r.settle, chunk.attempted_at + r.settle - policy.wall_clock()))

    doubtful = list(plan.uncertain)
    findings = dict(zip((c.key for c in doubtful), await look(doubtful), strict=True))
    early = [c for c in doubtful if findings[c.key].absent and unsettled(c) > 0]
    if early and not r.dry_run:
        # The job may not be listed yet: give the server its time, look again.
        await policy.sleep(max(unsettled(c) for c in early))
        findings.update(zip((c.key for c in early), await look(early), strict=True))
        early = []  # waited: what is still absent now was not made
    too_soon = {c.key for c in early}
    plan.uncertain, again = [], []
    for chunk in doubtful:
        finding = findings[chunk.key]
        if finding.job_id is not None:
            plan.earlier.append(with_job(chunk, finding.job_id, found=True))
            # Told now: a run interrupted later must not have kept it to itself.
            await _tell(r, plan.earlier[-1])
        elif finding.absent and chunk.key not in too_soon:
            again.append(replace(chunk, attempted_at=None, candidates=()))
        else:
            plan.uncertain.append(replace(chunk, candidates=finding.candidates))
    plan.chunks[:0] = sorted(again, key=lambda c: c.index)


async def _create_all(jobs: Jobs, plan: RetryPlan, config: Mapping[str, Any], r: Rerun) -> None:
    _check_sendable(plan)
    wall_clock = r.policy.wall_clock
    for n, chunk in enumerate(plan.chunks):
        if chunk.job_id is not None:
            continue
        # Write-ahead: once the request may leave, the chunk may have a job.
        chunk = plan.chunks[n] = replace(chunk, attempted_at=wall_clock())
        plan.uncertain.append(chunk)
        await save_plan(r.store, plan)
        try:
            job = await jobs.create(
                job_config=config,
                item_ids=chunk.item_ids,
                organization_id=r.organization_id,
                project_id=r.project_id,
            )
        except AiobatchError as exc:
            doubt = maybe_created(exc)
            if not doubt:
                plan.uncertain.remove(chunk)
                await save_plan(r.store, plan)
            raise _failed(plan, chunk, exc, doubt) from exc
        plan.uncertain.remove(chunk)
        chunk = plan.chunks[n] = with_job(chunk, job.id)
        await save_plan(r.store, plan)
        await _tell(r, chunk)


async def _tell(r: Rerun, chunk: RetryChunk) -> None:
    if r.on_created is not None:
        result = r.on_created(chunk)
        if inspect.isawaitable(result):
            await result


def _check_sendable(plan: RetryPlan) -> None:
    """Before any write-ahead: an id no create can carry would otherwise be
    recorded as maybe sent (and be waited for by every rerun)."""
    for chunk in plan.chunks:
        for item_id in chunk.item_ids:
            try:
                proto.check_body_id("item_ids[]", item_id)
            except ValueError as exc:
                raise AiobatchError(
                    f"job {plan.source_job_id} lists an item whose id cannot be sent in a "
                    f"create ({item_id!r}: {exc}); nothing was created"
                ) from None


def _failed(
    plan: RetryPlan, chunk: RetryChunk, exc: AiobatchError, doubt: bool
) -> RetryFailedError:
    made = (
        "it may have made its job (the next run looks for it before submitting it again)"
        if doubt
        else "it was not made"
    )
    return RetryFailedError(
        f"creating job {chunk.index} ({chunk.size} items) of the re-run of "
        f"{plan.source_job_id} failed: {exc}; {made}; {len(plan.created)} chunk(s) created, "
        f"{len(plan.not_submitted)} item(s) not submitted; pass .plan as already_created= "
        "(or call again with the same state=) to finish without duplicates",
        plan=plan,
        error=exc,
    )


def _askable(item_id: str) -> bool:
    """Whether an item id can be a path segment (``..`` cannot: never asked about)."""
    try:
        proto.check_id("item_id", item_id)
    except ValueError:
        return False
    return True


async def _original_config(
    items: JobItems, found: Sequence[BatchItem], r: Rerun
) -> tuple[Mapping[str, Any], str]:
    """The configuration the job's items were processed with: from the
    processing results of a few of the items found, else of a few completed
    items of the job (failed items often have no result)."""
    org, proj = r.organization_id, r.project_id

    async def probe(item_ids: Iterable[str]) -> tuple[Mapping[str, Any], str] | None:
        for item_id in itertools.islice(filter(_askable, item_ids), CONFIG_PROBES):
            results = await items.get_processing_results(
                item_id, organization_id=org, project_id=proj
            )
            for result in results.processing_results:
                if result.job_config:
                    return result.job_config, f"item {item_id}"
        return None

    got = await probe(i.item_id for i in found)
    if got is None:
        async with items.iter(
            r.job_id,
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
            f"no processing result of job {r.job_id} carries a job_config to re-run "
            "its items with: pass job_config=",
            job_id=r.job_id,
        )
    return got
