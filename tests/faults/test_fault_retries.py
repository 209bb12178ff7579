"""Rate limits and retries (cases 1-7): the real client against the simulator.

Every wait is virtual (``VirtualClock``): the server records the client's
virtual time on arrival, so "not retried before 2 s" is exact, and no test
sleeps for real backoff.
"""

from __future__ import annotations

import random
import time
from email.utils import formatdate

import anyio
import pytest
from aiohttp import web

from aiobatch import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    BatchClient,
    InternalServerError,
    NotFoundError,
    PageFetchError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from aiobatch.testing import Faults, SimJob, Trigger

from .fault_support import (
    Handler,
    Hold,
    Recorder,
    VirtualClock,
    assert_exact,
    assert_no_secret,
    client,
    ids,
    simulator,
    wait_until,
)

JOB = "bjb-faults-retry"


def job(n: int = 3000, seed: int = 1) -> SimJob:
    return SimJob(job_id=JOB, total_items=n, seed=seed)


# --- 1. Retry-After: 2 on one page mid-scan -------------------------------------------


async def test_case01_retry_after_2_mid_scan_waits_then_completes() -> None:
    clock = VirtualClock()
    rec = Recorder(clock)
    faults = Faults(rate_limit=Trigger(offsets={1500: 1}), retry_after="2")
    async with (
        simulator([job()], faults=faults, middlewares=[rec.middleware]) as sim,
        client(sim.base_url, clock) as c,
    ):
        got = [i.item_id async for i in c.job_items.iter(JOB, page_size=250, concurrency=4)]
        assert_exact(got, sim.item_ids(JOB))
    limited, retried = rec.at(1500)
    assert (limited.status, retried.status) == (429, 200)
    # Not a moment before the server's 2 s (virtual time, measured server-side).
    assert retried.vtime - limited.vtime >= 2.0
    assert 2.0 in clock.sleeps
    # The pause is scan-wide: no request reached the server inside the window.
    inside = [s for s in rec.items() if limited.vtime < s.vtime < limited.vtime + 2.0]
    assert inside == []


# --- 2. Retry-After forms: HTTP-date, retry-after-ms, junk ------------------------------


async def _one_429_then_ok(faults: Faults, clock: VirtualClock) -> int:
    """One 429 on a ``list``; return how many requests the server saw."""
    rec = Recorder(clock)
    async with (
        simulator([job(50)], faults=faults, middlewares=[rec.middleware]) as sim,
        client(sim.base_url, clock) as c,
    ):
        page = await c.job_items.list(JOB, limit=10)
        assert ids(page.items) == sim.item_ids(JOB)[:10]
    assert [s.status for s in rec.items()] == [429, 200]
    return len(rec.items())


async def test_case02_retry_after_http_date() -> None:
    clock = VirtualClock()
    when = formatdate(clock.wall() + 30, usegmt=True)  # "Sat, 11 Oct 2025 ... GMT"
    await _one_429_then_ok(Faults(rate_limit=Trigger(first=1), retry_after=when), clock)
    assert clock.sleeps == [30.0]


async def test_case02_retry_after_http_date_in_the_past_means_now() -> None:
    clock = VirtualClock()
    when = formatdate(clock.wall() - 300, usegmt=True)
    await _one_429_then_ok(Faults(rate_limit=Trigger(first=1), retry_after=when), clock)
    assert clock.sleeps == [0.0]


async def test_case02_retry_after_ms_wins_over_retry_after() -> None:
    clock = VirtualClock()
    faults = Faults(rate_limit=Trigger(first=1), retry_after="30", retry_after_ms="1500")
    await _one_429_then_ok(faults, clock)
    assert clock.sleeps == [1.5]


