"""Settle uncertain chunks by looking: did a create we never heard back from
make its job?

The jobs listing is read, and a job can be the chunk's only if it names items
(no directory), holds as many items as the chunk (or 0, not counted yet) and
was created at most ``SKEW`` seconds before the attempt (clocks disagree).
Such a job is the chunk's when its items are exactly the chunk's items (one
read of at most one item more than the largest chunk).  The answer for each
chunk: its job; none (no such job holds any of its items: submit it again);
or ambiguous (jobs that might be it, and could not be told apart).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .. import _protocol as proto
from .._errors import NotFoundError, PageFetchError, PermissionDeniedError
from ..models import BatchJob
from .plan import RetryChunk

if TYPE_CHECKING:  # pragma: no cover
    from ..resources.job_items import JobItems
    from ..resources.jobs import Jobs

__all__ = ["SKEW", "Finding", "look_for_jobs"]

#: Seconds a server's clock may be behind ours when comparing ``created_at``.
SKEW = 300.0
#: The listing's largest page (jobs and items).
PAGE = 1000


@dataclass(frozen=True, slots=True)
class Finding:
    """What the listing says about one uncertain chunk."""

    #: The job whose items are exactly the chunk's (the oldest, if several).
    job_id: str | None = None
    #: Jobs that may be the chunk's, when no job is exactly it.
    candidates: tuple[str, ...] = ()

    @property
    def absent(self) -> bool:
        return self.job_id is None and not self.candidates


def _epoch(when: datetime | None) -> float | None:
    return None if when is None else when.timestamp()


def _may_hold(job: BatchJob, chunk: RetryChunk) -> bool:
    """Cheap checks first: the re-run's jobs name items, never a directory, and
    hold exactly the chunk (0 while the server has not counted them yet)."""
    if job.directory_id is not None or job.total_items not in (0, chunk.size):
        return False
    created = _epoch(job.created_at)
    return created is None or chunk.attempted_at is None or created >= chunk.attempted_at - SKEW


async def _recent_jobs(
    jobs: Jobs,
    chunks: Sequence[RetryChunk],
    known: frozenset[str],
    org: str | None,
    proj: str | None,
) -> list[BatchJob]:
    """Jobs that may hold one of ``chunks``, oldest first.  The listing's order
    is not published, so all of it is read (a page of ``PAGE`` jobs at a time):
    stopping at the first old job would miss ours in any order but newest-first."""
    found: list[BatchJob] = []
    async with jobs.iter(page_size=PAGE, organization_id=org, project_id=proj) as listing:
        async for job in listing:
            if job.id not in known and any(_may_hold(job, c) for c in chunks):
                found.append(job)
    found.sort(key=lambda j: _epoch(j.created_at) or 0.0)
    return found


async def _items_of(
    items: JobItems, job: BatchJob, limit: int, org: str | None, proj: str | None
) -> frozenset[str] | None:
    """Up to ``limit`` item ids of ``job``; ``None`` when they cannot be read."""
    try:
        proto.check_id("job_id", job.id)  # a job id that is no path segment: cannot look
    except ValueError:
        return None
    try:
        async with items.iter(
            job.id,
            max_items=limit,
            page_size=min(limit, PAGE),
            organization_id=org,
            project_id=proj,
        ) as scan:
            return frozenset([i.item_id async for i in scan])
    except (NotFoundError, PermissionDeniedError, PageFetchError) as exc:
        cause = exc.error if isinstance(exc, PageFetchError) else exc
        if isinstance(cause, NotFoundError | PermissionDeniedError):
            return None  # listed, yet its items cannot be read: it might be ours
        raise


async def look_for_jobs(
    jobs: Jobs,
    items: JobItems,
    chunks: Sequence[RetryChunk],
    *,
    known: Iterable[str],
    organization_id: str | None,
    project_id: str | None,
) -> list[Finding]:
    """A ``Finding`` per chunk, in order; ``known`` jobs (the source job, the
    chunks' jobs already found) are not looked at."""
    org, proj = organization_id, project_id
    if not chunks:
        return []
    recent = await _recent_jobs(jobs, chunks, frozenset(known), org, proj)
    read: dict[str, frozenset[str] | None] = {}
    limit = max(c.size for c in chunks) + 1
    findings = []
    for chunk in chunks:
        wanted = frozenset(chunk.item_ids)
        exact: list[str] = []
        maybe: list[str] = []
        for job in recent:
            if not _may_hold(job, chunk):
                continue
            if job.id not in read:
                read[job.id] = await _items_of(items, job, limit, org, proj)
            ids = read[job.id]
            if ids == wanted:
                exact.append(job.id)
            elif ids is None or not ids or ids & wanted:
                maybe.append(job.id)  # unreadable, not counted yet, or partly ours
        findings.append(Finding(exact[0], ()) if exact else Finding(None, tuple(maybe)))
    return findings
