"""Contracts a review found broken once: each is a promise of the README."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from aiobatch import BatchClient, ClientClosedError, PageFetchError, PaginationError, RetryPolicy
from aiobatch._paging.slots import Slots
from aiobatch.testing import Faults, SimJob, Simulator, Trigger

JOB = "bjb-contract"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(jobs=[SimJob(job_id=JOB, total_items=5_000, seed=9)]) as s:
        yield s


def client(sim: Simulator, policy: RetryPolicy) -> BatchClient:
    return BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy)


async def test_scan_block_errors_are_not_wrapped(sim: Simulator, policy: RetryPolicy) -> None:
    sim.faults = Faults(server_error=Trigger(offsets={1000: 99}), error_status=500)
    async with client(sim, policy) as c:
        with pytest.raises(PageFetchError):  # not an ExceptionGroup
            async with c.job_items.scan(JOB) as pages:
                async for _ in pages:
                    pass
        sim.faults = Faults()
        with pytest.raises(KeyError):  # the block's own error, as it is
            async with c.job_items.scan(JOB) as pages:
                async for _ in pages:
                    raise KeyError("mine")


async def test_closing_the_client_mid_scan_is_an_error_not_an_end(
    sim: Simulator, policy: RetryPolicy
) -> None:
    sim.faults = Faults(latency_ms=5)
    c = client(sim, policy)
    async with c:
        pages = c.job_items.iter_pages(JOB, page_size=100, concurrency=2)
        got = 0
        with pytest.raises(PaginationError, match="stopped before its end") as info:
            async for page in pages:
                got += len(page.items)
                if got == 500:
                    await c.aclose()
        assert info.value.offset == got


async def test_max_items_counts_returned_items_in_client_mode(
    sim: Simulator, policy: RetryPolicy
) -> None:
    async with client(sim, policy) as c:
        for mode in ("server", "client"):
            pages = c.job_items.iter_pages(
                JOB, status="failed", max_items=10, page_size=100, filter_mode=mode
            )
            got = [i.item_id async for p in pages for i in p.items]
            assert got == sim.item_ids(JOB, "failed")[:10]
        # the resume point is right after the tenth failed item
        nxt = pages.progress.next_offset
        all_ids = sim.item_ids(JOB)
        assert all_ids[nxt - 1] == got[-1]


async def test_resuming_a_filtered_scan_needs_an_explicit_mode(
    sim: Simulator, policy: RetryPolicy
) -> None:
    async with client(sim, policy) as c:
        with pytest.raises(ValueError, match="filter_mode"):
            c.job_items.iter(JOB, status="failed", start_offset=100)
        c.job_items.iter(JOB, status="failed", start_offset=100, filter_mode="client")
    assert sim.stats.requests == 0


async def test_a_closed_borrowed_session_is_a_clear_error(
    sim: Simulator, policy: RetryPolicy
) -> None:
    session = aiohttp.ClientSession()
    await session.close()
    async with BatchClient(
        api_key=sim.api_key, base_url=sim.base_url, retry=policy, session=session
    ) as c:
        with pytest.raises(ClientClosedError, match="session"):
            await c.jobs.get(JOB)
        with pytest.raises(ClientClosedError, match="session"):  # nothing received: as itself
            [i async for i in c.job_items.iter(JOB)]


async def test_slots_survive_a_cancelled_waiter() -> None:
    slots = Slots(1)
    await slots.acquire()
    waiter = asyncio.ensure_future(slots.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    slots.release()  # hands the slot to a waiter that is being cancelled
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert slots.active == 0
    await slots.acquire()  # still usable
    assert slots.active == 1
