"""Status-filtered scans of a running job: the documented drift behaviour."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from aiobatch import BatchClient, RetryPolicy
from aiobatch._paging import DriftError
from aiobatch.testing import SimClock, SimJob, Simulator

JOB = "bjb-live"


@pytest.fixture
async def live() -> AsyncIterator[Simulator]:
    job = SimJob(job_id=JOB, total_items=3_000, running=True, rate=10.0, concurrency=4)
    async with Simulator(jobs=[job], clock=SimClock.frozen_at(1_800_000_000.0)) as sim:
        sim.advance(60)  # ~600 items done, 4 processing, the rest pending
        yield sim


async def test_auto_mode_filters_on_the_client_while_running(
    live: Simulator, policy: RetryPolicy
) -> None:
    expected = live.item_ids(JOB, "pending")
    assert 2_000 < len(expected) < 3_000
    async with BatchClient(api_key=live.api_key, base_url=live.base_url, retry=policy) as c:
        it = c.job_items.iter(JOB, status="pending", page_size=200)
        got = [i.item_id async for i in it]
    assert it.progress.filter_mode == "client"
    assert got == expected
    assert it.progress.scanned == 3_000  # every item was read to filter locally
    assert all("status" not in r.query for r in live.stats.log)


async def test_server_filter_on_a_moving_job_raises_drift(
    live: Simulator, policy: RetryPolicy
) -> None:
    async with BatchClient(api_key=live.api_key, base_url=live.base_url, retry=policy) as c:
        pages = c.job_items.iter_pages(
            JOB, status="pending", page_size=200, concurrency=1, filter_mode="server"
        )
        seen: list[str] = []
        with pytest.raises(DriftError, match="total_size moved") as info:
            async for page in pages:
                seen.extend(i.item_id for i in page.items)
                live.advance(5)  # 50 items leave "pending" between two pages
    assert info.value.offset == len(seen)
    assert len(seen) == len(set(seen))


async def test_drift_can_be_accepted_with_a_warning(
    live: Simulator, policy: RetryPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aiobatch")
    async with BatchClient(api_key=live.api_key, base_url=live.base_url, retry=policy) as c:
        pages = c.job_items.iter_pages(
            JOB,
            status="pending",
            page_size=200,
            concurrency=1,
            filter_mode="server",
            on_drift="warn",
        )
        async for _page in pages:
            live.advance(5)
    assert pages.progress.drift
    assert any("drift" in r.getMessage() for r in caplog.records)


async def test_client_mode_on_a_moving_job_never_repeats_or_skips(
    live: Simulator, policy: RetryPolicy
) -> None:
    async with BatchClient(api_key=live.api_key, base_url=live.base_url, retry=policy) as c:
        pages = c.job_items.iter_pages(
            JOB, status="failed", page_size=250, concurrency=2, filter_mode="client"
        )
        failed: list[str] = []
        async for page in pages:
            failed.extend(i.item_id for i in page.items)
            live.advance(5)
    assert pages.progress.scanned == 3_000  # every item read exactly once
    assert len(failed) == len(set(failed))
    assert pages.progress.drift == []
    # Each item is judged by its status when its page was read; "failed" is
    # final, so everything reported is still failed at the end.
    assert set(failed) <= set(live.item_ids(JOB, "failed"))
