"""The pagination engine end to end: the real client against the simulator.

Every scan asserts the exact item ids, in order, once each.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from aiobatch import (
    BatchClient,
    BatchItem,
    InternalServerError,
    ItemStatus,
    PageFetchError,
    PaginationError,
    RetryPolicy,
)
from aiobatch.testing import Faults, SimJob, Simulator, Trigger

JOB = "bjb-scan"


async def ids(it: AsyncIterator[BatchItem]) -> list[str]:
    return [item.item_id async for item in it]


def assert_exact(got: list[str], expected: list[str]) -> None:
    assert len(got) == len(set(got)), "duplicates"
    assert got == expected


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    jobs = [
        SimJob(job_id=JOB, total_items=2_345, seed=1),
        SimJob(job_id="bjb-empty", total_items=0),
        SimJob(job_id="bjb-one", total_items=1),
        SimJob(job_id="bjb-even", total_items=1_000),
        SimJob(job_id="bjb-done", total_items=900, mix={"completed": 8, "failed": 1, "skipped": 1}),
    ]
    async with Simulator(jobs=jobs) as s:
        yield s


@pytest.fixture
def client_for(policy: RetryPolicy) -> Callable[[Simulator], BatchClient]:
    def build(s: Simulator, **kw: Any) -> BatchClient:
        return BatchClient(api_key=s.api_key, base_url=s.base_url, retry=policy, **kw)

    return build


@pytest.mark.parametrize("job", ["bjb-empty", "bjb-one", "bjb-even", JOB])
@pytest.mark.parametrize(("page_size", "concurrency"), [(1000, 1), (100, 4), (250, 16), (7, 3)])
async def test_every_item_in_order(
    sim: Simulator,
    client_for: Callable[[Simulator], BatchClient],
    job: str,
    page_size: int,
    concurrency: int,
) -> None:
    async with client_for(sim) as client:
        got = await ids(client.job_items.iter(job, page_size=page_size, concurrency=concurrency))
    assert_exact(got, sim.item_ids(job))
    assert sim.stats.peak_in_flight <= concurrency


@pytest.mark.parametrize("job", [JOB, "bjb-done"])
@pytest.mark.parametrize("status", [s.value for s in ItemStatus])
@pytest.mark.parametrize("mode", ["auto", "server", "client"])
async def test_every_status_filter(
    sim: Simulator,
    client_for: Callable[[Simulator], BatchClient],
    job: str,
    status: str,
    mode: Any,
) -> None:
    async with client_for(sim) as client:
        it = client.job_items.iter(job, status=status, page_size=100, filter_mode=mode)
        got = await ids(it)
    assert_exact(got, sim.item_ids(job, status))
    # "auto" filters on the server only once the job is finished.
    finished = sim.job(job).job.status.terminal
    assert it.progress.filter_mode == (
        mode if mode != "auto" else "server" if finished else "client"
    )


async def test_a_hundred_thousand_items(client_for: Callable[[Simulator], BatchClient]) -> None:
    async with Simulator(jobs=[SimJob(job_id="big", total_items=100_000, seed=3)]) as s:
        async with client_for(s) as client:
            pages = client.job_items.iter_pages("big", page_size=1000, concurrency=16)
            offsets: list[tuple[int, int]] = []
            got: list[str] = []
            async for page in pages:
                offsets.append((page.offset, page.next_offset))
                got.extend(i.item_id for i in page.items)
        assert_exact(got, s.item_ids("big"))
        assert offsets == [(o, o + 1000) for o in range(0, 100_000, 1000)]
        assert s.stats.peak_in_flight <= 16
        assert pages.progress.items == 100_000
        assert pages.progress.done


@pytest.mark.parametrize(
    "faults",
    [
        Faults(cap_limit=200),
        Faults(cap_limit=33, omit_total_size=True),
        Faults(omit_total_size=True),
        Faults(total_size_factor=3.0),
        Faults(total_size_factor=0.25),
        Faults(total_size_delta=-2_000),
        Faults(next_page_token=True, extra_fields=True),
    ],
    ids=["cap", "cap-no-total", "no-total", "total-high", "total-low", "total-tiny", "extras"],
)
async def test_server_oddities(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient], faults: Faults
) -> None:
    sim.faults = faults
    async with client_for(sim) as client:
        items = client.job_items.iter(JOB, page_size=500, concurrency=6, on_drift="warn")
        got = await ids(items)
    assert_exact(got, sim.item_ids(JOB))
    assert sim.stats.peak_in_flight <= 6
    # Ending short of a total too high is said (issue 20 case 3), never silent.
    short = faults.total_size_factor > 1
    assert any("short of its total_size" in d for d in items.progress.drift) is short


async def test_silent_cap_adapts_page_size(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    sim.faults = Faults(cap_limit=200)
    async with client_for(sim) as client:
        await ids(client.job_items.iter(JOB, page_size=1000, concurrency=4))
    limits = [int(r.query["limit"]) for r in sim.stats.log if "limit" in r.query]
    assert limits[-2] == 200  # learned the cap (the last request asks at the total)
    # waste is bounded: a handful of oversized asks before the cap is learned
    assert len(limits) <= 2_345 // 200 + 1 + 8


async def test_offset_ignored_is_raised(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    sim.faults = Faults(ignore_offset=True)
    async with client_for(sim) as client:
        with pytest.raises(PaginationError, match="ignores `offset`"):
            await ids(client.job_items.iter(JOB, page_size=100, concurrency=4))
    assert sim.stats.requests < 20


@pytest.mark.parametrize(
    "faults",
    [
        Faults(rate_limit=Trigger(every=3), retry_after="0"),
        Faults(server_error=Trigger(probability=0.3), seed=5),
        Faults(reset=Trigger(every=4)),
        Faults(reset_mid_body=Trigger(every=5)),
        Faults(truncate=Trigger(every=3)),
        Faults(chunked_cut=Trigger(every=4)),
        Faults(unframed_cut=Trigger(every=4)),
    ],
    ids=[
        "429",
        "5xx",
        "reset",
        "reset-mid-body",
        "truncated",
        "chunked-cut",
        "unframed-cut",
    ],
)
async def test_transient_faults_mid_scan(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient], faults: Faults
) -> None:
    sim.faults = faults
    async with client_for(sim) as client:
        got = await ids(client.job_items.iter(JOB, page_size=100, concurrency=8))
    assert_exact(got, sim.item_ids(JOB))
    assert sim.stats.faults(), "the fault never fired: the test proves nothing"
    assert sim.stats.peak_in_flight <= 8


async def test_failed_page_names_the_resume_offset(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    sim.faults = Faults(server_error=Trigger(offsets={1200: 99}), error_status=500)
    got: list[str] = []
    async with client_for(sim) as client:
        with pytest.raises(PageFetchError) as info:
            async for item in client.job_items.iter(JOB, page_size=100, concurrency=4):
                got.append(item.item_id)
        err = info.value
        assert isinstance(err.error, InternalServerError)
        assert err.offset == len(got) <= 1200  # everything before the offset was delivered
        attempts = [r for r in sim.stats.log if r.query.get("offset") == "1200"]
        assert len(attempts) == client.config.retry.max_retries + 1
        sim.faults = Faults()
        got += await ids(client.job_items.iter(JOB, page_size=100, start_offset=err.offset))
    assert_exact(got, sim.item_ids(JOB))


async def test_html_page_fails_the_scan_with_a_decode_error(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    from aiobatch import ResponseDecodeError

    sim.faults = Faults(html=Trigger(offsets={500: 1}))
    async with client_for(sim) as client:
        with pytest.raises(PageFetchError) as info:
            await ids(client.job_items.iter(JOB, page_size=100, concurrency=4))
    assert isinstance(info.value.error, ResponseDecodeError)
    assert info.value.error.status == 200
    assert "<!DOCTYPE html>" in info.value.error.snippet
    assert info.value.offset <= 500


async def test_break_stops_requests_and_leaves_client_usable(
    client_for: Callable[[Simulator], BatchClient],
) -> None:
    async with Simulator(jobs=[SimJob(job_id="slow", total_items=50_000)]) as s:
        s.faults = Faults(latency_ms=20)
        async with client_for(s) as client:
            seen = 0
            async for _item in client.job_items.iter("slow", page_size=10, concurrency=8):
                seen += 1
                if seen == 10:
                    break
            gc.collect()
            # A request already written to the socket may still land: let it.
            await anyio.sleep(0.2)
            with anyio.fail_after(5):
                while s.stats.in_flight:
                    await anyio.sleep(0.01)
            after = s.stats.requests
            await anyio.sleep(0.3)
            assert s.stats.requests == after, "requests kept coming after break"
            assert after <= 2 * 8 + 2  # no more than the window was ever asked for
            # The client still works.
            s.faults = Faults()
            page = await client.job_items.list("slow", limit=5)
            assert len(page.items) == 5


async def test_cancelling_the_consumer(client_for: Callable[[Simulator], BatchClient]) -> None:
    async with Simulator(jobs=[SimJob(job_id="slow", total_items=50_000)]) as s:
        s.faults = Faults(latency_ms=50)
        async with client_for(s) as client:
            it = client.job_items.iter("slow", page_size=10, concurrency=4)
            with anyio.move_on_after(0.2) as scope:
                async for _ in it:
                    pass
            assert scope.cancelled_caught
            with pytest.raises(PaginationError, match="cancelled"):
                await it.__anext__()  # never a silent early end
            with anyio.fail_after(5):
                while s.stats.in_flight:
                    await anyio.sleep(0.01)
            assert len(await ids(client.job_items.iter("slow", max_items=30))) == 30


async def test_max_items_start_offset_and_progress(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    async with client_for(sim) as client:
        it = client.job_items.iter(JOB, page_size=100, start_offset=150, max_items=321)
        got = await ids(it)
        assert_exact(got, sim.item_ids(JOB)[150:471])
        assert it.progress.next_offset == 471
        assert it.progress.total == 2_345


async def test_scan_context_manager_form(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    async with client_for(sim) as client:
        got: list[str] = []
        async with client.job_items.scan(JOB, status="failed") as pages:
            async for page in pages:
                got.extend(i.item_id for i in page.items)
        assert_exact(got, sim.item_ids(JOB, "failed"))
        async with client.job_items.scan(JOB) as pages:
            async for _page in pages:
                break  # leaving the block stops it; nothing leaks
        assert sim.stats.in_flight == 0


async def test_jobs_iter_uses_the_same_engine(
    client_for: Callable[[Simulator], BatchClient],
) -> None:
    jobs = [SimJob(job_id=f"bjb-{i:03d}", total_items=3) for i in range(57)]
    async with Simulator(jobs=jobs) as s, client_for(s) as client:
        got = [j.id async for j in client.jobs.iter(page_size=10, concurrency=3)]
        assert got == [j.job_id for j in jobs]


async def test_unknown_job_is_one_clear_error(
    sim: Simulator, client_for: Callable[[Simulator], BatchClient]
) -> None:
    from aiobatch import NotFoundError

    async with client_for(sim) as client:
        for status in (None, "failed"):  # with a status, auto mode asks the job first
            # Nothing delivered yet: the typed error itself, `except NotFoundError` works.
            with pytest.raises(NotFoundError, match="bjb-nope not found"):
                await ids(client.job_items.iter("bjb-nope", status=status))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"page_size": 0}, "page_size"),
        ({"concurrency": 0}, "concurrency"),
        ({"start_offset": -1}, "start_offset"),
        ({"max_items": -5}, "max_items"),
        ({"filter_mode": "fast"}, "filter_mode"),
        ({"on_drift": "ignore"}, "on_drift"),
        ({"status": "done"}, "status"),
    ],
)
async def test_bad_scan_arguments(
    sim: Simulator,
    client_for: Callable[[Simulator], BatchClient],
    kwargs: dict[str, Any],
    message: str,
) -> None:
    async with client_for(sim) as client:
        with pytest.raises(ValueError, match=message):
            client.job_items.iter(JOB, **kwargs)
    assert sim.stats.requests == 0
