"""How many HTTP requests one scan sends, counted by the server.

A scan cannot know a job's end before it sees it: the least it can send is one
request per page plus the end probe (a partial last page ends it by itself).
Each job is scanned once against an in-process simulator (only counts matter
here, not time), with ``page_size=100, concurrency=16`` and with no options at
all; the server's request counter is reset before each scan, and the ids the
scan returned are checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiobatch import BatchClient
from aiobatch.testing import SimClock, SimJob, Simulator

from ._bodies import Tally, expected_id
from .clients import DEFAULTS

__all__ = ["RequestPlan", "pages_of", "run_requests"]


@dataclass(frozen=True, slots=True)
class RequestPlan:
    page_size: int = 100
    concurrency: int = 16
    #: Job sizes scanned with ``page_size`` and ``concurrency``: a partial page, one
    #: full page, 10 pages, 1,000 pages.
    items: tuple[int, ...] = (37, 100, 1_000, 100_000)
    #: Job sizes scanned with no options at all: 1, 10 and 1,000 default pages.
    default_items: tuple[int, ...] = (
        DEFAULTS.page_size,
        10 * DEFAULTS.page_size,
        1_000 * DEFAULTS.page_size,
    )
    #: Job sizes scanned with ``page_size`` and ``concurrency`` against a server that
    #: sends no ``total_size``: one page, 10 pages.
    no_total_items: tuple[int, ...] = (100, 1_000)
    timeout_s: float = 300.0


def pages_of(items: int, page_size: int) -> int:
    """Pages a job spans (an empty job still takes one request)."""
    return max(1, -(-items // page_size))


#: (page_size, concurrency) passed to the scan; None: no options at all.
Given = tuple[int, int] | None


async def _count(
    sim: Simulator, client: BatchClient, job: SimJob, given: Given, timeout_s: float
) -> dict[str, Any]:
    tally = Tally(expected_id(job.job_id), job.total_items)
    sim.reset_stats()
    pages = (
        client.job_items.iter_pages(job.job_id)
        if given is None
        else client.job_items.iter_pages(job.job_id, page_size=given[0], concurrency=given[1])
    )
    error = None
    try:
        async with asyncio.timeout(timeout_s):
            async for page in pages:
                items = page.items
                if items:
                    tally.page(items[0].item_id, items[-1].item_id, len(items))
    except Exception as exc:  # recorded, never hidden
        error = f"{type(exc).__name__}: {exc}"
    items_path = f"/{job.job_id}/items"
    out = tally.summary()
    if error is not None:
        out["ok"] = False
        out["problems"] = [error, *tally.verdict()]
    return {
        "requests": sim.stats.requests,
        "item_requests": sum(1 for r in sim.stats.log if r.path.endswith(items_path)),
        "client_requests": pages.progress.requests,
        **out,
    }


async def run_requests(
    plan: RequestPlan, *, log: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    """Every job of ``plan`` scanned once; one row each, JSON-ready."""
    given: Given = (plan.page_size, plan.concurrency)
    runs = [(n, given) for n in plan.items] + [(n, None) for n in plan.default_items]
    rows = await _rows(plan, runs, total_size=True, log=log)
    runs = [(n, given) for n in plan.no_total_items]
    rows += await _rows(plan, runs, total_size=False, log=log)
    return {**asdict(plan), "rows": rows}


async def _rows(
    plan: RequestPlan,
    runs: list[tuple[int, Given]],
    *,
    total_size: bool,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    jobs = [SimJob(job_id=f"bjb-bench-req-{k}-{n}", total_items=n) for k, (n, _) in enumerate(runs)]
    rows: list[dict[str, Any]] = []
    async with (
        Simulator(jobs, clock=SimClock.frozen_at(), total_size=total_size) as sim,
        BatchClient(api_key=sim.api_key or "", base_url=sim.base_url) as client,
    ):
        for job, (n, opts) in zip(jobs, runs, strict=True):
            page_size = DEFAULTS.page_size if opts is None else opts[0]
            row = {
                "options": (
                    f"none (page {page_size}, c={DEFAULTS.concurrency})"
                    if opts is None
                    else f"page_size={page_size}, concurrency={opts[1]}"
                )
                + ("" if total_size else ", no total_size"),
                "page_size": page_size,
                "items": n,
                "pages": pages_of(n, page_size),
                "total_size": total_size,
                **await _count(sim, client, job, opts, plan.timeout_s),
            }
            log(
                f"requests: {n:,} items, {row['options']}: {row['requests']} requests for "
                f"{row['pages']:,} pages ({'ok' if row['ok'] else row['problems']})"
            )
            rows.append(row)
    return rows