@pytest.mark.parametrize(
    "value",
    ["soon", "-1", "NaN", "nan", "inf", "-inf", "Infinity", "1e400", "", "0x10", "Mon, 99 Foo"],
)
async def test_case02_junk_retry_after_falls_back_to_jittered_backoff(value: str) -> None:
    clock = VirtualClock()
    policy = clock.policy(random=lambda: 0.5)  # jitter takes 0.25 * 0.5 off
    faults = Faults(rate_limit=Trigger(first=1), retry_after=value)
    rec = Recorder(clock)
    async with (
        simulator([job(50)], faults=faults, middlewares=[rec.middleware]) as sim,
        client(sim.base_url, clock, retry=policy) as c,
    ):
        page = await c.job_items.list(JOB, limit=5)
    assert len(page.items) == 5
    assert clock.sleeps == [0.5 * (1 - 0.25 * 0.5)]
    assert [s.status for s in rec.items()] == [429, 200]


async def test_case02_junk_retry_after_ms_falls_back_to_retry_after() -> None:
    clock = VirtualClock()
    faults = Faults(rate_limit=Trigger(first=1), retry_after="3", retry_after_ms="NaN")
    await _one_429_then_ok(faults, clock)
    assert clock.sleeps == [3.0]


# --- 3. Retry-After: 3600 fails fast ----------------------------------------------------


async def test_case03_retry_after_an_hour_fails_fast_on_a_single_call() -> None:
    clock = VirtualClock()
    rec = Recorder(clock)
    faults = Faults(rate_limit=Trigger.always(), retry_after="3600")
    async with (
        simulator([job(50)], faults=faults, middlewares=[rec.middleware]) as sim,
        client(sim.base_url, clock) as c,
    ):
        with pytest.raises(RateLimitError) as info:
            await c.job_items.list(JOB)
    assert info.value.retry_after == 3600
    assert info.value.status_code == 429
    assert "retry after 3600s" in str(info.value)
    assert clock.sleeps == []
    assert len(rec.items()) == 1
    assert_no_secret(info.value)


async def test_case03_retry_after_an_hour_with_the_real_default_policy() -> None:
    """No injected sleep at all: the default policy must refuse to sleep an hour."""
    faults = Faults(rate_limit=Trigger(offsets={500: 1}), retry_after="3600")
    async with simulator([job(2000)], faults=faults) as sim:
        started = time.monotonic()
        with anyio.fail_after(10):  # generous: "does not hang"
            async with BatchClient(sim.api_key, base_url=sim.base_url) as c:
                got: list[str] = []
                with pytest.raises(PageFetchError) as info:
                    async for item in c.job_items.iter(JOB, page_size=250, concurrency=1):
                        got.append(item.item_id)
        assert time.monotonic() - started < 10
        assert_exact(got, sim.item_ids(JOB)[:500])
    err = info.value
    assert err.offset == 500
    assert isinstance(err.error, RateLimitError)
    assert err.error.retry_after == 3600
    assert_no_secret(err)


# --- 4. 503 x3 then 200: growing, capped waits -------------------------------------------


@pytest.mark.parametrize(
    ("max_delay", "expected"), [(8.0, [0.5, 1.0, 2.0]), (0.75, [0.5, 0.75, 0.75])]
)
async def test_case04_503_three_times_then_200(max_delay: float, expected: list[float]) -> None:
    clock = VirtualClock()
    rec = Recorder(clock)
    faults = Faults(server_error=Trigger(first=3), error_status=503)
    policy = clock.policy(max_delay=max_delay)
    async with (
        simulator([job(50)], faults=faults, middlewares=[rec.middleware]) as sim,
        client(sim.base_url, clock, retry=policy) as c,
    ):
        page = await c.job_items.list(JOB, limit=7)
    assert ids(page.items) == sim.item_ids(JOB)[:7]
    assert [s.status for s in rec.items()] == [503, 503, 503, 200]
    assert clock.sleeps == expected


