"""Cancellation and resources (cases 20-21): ``break``, ``move_on_after`` and
task cancellation stop in-flight requests at once, surface as cancellation (not
as a timeout), leave nothing behind, and leave the client usable.

The suite's conftest also fails any test after which asyncio reported an
unretrieved task exception or an unclosed resource.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time

import anyio
import pytest

from aiobatch import BatchClient, PaginationError, RetryPolicy
from aiobatch.testing import Faults, SimJob, Trigger

from .fault_support import (
    Hold,
    Recorder,
    VirtualClock,
    assert_exact,
    client,
    simulator,
    wait_until,
)

JOB = "bjb-faults-cancel"


def job(n: int = 5000) -> SimJob:
    return SimJob(job_id=JOB, total_items=n, seed=11)


def parks_from(offset: int) -> Hold:
    """Requests at or past ``offset`` are held until the client hangs up."""
    return Hold(lambda o: o is not None and o >= offset)


async def assert_quiet(rec: Recorder, hold: Hold) -> None:
    """Every parked request was dropped by the client, and no new one follows."""
    await wait_until(lambda: hold.held > 0 and hold.dropped == hold.held)
    before = len(rec.seen)
    await anyio.sleep(0.1)
    assert len(rec.seen) == before, "the server saw requests after the scan stopped"


# --- 20. The consumer breaks out after 10 items ------------------------------------------


async def test_case20_break_after_ten_items_plain_async_for() -> None:
    clock = VirtualClock()
    rec, hold = Recorder(clock), parks_from(500)
    async with simulator([job()], middlewares=[rec.middleware, hold.middleware]) as sim:
        async with client(sim.base_url, clock) as c:
            got: list[str] = []
            async for item in c.job_items.iter(JOB, page_size=100, concurrency=8):
                got.append(item.item_id)
                if len(got) == 10:
                    await wait_until(lambda: hold.held > 0)  # requests are in flight
                    break
            gc.collect()
            await assert_quiet(rec, hold)
            # The client carries on as if nothing happened.
            again = [i.item_id async for i in c.job_items.iter(JOB, page_size=1000, max_items=5)]
            assert again == sim.item_ids(JOB)[:5]
        assert_exact(got, sim.item_ids(JOB)[:10])


async def test_case20_break_inside_scan_block() -> None:
    clock = VirtualClock()
    rec, hold = Recorder(clock), parks_from(500)
    async with simulator([job()], middlewares=[rec.middleware, hold.middleware]) as sim:
        async with client(sim.base_url, clock) as c:
            got: list[str] = []
            async with c.job_items.scan(JOB) as pages:
                async for page in pages:
                    got.extend(i.item_id for i in page.items[: 10 - len(got)])
                    if len(got) == 10:
                        await wait_until(lambda: hold.held > 0)
                        break
            # stopped, not finished: the consumer broke out before the end
            assert pages.progress.state == "stopped"
            assert not pages.progress.done
            await assert_quiet(rec, hold)
        assert_exact(got, sim.item_ids(JOB)[:10])


async def test_case20_aclosing_waits_for_the_requests_to_stop() -> None:
    clock = VirtualClock()
    rec, hold = Recorder(clock), parks_from(500)
    async with simulator([job()], middlewares=[rec.middleware, hold.middleware]) as sim:
        async with client(sim.base_url, clock) as c:
            got: list[str] = []
            items = c.job_items.iter(JOB, page_size=100, concurrency=8)
            async with contextlib.aclosing(items):
                async for item in items:
                    got.append(item.item_id)
                    if len(got) == 10:
                        await wait_until(lambda: hold.held > 0)
                        break
            assert items.progress.state == "stopped"
            assert not items.progress.done
            await assert_quiet(rec, hold)
            with pytest.raises(StopAsyncIteration):
                await items.__anext__()  # a closed scan stays closed
        assert_exact(got, sim.item_ids(JOB)[:10])


# --- 21. move_on_after / task cancel mid-scan ------------------------------------------------


async def test_case21_move_on_after_mid_scan() -> None:
    clock = VirtualClock()
    rec, hold = Recorder(clock), parks_from(500)
    async with simulator([job()], middlewares=[rec.middleware, hold.middleware]) as sim:
        async with client(sim.base_url, clock) as c:
            got: list[str] = []
            started = time.monotonic()
            # Pages 0-400 arrive at once, then the held page 500 outlasts the deadline.
            with anyio.move_on_after(1.0) as scope:
                async for item in c.job_items.iter(JOB, page_size=100, concurrency=8):
                    got.append(item.item_id)
            assert scope.cancelled_caught
            assert time.monotonic() - started < 5
            await assert_quiet(rec, hold)
            hold.release()
            # Still usable: a whole new scan is exact.
            again = [i.item_id async for i in c.job_items.iter(JOB, page_size=1000)]
            assert_exact(again, sim.item_ids(JOB))
        assert_exact(got, sim.item_ids(JOB)[:500])


async def test_case21_task_cancel_mid_scan_is_a_cancellation_not_a_timeout() -> None:
    clock = VirtualClock()
    rec, hold = Recorder(clock), parks_from(500)
    async with simulator([job()], middlewares=[rec.middleware, hold.middleware]) as sim:
        async with client(sim.base_url, clock) as c:
            got: list[str] = []

            async def consume() -> None:
                async for item in c.job_items.iter(JOB, page_size=100, concurrency=8):
                    got.append(item.item_id)

            task = asyncio.create_task(consume())
            await wait_until(lambda: hold.held > 0 and len(got) == 500)
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.monotonic() - started < 5
            await assert_quiet(rec, hold)
            hold.release()
            status = await c.jobs.get(JOB)
            assert status.job.total_items == 5000
        assert_exact(got, sim.item_ids(JOB)[:500])


async def test_case21_cancelled_iterator_refuses_to_end_quietly() -> None:
    """After a cancellation, the same iterator must not look finished."""
    clock = VirtualClock()
    rec, hold = Recorder(clock), parks_from(500)
    async with simulator([job()], middlewares=[rec.middleware, hold.middleware]) as sim:
        async with client(sim.base_url, clock) as c:
            items = c.job_items.iter(JOB, page_size=100, concurrency=8)
            with anyio.move_on_after(1.0):
                async for _ in items:
                    pass
            with pytest.raises(PaginationError) as info:
                await items.__anext__()
            assert info.value.offset == 500
            assert "start_offset=500" in str(info.value)
            await assert_quiet(rec, hold)
        assert sim.stats.requests >= 1


async def test_case21_cancel_during_real_backoff() -> None:
    """A default policy really sleeps between retries: cancelling in that sleep
    is prompt and is a cancellation."""
    faults = Faults(server_error=Trigger.always(), error_status=503)
    async with (
        simulator([job(100)], faults=faults) as sim,
        BatchClient(sim.api_key, base_url=sim.base_url, retry=RetryPolicy()) as c,
    ):
        task = asyncio.create_task(c.job_items.list(JOB))
        await wait_until(lambda: sim.stats.requests >= 1)
        await asyncio.sleep(0.05)  # now inside the 0.5 s backoff
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 1
        sim.faults = Faults()
        assert len((await c.job_items.list(JOB, limit=3)).items) == 3


async def test_case21_wait_for_timeout_is_the_callers_timeout() -> None:
    """``asyncio.wait_for`` around a hanging call raises the builtin
    ``TimeoutError`` (the caller's own), never the client's ``APITimeoutError``."""
    clock = VirtualClock()
    rec, hold = Recorder(clock), parks_from(0)
    async with (
        simulator([job()], middlewares=[rec.middleware, hold.middleware]) as sim,
        client(sim.base_url, clock) as c,
    ):
        with pytest.raises(TimeoutError) as info:
            await asyncio.wait_for(c.job_items.list(JOB, offset=0), 0.2)
        assert type(info.value) is TimeoutError
        await assert_quiet(rec, hold)
        hold.release()
        assert (await c.jobs.get(JOB)).job.total_items == 5000
