"""``client.jobs.wait`` / ``client.jobs.watch``: jobs that complete, fail, are
cancelled, stall (timeout) or report a status the client does not know; transient
errors; cancellation.  Time is fake (``FakeTime``): no test sleeps for real."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _servers import serve
from aiohttp import web
from wf_support import FakeTime

from aiobatch import (
    BatchClient,
    BatchJobStatus,
    JobFailedError,
    JobWaitTimeoutError,
    RetryPolicy,
)
from aiobatch.models import encode
from aiobatch.testing import Faults, SimClock, SimJob, Simulator, Trigger

LIVE = "bjb-wait-live"
LATE = "bjb-wait-late"
FAILED = "bjb-wait-failed"
DONE = "bjb-wait-done"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    jobs = [
        SimJob(job_id=LIVE, total_items=100, running=True, rate=10.0, concurrency=4),
        SimJob(job_id=LATE, total_items=20, running=True, rate=10.0, start_delay=100.0),
        SimJob(job_id=FAILED, total_items=50, status="failed", error_message="quota exceeded"),
        SimJob(job_id=DONE, total_items=50),
    ]
    async with Simulator(jobs=jobs, clock=SimClock.frozen_at()) as s:
        yield s


def client_for(sim: Simulator, time: FakeTime) -> BatchClient:
    return BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=time.policy())


async def test_wait_until_completed_reports_each_change(sim: Simulator) -> None:
    time = FakeTime(sim)
    seen: list[BatchJobStatus] = []
    async with client_for(sim, time) as client:
        final = await client.jobs.wait(LIVE, poll_interval=1.0, on_progress=seen.append)
    assert final.job.status == "completed"
    assert final.progress_percentage == 100.0
    assert seen[-1] == final
    processed = [s.job.processed_items or 0 for s in seen]
    assert processed == sorted(processed)
    assert len(set(processed)) == len(processed)
    assert all(s.job.status != "completed" for s in seen[:-1])
    # The job moves on every poll: polling stays at poll_interval.
    assert time.sleeps == [1.0] * (len(time.sleeps))
    assert 10 <= time.now <= 12  # 100 items at 10/s (+ the last 4 in flight)


async def test_polling_backs_off_while_nothing_changes_then_tightens(sim: Simulator) -> None:
    time = FakeTime(sim)
    async with client_for(sim, time) as client:
        final = await client.jobs.wait(LATE, poll_interval=1.0, max_interval=8.0)
    assert final.job.status == "completed"
    pending = time.sleeps[:8]
    assert pending[:5] == [1.0, 1.5, 2.25, 3.375, 5.0625]
    assert max(time.sleeps) == 8.0  # capped at max_interval
    # Once the job starts moving, polling tightens back to poll_interval.
    assert time.sleeps[-1] == 1.0
    assert len(time.sleeps) < 40  # 100 s of pending cost a handful of polls


async def test_async_callback_and_the_watch_iterator(sim: Simulator) -> None:
    time = FakeTime(sim)
    statuses: list[str] = []

    async def progress(status: BatchJobStatus) -> None:
        await asyncio.sleep(0)
        statuses.append(str(status.job.status))

    async with client_for(sim, time) as client:
        await client.jobs.wait(LIVE, poll_interval=0.5, on_progress=progress)
        assert statuses[-1] == "completed"
        # Already over: the watch yields the terminal status once, then ends.
        watched = [s async for s in client.jobs.watch(LIVE)]
    assert [str(s.job.status) for s in watched] == ["completed"]


async def test_failed_job_is_returned_or_raised(sim: Simulator) -> None:
    time = FakeTime(sim)
    async with client_for(sim, time) as client:
        final = await client.jobs.wait(FAILED)
        assert final.job.status == "failed"
        with pytest.raises(JobFailedError) as caught:
            await client.jobs.wait(FAILED, raise_on_failure=True)
        assert caught.value.status.job.status == "failed"
        assert caught.value.job_id == FAILED
        assert "quota exceeded" in str(caught.value)
        assert (await client.jobs.wait(DONE, raise_on_failure=True)).job.status == "completed"
    assert time.sleeps == []  # a finished job costs one poll


async def test_job_cancelled_during_wait(sim: Simulator) -> None:
    time = FakeTime(sim)
    async with client_for(sim, time) as client:

        async def cancel_midway(status: BatchJobStatus) -> None:
            if (status.job.processed_items or 0) >= 30 and status.job.status == "running":
                await client.jobs.cancel(LIVE, reason="enough")

        final = await client.jobs.wait(LIVE, poll_interval=1.0, on_progress=cancel_midway)
        assert final.job.status == "cancelled"
        with pytest.raises(JobFailedError):
            await client.jobs.wait(LIVE, raise_on_failure=True)


async def test_stalled_job_times_out_with_the_last_status(sim: Simulator) -> None:
    time = FakeTime(sim)
    async with client_for(sim, time) as client:
        with pytest.raises(JobWaitTimeoutError) as caught:
            await client.jobs.wait(LATE, poll_interval=1.0, timeout=10.0)
    err = caught.value
    assert isinstance(err, TimeoutError)
    assert err.status is not None
    assert err.status.job.status == "pending"
    assert (err.job_id, err.timeout) == (LATE, 10.0)
    assert time.now == pytest.approx(10.0)  # never sleeps past the deadline
    assert "did not end within 10 s: still pending" in str(err)


async def test_timeout_zero_polls_once(sim: Simulator) -> None:
    time = FakeTime(sim)
    async with client_for(sim, time) as client:
        with pytest.raises(JobWaitTimeoutError):
            await client.jobs.wait(LATE, timeout=0)
        assert (await client.jobs.wait(DONE, timeout=0)).job.status == "completed"
    assert time.sleeps == []


async def test_transient_errors_are_retried_by_the_policy(sim: Simulator) -> None:
    sim.faults = Faults(server_error=Trigger(every=3, on="job"), error_retry_after="0")
    time = FakeTime(sim)
    async with client_for(sim, time) as client:
        final = await client.jobs.wait(LIVE, poll_interval=1.0)
    assert final.job.status == "completed"
    assert "server_error" in sim.stats.faults()


async def test_unknown_status_is_not_terminal(sim: Simulator) -> None:
    """A status the client does not know yet (``archiving``) keeps the wait going."""
    time = FakeTime()
    answers = iter(["running", "archiving", "archiving", "completed"])
    real = encode(sim.job(DONE))

    async def job(request: web.Request) -> web.Response:
        status = next(answers)
        body = real.replace(b'"status":"completed"', f'"status":"{status}"'.encode())
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/beta/batch-processing/{job_id}", job)
    async with (
        serve(app) as url,
        BatchClient(api_key="k", base_url=url, retry=time.policy()) as client,
    ):
        statuses = [str(s.job.status) async for s in client.jobs.watch(DONE)]
    assert statuses == ["running", "archiving", "completed"]
    assert time.sleeps == [2.0, 2.0, 3.0]  # the repeat slowed the next poll


async def test_cancelling_the_waiter_stops_at_once(sim: Simulator) -> None:
    blocked = asyncio.Event()
    forever = asyncio.Event()

    async def sleep(delay: float) -> None:
        blocked.set()
        await forever.wait()

    policy = RetryPolicy(sleep=sleep, random=lambda: 0.0)
    async with BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy) as client:
        task = asyncio.create_task(client.jobs.wait(LATE))
        await blocked.wait()
        requests = sim.stats.requests
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sim.stats.requests == requests == 1


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": float("nan")}, "poll_interval"),
        ({"timeout": -1}, "timeout"),
        ({"poll_interval": 5, "max_interval": 1}, "max_interval"),
    ],
)
async def test_bad_arguments_fail_before_any_request(
    sim: Simulator, kw: dict[str, Any], match: str
) -> None:
    async with client_for(sim, FakeTime()) as client:
        with pytest.raises(ValueError, match=match):
            await client.jobs.wait(DONE, **kw)
        with pytest.raises(ValueError, match="job_id"):
            client.jobs.watch(" ")
    assert sim.stats.requests == 0