async def test_case04_jittered_waits_stay_within_their_band_and_under_the_cap() -> None:
    clock = VirtualClock()
    rng = random.Random(7)
    policy = clock.policy(random=rng.random, max_delay=1.5, max_retries=6)
    faults = Faults(server_error=Trigger(first=5), error_status=503)
    async with (
        simulator([job(50)], faults=faults) as sim,
        client(sim.base_url, clock, retry=policy) as c,
    ):
        await c.job_items.list(JOB)
    bases = [0.5, 1.0, 1.5, 1.5, 1.5]
    assert len(clock.sleeps) == 5
    for wait, base in zip(clock.sleeps, bases, strict=True):
        assert base * 0.75 <= wait <= base <= 1.5


async def test_case04_scan_through_503_bursts_completes() -> None:
    clock = VirtualClock()
    faults = Faults(server_error=Trigger(first=3, every=9), error_status=503)
    async with simulator([job()], faults=faults) as sim, client(sim.base_url, clock) as c:
        got = [i.item_id async for i in c.job_items.iter(JOB, page_size=200, concurrency=8)]
        assert_exact(got, sim.item_ids(JOB))
        assert "server_error" in sim.stats.faults()
    assert all(0 < s <= 8.0 for s in clock.sleeps)


# --- 5. Persistent 500: exact attempts, typed error, siblings cancelled -----------------


async def test_case05_persistent_500_on_one_page() -> None:
    clock = VirtualClock()
    rec = Recorder(clock)
    hold = Hold(lambda offset: offset is not None and offset >= 400)
    state: dict[str, int] = {"next_offset": 0}

    async def gate(offset: int | None) -> None:
        if offset == 300:  # fail only once everything before it was handed out
            await wait_until(lambda: state["next_offset"] >= 300)

    @web.middleware
    async def gate_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = request.query.get("offset", "")
        await gate(int(raw) if raw.isdigit() else None)
        return await handler(request)

    faults = Faults(server_error=Trigger(offsets={300: 1000}), error_status=500)
    async with simulator(
        [job(2000)], faults=faults, middlewares=[rec.middleware, gate_mw, hold.middleware]
    ) as sim:
        truth = sim.item_ids(JOB)
        async with client(sim.base_url, clock, max_retries=3) as c:
            got: list[str] = []
            pages = c.job_items.iter_pages(JOB, page_size=100, concurrency=4)
            with pytest.raises(PageFetchError) as info:
                async for page in pages:
                    got.extend(ids(page.items))
                    state["next_offset"] = pages.progress.next_offset
            # The in-flight siblings are cancelled: the server sees them hang up...
            await wait_until(lambda: hold.held > 0 and hold.dropped == hold.held)
            before = len(rec.seen)
            await anyio.sleep(0.1)
            # ...and nothing new arrives afterwards.
            assert len(rec.seen) == before
            hold.release()
            # The client is still usable.
            assert len((await c.job_items.list(JOB, limit=3)).items) == 3
    err = info.value
    assert_exact(got, truth[:300])  # nothing yielded twice, nothing after the failure
    assert err.offset == 300
    assert "page at offset 300 failed" in str(err)
    assert "start_offset=300" in str(err)
    assert isinstance(err.error, InternalServerError)
    assert err.error.status_code == 500
    assert err.__cause__ is err.error
    assert [s.status for s in rec.at(300)] == [500] * 4  # max_retries + 1
    assert clock.sleeps.count(0.5) >= 1
    assert_no_secret(err)


