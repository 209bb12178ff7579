"""``client.job_items.iter_results`` end to end against the simulator: content,
order, per-item failures, systemic failures, faults on the result endpoints,
bounded fetching, cancellation and resume."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import msgspec
import pytest

from aiobatch import (
    AuthenticationError,
    BatchClient,
    Limits,
    NotFoundError,
    PageFetchError,
    RetryPolicy,
)
from aiobatch._results import ItemResult, UnsupportedJobTypeError
from aiobatch.testing import Faults, SimJob, Simulator, Trigger

PARSE = SimJob(job_id="bjb-parse", total_items=240, seed=3)
CLASSIFY = SimJob(job_id="bjb-classify", total_items=60, job_type="classify", seed=4)
EXTRACT = SimJob(job_id="bjb-extract", total_items=10, job_type="extract")


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LLAMA_CLOUD_API_KEY", "LLAMA_PARSE_API_KEY", "LLAMA_CLOUD_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(jobs=[PARSE, CLASSIFY, EXTRACT]) as s:
        yield s


def client(sim: Simulator, policy: RetryPolicy, **kw: Any) -> BatchClient:
    return BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy, **kw)


def check_against_truth(sim: Simulator, got: list[ItemResult], kind: str = "markdown") -> None:
    """Every result is what the server holds for that item, or a matching error."""
    for r in got:
        job_id = r.item.job_id
        if job_id is None:
            assert r.error is not None
            assert r.error.kind == "no_job"
            continue
        body = sim.parse_result(job_id, kind)
        if body is None:
            assert r.error is not None, r
            status = sim.parse_status(job_id)
            expected = {None: "missing", "ERROR": "failed", "PENDING": "not_ready"}[status]
            assert r.error.kind == expected
            continue
        assert r.error is None
        assert r.content is not None
        wire = msgspec.json.decode(body)
        if kind == "json":
            assert r.content.json() == wire["pages"]
        else:
            assert r.content.text == wire[kind]
        assert r.content.metadata == wire["job_metadata"]


async def test_every_completed_item_in_order_with_its_markdown(
    sim: Simulator, policy: RetryPolicy
) -> None:
    async with client(sim, policy) as c:
        results = c.job_items.iter_results("bjb-parse", concurrency=8)
        got = [r async for r in results]
    assert [r.item.item_id for r in got] == sim.item_ids("bjb-parse", "completed")
    check_against_truth(sim, got)
    kinds = {r.error.kind for r in got if r.error}
    assert kinds == {"failed", "missing"}  # the simulator's ERROR and 404 shares
    p = results.progress
    assert p.done
    assert p.state == "finished"
    assert (p.items, p.ok + p.failed) == (len(got), len(got))
    assert p.bytes == sum(r.nbytes for r in got) > 0
    assert p.job_type == "parse"
    assert p.kind == "markdown"
    assert got[-1].next_offset == p.next_offset == len(got)


@pytest.mark.parametrize("kind", ["text", "json"])
async def test_other_parse_kinds(sim: Simulator, policy: RetryPolicy, kind: str) -> None:
    async with client(sim, policy) as c:
        got = [r async for r in c.job_items.iter_results("bjb-parse", result=kind, max_items=60)]
    assert len(got) == 60
    check_against_truth(sim, got, kind)


async def test_all_statuses_report_items_without_a_job(sim: Simulator, policy: RetryPolicy) -> None:
    async with client(sim, policy) as c:
        got = [r async for r in c.job_items.iter_results("bjb-parse", status=None)]
    assert [r.item.item_id for r in got] == sim.item_ids("bjb-parse")
    check_against_truth(sim, got)
    assert {r.error.kind for r in got if r.error} >= {"no_job", "failed", "missing"}


async def test_classify_results(sim: Simulator, policy: RetryPolicy) -> None:
    async with client(sim, policy) as c:
        got = [r async for r in c.job_items.iter_results("bjb-classify")]
    assert [r.item.item_id for r in got] == sim.item_ids("bjb-classify", "completed")
    ok = [r for r in got if r.ok]
    assert ok
    assert {r.content.kind for r in ok if r.content} == {"classification"}
    for r in ok:
        assert r.content is not None
        rows = r.content.json()
        assert 1 <= len(rows) <= 3
        assert {row["classify_job_id"] for row in rows} == {r.item.job_id}
        assert all(row["result"]["type"] for row in rows)


async def test_a_job_type_without_resolver_is_named(sim: Simulator, policy: RetryPolicy) -> None:
    async with client(sim, policy) as c:
        with pytest.raises(UnsupportedJobTypeError, match="'extract'") as info:
            async for _ in c.job_items.iter_results("bjb-extract"):
                pass
    assert info.value.job_type == "extract"


async def test_arguments_checked_before_any_request(sim: Simulator, policy: RetryPolicy) -> None:
    async with client(sim, policy) as c:
        with pytest.raises(ValueError, match="result must be one of"):
            c.job_items.iter_results("bjb-parse", result="html")
        with pytest.raises(ValueError, match="concurrency"):
            c.job_items.iter_results("bjb-parse", concurrency=0)
        with pytest.raises(ValueError, match="job_id"):
            c.job_items.iter_results("")
        with pytest.raises(ValueError, match="classification"):
            async for _ in c.job_items.iter_results("bjb-classify", result="markdown"):
                pass
    assert sim.stats.requests <= 2  # the job's type (and filter mode) only


async def test_missing_job_raises_not_found(sim: Simulator, policy: RetryPolicy) -> None:
    async with client(sim, policy) as c:
        with pytest.raises(NotFoundError):
            async for _ in c.job_items.iter_results("bjb-nope"):
                pass


async def test_faults_on_result_endpoints_are_retried_and_429_slows_results(
    sim: Simulator, policy: RetryPolicy
) -> None:
    sim.faults = Faults(
        seed=5,
        rate_limit=Trigger(probability=0.1, on="parse_result"),
        retry_after="0",
        server_error=Trigger(every=7, on="parse_job"),
        error_retry_after="0",
        reset=Trigger(every=13, on="parse_result"),
        truncate=Trigger(every=17, on="parse_result"),
    )
    async with client(sim, policy) as c:
        results = c.job_items.iter_results("bjb-parse", concurrency=16)
        got = [r async for r in results]
    assert [r.item.item_id for r in got] == sim.item_ids("bjb-parse", "completed")
    check_against_truth(sim, got)  # nothing lost to a fault: every one was retried
    fired = set(sim.stats.faults())
    assert {"rate_limit", "truncate"} <= fired
    p = results.progress.fetches
    assert p.rate_limited > 0
    assert p.retries >= p.rate_limited
    assert results.progress.listing is not None
    assert results.progress.listing.rate_limited == 0  # the listing was not the one limited


async def test_one_item_over_the_body_cap_is_reported_on_that_item(policy: RetryPolicy) -> None:
    job = SimJob(job_id="bjb-big", total_items=40, large_result_every=8, large_result_bytes=600_000)
    async with Simulator(jobs=[job]) as sim:
        limits = Limits(max_body_bytes=256 * 1024)
        async with client(sim, policy, limits=limits) as c:
            got = [r async for r in c.job_items.iter_results("bjb-big")]
    big = [r for r in got if r.error and r.error.kind == "too_large"]
    assert big
    assert len(big) < len(got)
    assert all("cap" in r.error.message for r in big if r.error)
    assert sum(r.ok for r in got) > len(got) // 2


async def test_401_on_results_stops_the_stream(sim: Simulator, policy: RetryPolicy) -> None:
    sim.faults = Faults(
        server_error=Trigger(after=20, first=1000, on="parse_result"), error_status=401
    )
    async with client(sim, policy) as c:
        results = c.job_items.iter_results("bjb-parse", concurrency=4)
        got: list[ItemResult] = []
        with pytest.raises(AuthenticationError):
            async for r in results:
                got.append(r)
    assert 0 < len(got) <= 20
    assert results.progress.state == "failed"


async def test_listing_failing_for_good_raises_after_the_results_before_it(
    sim: Simulator, policy: RetryPolicy
) -> None:
    sim.faults = Faults(server_error=Trigger(offsets={100: 100}, on="items"))
    async with client(sim, policy) as c:
        got: list[ItemResult] = []
        with pytest.raises(PageFetchError) as info:
            async for r in c.job_items.iter_results("bjb-parse", page_size=50):
                got.append(r)
    assert len(got) == 100
    assert info.value.offset == 100


async def test_slow_consumer_bounds_the_result_requests(policy: RetryPolicy) -> None:
    job = SimJob(job_id="bjb-slow", total_items=400, result_missing_every=0, result_error_every=0)
    async with Simulator(jobs=[job]) as sim, client(sim, policy) as c:
        results = c.job_items.iter_results("bjb-slow", concurrency=4, page_size=100)
        async with results:
            async for _ in results:
                break
            await anyio.sleep(0.2)  # a consumer that stalls
            asked = len([r for r in sim.stats.log if "/result/" in r.path])
        assert asked <= 1 + 2 * 4 + 3  # received + the window + what is held
        assert results.progress.state == "stopped"


async def test_cancelling_the_consumer_cancels_in_flight_result_requests(
    policy: RetryPolicy,
) -> None:
    job = SimJob(job_id="bjb-late", total_items=100)
    # every result trickles at 10 bytes/s: the consumer gives up waiting
    faults = Faults(trickle=Trigger.always(on="parse_result"), trickle_bytes_per_sec=10)
    async with Simulator(jobs=[job], faults=faults) as sim, client(sim, policy) as c:
        results = c.job_items.iter_results("bjb-late", concurrency=8)
        with anyio.move_on_after(0.5) as waited:
            async for _ in results:
                pytest.fail("no result can arrive")
        assert waited.cancelled_caught
        assert results.progress.state == "stopped"
        assert sim.stats.peak_in_flight >= 8  # the window was in flight
        with anyio.fail_after(3):
            await results.aclose()
            while sim.stats.in_flight:  # the server saw every connection go
                await anyio.sleep(0.01)


async def test_resume_from_next_offset_gives_every_item_once(
    sim: Simulator, policy: RetryPolicy
) -> None:
    async with client(sim, policy) as c:
        first: list[ItemResult] = []
        results = c.job_items.iter_results("bjb-parse", concurrency=6, page_size=40)
        async with results:
            async for r in results:
                first.append(r)
                if len(first) == 77:
                    break
        mode = results.progress.filter_mode
        assert mode is not None
        assert mode != "auto"
        rest = c.job_items.iter_results(
            "bjb-parse", start_offset=first[-1].next_offset, filter_mode=mode, page_size=40
        )
        second = [r async for r in rest]
    ids = [r.item.item_id for r in first + second]
    assert ids == sim.item_ids("bjb-parse", "completed")


async def test_plain_async_for_break_leaves_nothing_behind(
    sim: Simulator, policy: RetryPolicy
) -> None:
    async with client(sim, policy) as c:
        async for r in c.job_items.iter_results("bjb-parse"):
            assert r.item.item_id
            break
    # leaving the client cancelled and awaited the stream's tasks; -W error
    # turns any "never awaited" / unclosed-resource warning into a failure
