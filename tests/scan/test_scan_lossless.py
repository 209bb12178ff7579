"""The lossless issue end to end: the real client against the simulator's
hostile-paging knobs.  Each scan ends with exactly the job's items, or a typed
error naming what the server did."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from aiobatch import (
    BatchClient,
    DriftError,
    InternalServerError,
    NotFoundError,
    PageFetchError,
    RetryPolicy,
    ScanOptions,
)
from aiobatch.testing import Faults, SimJob, Simulator, Trigger

BIG, MID, SMALL, FAILED = "bjb-big", "bjb-mid", "bjb-small", "bjb-failed"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    jobs = [
        SimJob(job_id=BIG, total_items=100_000, seed=5),
        SimJob(job_id=MID, total_items=20_000, seed=6),
        SimJob(job_id=SMALL, total_items=10, seed=7),
        SimJob(job_id=FAILED, total_items=60_000, seed=8, mix={"failed": 5, "completed": 1}),
    ]
    async with Simulator(jobs=jobs) as s:
        yield s


@pytest.fixture
def client_for(policy: RetryPolicy) -> Callable[..., BatchClient]:
    def build(s: Simulator, **kw: Any) -> BatchClient:
        return BatchClient(api_key=s.api_key, base_url=s.base_url, retry=policy, **kw)

    return build


async def scan_ids(client: BatchClient, job: str, **kw: Any) -> list[str]:
    return [item.item_id async for item in client.job_items.iter(job, **kw)]


def item_requests(s: Simulator, job: str) -> list[dict[str, str]]:
    return [r.query for r in s.stats.log if r.path.endswith(f"/{job}/items")]


# --- 1. transient empty pages ------------------------------------------------------------


@pytest.mark.parametrize("style", ["empty", "null", "missing"])
@pytest.mark.parametrize("at", [0, 5_000])
async def test_a_transient_empty_page_loses_nothing(
    sim: Simulator, client_for: Callable[..., BatchClient], style: str, at: int
) -> None:
    sim.faults = Faults(empty_page=Trigger(offsets={at: 1}), empty_style=style)  # type: ignore[arg-type]
    async with client_for(sim) as c:
        items = c.job_items.iter(MID, page_size=500, concurrency=16)
        got = [i.item_id async for i in items]
    assert got == sim.item_ids(MID)
    assert items.progress.state == "finished"


# --- 2. offsets clamped past the end --------------------------------------------------------


async def test_clamped_offsets_end_the_scan_once(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    sim.faults = Faults(clamp_offset=True)
    async with client_for(sim) as c:
        items = c.job_items.iter(BIG, page_size=500, concurrency=16)
        got = [i.item_id async for i in items]
    assert got == sim.item_ids(BIG)
    assert len(item_requests(sim, BIG)) <= 200 + 32 + 4  # no runaway past the end
    assert any("clamps offsets" in n for n in items.progress.notes)


# --- 3. a stale repeat of the previous page ---------------------------------------------------


async def test_a_stale_page_deep_in_the_scan_is_asked_again(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    sim.faults = Faults(stale_page=Trigger(offsets={50_000: 1}))
    async with client_for(sim) as c:
        assert await scan_ids(c, BIG, page_size=500, concurrency=16) == sim.item_ids(BIG)


# --- 4. an unstable order of tied items ---------------------------------------------------------


async def test_unstable_ties_raise_drift(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    sim.faults = Faults(unstable_ties=1_000)
    async with client_for(sim) as c:
        with pytest.raises(DriftError, match="order is not stable"):
            await scan_ids(c, MID, page_size=500, concurrency=8)


async def test_accepted_drift_is_live_in_progress_and_never_duplicates(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    sim.faults = Faults(unstable_ties=1_000)
    seen_while_running: list[str] = []
    async with client_for(sim) as c:
        pages = c.job_items.iter_pages(MID, page_size=500, concurrency=4, on_drift="warn")
        got: list[str] = []
        async for page in pages:
            got.extend(i.item_id for i in page.items)
            if pages.progress.drift and not seen_while_running:
                seen_while_running = list(pages.progress.drift)  # polled mid-scan
    assert seen_while_running, "drift must be visible while the scan runs"
    assert len(got) == len(set(got))
    assert set(got) <= set(sim.item_ids(MID))
    assert len(got) < 20_000
    assert any("fewer" in n for n in pages.progress.notes)


# --- 5. the resume position counts what the consumer received -----------------------------------


@pytest.mark.parametrize("stop_after", [10, 150])
async def test_resume_position_counts_items_received(
    sim: Simulator, client_for: Callable[..., BatchClient], stop_after: int
) -> None:
    expected = sim.item_ids(MID)
    async with client_for(sim) as c:
        items = c.job_items.iter(MID, page_size=100, concurrency=4)
        got: list[str] = []
        async with items:
            async for item in items:
                got.append(item.item_id)
                if len(got) == stop_after:
                    break
        assert (items.progress.items, items.progress.next_offset) == (stop_after, stop_after)
        assert items.progress.state == "stopped"
        assert not items.progress.done
        got += await scan_ids(c, MID, start_offset=items.progress.next_offset)
    assert got == expected


async def test_resume_position_with_client_side_filtering(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    expected = sim.item_ids(FAILED, status="completed")
    async with client_for(sim) as c:
        kw: dict[str, Any] = {"status": "completed", "filter_mode": "client", "page_size": 100}
        items = c.job_items.iter(FAILED, **kw)
        got: list[str] = []
        async with items:
            async for item in items:
                got.append(item.item_id)
                if len(got) == 7:
                    break
        resume = items.progress.next_offset
        assert 7 <= resume < 100  # just past the 7th kept item, not the page's end
        got += await scan_ids(c, FAILED, start_offset=resume, **kw)
    assert got == expected


# --- 6. concurrency has an upper bound, and workers start as needed ---------------------------


async def test_absurd_concurrency_is_rejected(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    with pytest.raises(ValueError, match="concurrency must be <= 1024"):
        ScanOptions(concurrency=100_000)
    async with client_for(sim) as c:
        with pytest.raises(ValueError, match="concurrency must be <= 1024"):
            c.job_items.iter(SMALL, concurrency=10**30)


async def test_a_small_job_with_high_concurrency_starts_few_workers(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    async with client_for(sim) as c:
        before = len(asyncio.all_tasks())
        items = c.job_items.iter(SMALL, concurrency=1024)
        got = []
        async for item in items:
            got.append(item.item_id)
            assert len(asyncio.all_tasks()) - before < 10
    assert got == sim.item_ids(SMALL)


# --- 7. a page size above the server's maximum ---------------------------------------------------


async def test_a_page_size_above_the_maximum_is_learned(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    async with client_for(sim) as c:
        items = c.job_items.iter(MID, page_size=5_000, concurrency=8)
        assert [i.item_id async for i in items] == sim.item_ids(MID)
    limits = [int(q["limit"]) for q in item_requests(sim, MID)]
    assert sum(1 for n in limits if n > 1_000) == 1  # the first page goes alone
    assert any("refused limit=5000" in n for n in items.progress.notes)


# --- 8. max_items never over-fetches ------------------------------------------------------------


async def test_max_items_asks_for_what_is_wanted(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    async with client_for(sim) as c:
        assert await scan_ids(c, BIG, max_items=50) == sim.item_ids(BIG)[:50]
        assert [q["limit"] for q in item_requests(sim, BIG)] == ["50"]
        got = await scan_ids(c, FAILED, status="failed", max_items=1_200, page_size=500)
    assert got == sim.item_ids(FAILED, status="failed")[:1_200]
    assert [(q["offset"], q["limit"]) for q in item_requests(sim, FAILED)] == [
        ("0", "500"),
        ("500", "500"),
        ("1000", "200"),
    ]


# --- errors: typed, and resume hints that work --------------------------------------------------


async def test_a_missing_job_raises_not_found_itself(
    sim: Simulator, client_for: Callable[..., BatchClient]
) -> None:
    async with client_for(sim) as c:
        with pytest.raises(NotFoundError):
            await scan_ids(c, "bjb-missing")
        with pytest.raises(NotFoundError):  # the job status lookup of auto mode, too
            await scan_ids(c, "bjb-missing", status="failed")


@pytest.mark.parametrize("kw", [{}, {"status": "completed", "filter_mode": "client"}])
async def test_the_resume_hint_of_a_page_error_is_a_call_that_works(
    sim: Simulator, client_for: Callable[..., BatchClient], kw: dict[str, Any]
) -> None:
    expected = sim.item_ids(MID, status=kw.get("status"))
    sim.faults = Faults(server_error=Trigger(offsets={3_000: 99}), error_status=500)
    async with client_for(sim) as c:
        got: list[str] = []
        with pytest.raises(PageFetchError) as info:
            async for item in c.job_items.iter(MID, page_size=500, **kw):
                got.append(item.item_id)
        assert isinstance(info.value.error, InternalServerError)
        hint = re.search(r"resume with (start_offset=\d+(?:, filter_mode='\w+')?)", str(info.value))
        assert hint is not None, str(info.value)
        sim.faults = Faults()
        call = eval(f"dict({hint.group(1)})")  # the hint, executed as written
        got += await scan_ids(c, MID, **{**kw, **call})
    assert got == expected
