"""A scan that knows its listing's length sends its whole first wave at once.

Without a hint the first page goes alone (its ``total_size`` plans the rest: a
one-page job costs one request plus the end probe); once the client has read
the job's counts (``jobs.get``, ``jobs.wait``, the status call of an ``"auto"``
status-filtered scan) the first wave is tiled from them.  Either way the scan
proves its own end and returns exactly the job's items.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiobatch import BatchClient, RetryPolicy
from aiobatch._paging.plan import ScanPlan
from aiobatch.testing import Faults, SimJob, Simulator
from aiobatch.testing._stats import RequestRecord

JOB, DONE = "bjb-wave", "bjb-wave-done"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    jobs = [
        SimJob(job_id=JOB, total_items=1_000, seed=3),
        SimJob(job_id=DONE, total_items=1_000, mix={"completed": 3, "failed": 1}),
        SimJob(job_id="bjb-small", total_items=37),
    ]
    # A little latency, so that requests sent together overlap at the server.
    async with Simulator(jobs=jobs, faults=Faults(latency_ms=80)) as s:
        yield s


def pages(sim: Simulator) -> list[RequestRecord]:
    return [r for r in sim.stats.log if r.path.endswith("/items")]


def first_wave(log: list[RequestRecord]) -> int:
    """How many page requests reached the server before the first one was answered."""
    first_end = log[0].end
    assert first_end is not None
    return sum(1 for r in log if r.start < first_end)


async def scan_ids(client: BatchClient, job_id: str, **kw: object) -> list[str]:
    return [i.item_id async for i in client.job_items.iter(job_id, **kw)]  # type: ignore[arg-type]


async def test_without_a_hint_the_first_page_goes_alone(
    sim: Simulator, policy: RetryPolicy
) -> None:
    async with BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy) as c:
        got = await scan_ids(c, JOB, page_size=100, concurrency=8)
    assert got == sim.item_ids(JOB)
    assert first_wave(pages(sim)) == 1


async def test_after_jobs_get_the_first_wave_goes_at_once(
    sim: Simulator, policy: RetryPolicy
) -> None:
    async with BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy) as c:
        await c.jobs.get(JOB)
        sim.reset_stats()
        it = c.job_items.iter_pages(JOB, page_size=100, concurrency=8)
        got = [i.item_id async for page in it for i in page.items]
        requests = it.progress.requests
    assert got == sim.item_ids(JOB)
    log = pages(sim)
    assert first_wave(log) == 8
    # Ten pages and the end probe at the total: nothing more than without the hint.
    assert sorted(int(r.query["offset"]) for r in log) == list(range(0, 1_001, 100))
    assert requests == len(log) == 11


async def test_an_auto_filtered_scan_plans_from_the_status_it_reads(
    sim: Simulator, policy: RetryPolicy
) -> None:
    async with BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy) as c:
        expected = sim.item_ids(DONE, "failed")
        got = await scan_ids(c, DONE, status="failed", page_size=50, concurrency=4)
    assert got == expected
    assert expected
    log = pages(sim)
    assert all(r.query.get("status") == "failed" for r in log)  # finished: server filter
    assert first_wave(log) == 4


async def test_a_small_job_costs_the_same_with_or_without_its_size(
    sim: Simulator, policy: RetryPolicy
) -> None:
    async with BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy) as c:
        cold = await scan_ids(c, "bjb-small", page_size=100, concurrency=16)
        cold_requests = len(pages(sim))
        await c.jobs.get("bjb-small")
        sim.reset_stats()
        warm = await scan_ids(c, "bjb-small", page_size=100, concurrency=16)
    assert cold == warm == sim.item_ids("bjb-small")
    assert cold_requests == len(pages(sim)) == 2  # the page and the probe behind it


@pytest.mark.parametrize(
    ("expected", "first"),
    [
        (None, [(0, 100)]),
        (1_000, [(o, 100) for o in range(0, 800, 100)]),  # the window (8) caps the wave
        # The last page full-size too (issue 20 case 4: a count a little low shows).
        (250, [(0, 100), (100, 100), (200, 100)]),
        (0, [(0, 100)]),
    ],
)
def test_the_planner_tiles_the_first_wave_up_to_the_expected_end(
    expected: int | None, first: list[tuple[int, int]]
) -> None:
    plan = ScanPlan(start_offset=0, page_size=100, window=8, expected_end=expected)
    assert [(r.offset, r.limit) for r in plan.next_requests()] == first


@pytest.mark.parametrize("concurrency", [1, 3, 8])
async def test_requests_on_the_wire_never_exceed_concurrency(
    sim: Simulator, policy: RetryPolicy, concurrency: int
) -> None:
    # The scan's slots bound what the server sees, whatever the pool and the
    # first wave do.
    async with BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy) as c:
        await c.jobs.get(JOB)
        sim.reset_stats()
        got = await scan_ids(c, JOB, page_size=50, concurrency=concurrency)
    assert got == sim.item_ids(JOB)
    assert sim.stats.peak_in_flight == concurrency