# --- 6. Non-retryable statuses and x-should-retry ------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (422, UnprocessableEntityError),
    ],
)
async def test_case06_client_errors_are_tried_once(status: int, cls: type[APIStatusError]) -> None:
    clock = VirtualClock()
    rec = Recorder(clock)
    faults = Faults(server_error=Trigger.always(), error_status=status)
    async with (
        simulator([job(500)], faults=faults, middlewares=[rec.middleware]) as sim,
        client(sim.base_url, clock) as c,
    ):
        with pytest.raises(cls) as info:
            await c.job_items.list(JOB)
        assert len(rec.items()) == 1
        # Nothing was delivered: a permanent error is raised as itself.
        with pytest.raises(cls) as scan_info:
            async for _ in c.job_items.iter(JOB, page_size=100, concurrency=4):
                pass
    assert type(info.value) is cls
    assert info.value.status_code == status
    assert type(scan_info.value) is cls
    # One attempt per page: the scan sent each of its first pages exactly once.
    offsets = [s.offset for s in rec.items()[1:]]
    assert len(offsets) == len(set(offsets))
    assert clock.sleeps == []
    assert_no_secret(info.value, scan_info.value)


async def test_case06_x_should_retry_false_on_503_is_one_attempt() -> None:
    clock = VirtualClock()
    rec = Recorder(clock)
    faults = Faults(server_error=Trigger.always(), error_status=503, should_retry="false")
    async with (
        simulator([job(50)], faults=faults, middlewares=[rec.middleware]) as sim,
        client(sim.base_url, clock) as c,
    ):
        with pytest.raises(InternalServerError):
            await c.job_items.list(JOB)
    assert len(rec.items()) == 1
    assert clock.sleeps == []


async def test_case06_x_should_retry_false_on_429_is_one_attempt() -> None:
    clock = VirtualClock()
    rec = Recorder(clock)
    faults = Faults(rate_limit=Trigger.always(), should_retry="false")
    async with (
        simulator([job(50)], faults=faults, middlewares=[rec.middleware]) as sim,
        client(sim.base_url, clock) as c,
    ):
        with pytest.raises(RateLimitError):
            await c.job_items.list(JOB)
    assert len(rec.items()) == 1


async def test_case06_x_should_retry_true_on_400_is_retried() -> None:
    clock = VirtualClock()
    rec = Recorder(clock)
    faults = Faults(server_error=Trigger(first=2), error_status=400, should_retry="true")
    async with (
        simulator([job(50)], faults=faults, middlewares=[rec.middleware]) as sim,
        client(sim.base_url, clock) as c,
    ):
        page = await c.job_items.list(JOB, limit=4)
    assert ids(page.items) == sim.item_ids(JOB)[:4]
    assert [s.status for s in rec.items()] == [400, 400, 200]
    assert clock.sleeps == [0.5, 1.0]


async def test_case06_x_should_retry_true_on_400_exhausts_retries() -> None:
    clock = VirtualClock()
    rec = Recorder(clock)
    faults = Faults(server_error=Trigger.always(), error_status=400, should_retry="true")
    async with (
        simulator([job(50)], faults=faults, middlewares=[rec.middleware]) as sim,
        client(sim.base_url, clock, max_retries=2) as c,
    ):
        with pytest.raises(BadRequestError):
            await c.job_items.list(JOB)
    assert len(rec.items()) == 3


# --- 7. A 429 storm during a 16-wide scan ---------------------------------------------------


async def test_case07_429_storm_lowers_concurrency_and_the_scan_completes() -> None:
    clock = VirtualClock()
    # The server can take 4 requests at once; beyond that every request gets a 429.
    faults = Faults(rate_limit=Trigger(in_flight_above=4), retry_after="1", latency_ms=2)
    async with simulator([job(12_000)], faults=faults) as sim, client(sim.base_url, clock) as c:
        pages = c.job_items.iter_pages(JOB, page_size=100, concurrency=16)
        got: list[str] = []
        lowest = 16
        async for page in pages:
            got.extend(ids(page.items))
            lowest = min(lowest, pages.progress.concurrency)
        assert_exact(got, sim.item_ids(JOB))
        stats = sim.stats
        assert stats.peak_in_flight <= 16
        assert stats.faults().count("rate_limit") >= 1
    progress = pages.progress
    assert progress.rate_limited >= 1
    assert lowest <= 8  # halved at least once
