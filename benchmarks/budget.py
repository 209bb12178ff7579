"""``python -m benchmarks.budget``: the shared request budget, timed.

Twenty scans at once on one client (``max_concurrency=C``) against one scan of
all their items at concurrency C, with and without 429s injected
(``rate_limit=inflight>T``), the simulator in its own process with real latency;
and a small scan alone vs beside a huge one.  Every scan's ids are checked.
Prints one line per measurement (timings are reported, never asserted).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence

from aiobatch import BatchClient, RetryPolicy
from aiobatch.testing import Faults, SimJob, Simulator, SimulatorProcess

JOBS, ITEMS, PAGE, C, LATENCY_MS = 20, 10_000, 100, 32, 20


async def _scan(client: BatchClient, job_id: str) -> list[str]:
    return [i.item_id async for i in client.job_items.iter(job_id, page_size=PAGE, concurrency=C)]


async def _timed(base_url: str, job_ids: Sequence[str], **kw: object) -> tuple[float, int, int]:
    policy = RetryPolicy(max_retries=20)
    async with BatchClient(
        api_key="test-key",
        base_url=base_url,
        max_concurrency=C,
        retry=policy,
        **kw,  # type: ignore[arg-type]
    ) as client:
        t0 = time.perf_counter()
        got = await asyncio.gather(*(_scan(client, j) for j in job_ids))
        elapsed = time.perf_counter() - t0
        n = sum(len(g) for g in got)
        assert all(len(set(g)) == len(g) for g in got), "an item arrived twice"
        return elapsed, n, client.budget.rate_limited


async def _small_beside_huge() -> tuple[float, float]:
    """In-process simulator (two job sizes): a 1,000-item scan alone, then while
    a 1M-item scan on the same client keeps the budget full."""
    jobs = [SimJob(job_id="huge", total_items=1_000_000), SimJob(job_id="small", total_items=1_000)]
    async with (
        Simulator(jobs=jobs, faults=Faults(latency_ms=LATENCY_MS)) as sim,
        BatchClient(api_key=sim.api_key, base_url=sim.base_url, max_concurrency=C) as c,
    ):
        t0 = time.perf_counter()
        await _scan(c, "small")
        alone = time.perf_counter() - t0
        huge = asyncio.ensure_future(_scan(c, "huge"))
        await asyncio.sleep(0.5)
        t0 = time.perf_counter()
        await _scan(c, "small")
        beside = time.perf_counter() - t0
        huge.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await huge
    return alone, beside


def main() -> int:
    lat = ["--latency-ms", str(LATENCY_MS)]
    throttle = ["--rate-limit", "inflight>24,on=*", "--retry-after-ms", "50"]
    for label, extra in (("no 429s", []), ("429s above 24 in flight", throttle)):
        with (
            SimulatorProcess(items=ITEMS, jobs=JOBS, args=[*lat, *extra]) as many,
            SimulatorProcess(items=ITEMS * JOBS, jobs=1, args=[*lat, *extra]) as one,
        ):
            t20, n20, r20 = asyncio.run(_timed(many.base_url, many.job_ids))
            t1, n1, r1 = asyncio.run(_timed(one.base_url, one.job_ids))
        assert n20 == n1 == ITEMS * JOBS
        print(
            f"{label}: 20 scans x {ITEMS:,} items at once: {t20:.2f} s ({r20} x 429); "
            f"one scan of {n1:,} items: {t1:.2f} s ({r1} x 429); ratio {t20 / t1:.2f}"
        )
    alone, beside = asyncio.run(_small_beside_huge())
    print(f"a 1,000-item scan alone: {alone:.2f} s; beside a running huge scan: {beside:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
