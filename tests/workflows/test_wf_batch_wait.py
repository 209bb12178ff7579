"""``client.batches.wait`` / ``client.batches.watch``: v2 batches that complete,
fail, are cancelled, stay throttled, stall (timeout) or report a status the client
does not know; transient errors.  Time is fake (``FakeTime``): no test sleeps for
real."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from _servers import serve
from aiohttp import web
from wf_support import FakeTime

from aiobatch import (
    Batch,
    BatchClient,
    BatchFailedError,
    BatchWaitTimeoutError,
    BatchWatch,
    JobWatch,
    StatusWatch,
)
from aiobatch.models import encode
from aiobatch.testing import Faults, SimBatch, SimClock, Simulator, Trigger

T0 = 1_800_000_000.0


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(clock=SimClock.frozen_at(T0)) as s:
        s.batches.add(SimBatch(batch_id="bat-live", files=20, rate=2.0, start_delay=2.0))
        s.batches.add(
            SimBatch(batch_id="bat-throttled", files=4, start_delay=1.0, throttled_for=60.0)
        )
        s.batches.add(SimBatch(batch_id="bat-failed", files=3, status="FAILED", start_delay=0))
        s.batches.add(SimBatch(batch_id="bat-done", files=3, created_at=T0 - 3600))
        yield s


def client_for(sim: Simulator, time: FakeTime) -> BatchClient:
    return BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=time.policy())


def test_batch_and_job_watches_share_the_waiter() -> None:
    assert issubclass(BatchWatch, StatusWatch)
    assert issubclass(JobWatch, StatusWatch)


async def test_wait_reports_each_change_until_completed(sim: Simulator) -> None:
    time = FakeTime(sim)
    seen: list[Batch] = []
    async with client_for(sim, time) as client:
        final = await client.batches.wait("bat-live", poll_interval=1.0, on_progress=seen.append)
    assert final.status == "COMPLETED"
    assert [str(b.status) for b in seen] == ["PENDING", "RUNNING", "COMPLETED"]
    assert seen[-1] == final
    assert 12 <= time.now <= 16  # 2 s pending + 20 files at 2/s (+ backoff)


async def test_throttled_is_not_terminal_and_backs_off(sim: Simulator) -> None:
    time = FakeTime(sim)
    statuses: list[str] = []

    async def progress(batch: Batch) -> None:
        statuses.append(str(batch.status))

    async with client_for(sim, time) as client:
        final = await client.batches.wait(
            "bat-throttled", poll_interval=1.0, max_interval=8.0, on_progress=progress
        )
    assert final.status == "COMPLETED"
    assert statuses == ["PENDING", "THROTTLED", "RUNNING", "COMPLETED"]
    assert max(time.sleeps) == 8.0  # unchanged THROTTLED polls back off to the cap
    assert len(time.sleeps) < 20


async def test_failed_batch_is_returned_or_raised(sim: Simulator) -> None:
    time = FakeTime(sim)
    async with client_for(sim, time) as client:
        sim.advance(10)
        assert (await client.batches.wait("bat-failed")).status == "FAILED"
        with pytest.raises(BatchFailedError) as caught:
            await client.batches.wait("bat-failed", raise_on_failure=True)
        assert caught.value.batch_id == "bat-failed"
        assert caught.value.batch.status == "FAILED"
        assert "ended FAILED" in str(caught.value)
        done = await client.batches.wait("bat-done", raise_on_failure=True)
        assert done.status == "COMPLETED"
        watched = [b.status async for b in client.batches.watch("bat-done")]
    assert watched == ["COMPLETED"]
    assert time.sleeps == []


async def test_cancelled_during_wait(sim: Simulator) -> None:
    time = FakeTime(sim)
    async with client_for(sim, time) as client:

        async def cancel_when_running(batch: Batch) -> None:
            if batch.status == "RUNNING":
                await client.batches.cancel(batch.id)

        final = await client.batches.wait(
            "bat-live", poll_interval=1.0, on_progress=cancel_when_running
        )
        assert final.status == "CANCELLED"
        with pytest.raises(BatchFailedError):
            await client.batches.wait("bat-live", raise_on_failure=True)


async def test_timeout_carries_the_last_state(sim: Simulator) -> None:
    time = FakeTime(sim)
    async with client_for(sim, time) as client:
        with pytest.raises(BatchWaitTimeoutError) as caught:
            await client.batches.wait("bat-throttled", poll_interval=1.0, timeout=10.0)
    err = caught.value
    assert isinstance(err, TimeoutError)
    assert err.batch is not None
    assert err.batch.status == "THROTTLED"
    assert (err.batch_id, err.timeout) == ("bat-throttled", 10.0)
    assert time.now == pytest.approx(10.0)
    assert "batch bat-throttled did not end within 10 s: still THROTTLED" in str(err)


async def test_transient_errors_are_retried(sim: Simulator) -> None:
    sim.faults = Faults(server_error=Trigger(every=2, on="batch"), error_retry_after="0")
    time = FakeTime(sim)
    async with client_for(sim, time) as client:
        final = await client.batches.wait("bat-live", poll_interval=1.0)
    assert final.status == "COMPLETED"
    assert "server_error" in sim.stats.faults()


async def test_unknown_status_is_not_terminal(sim: Simulator) -> None:
    time = FakeTime()
    answers = iter(["RUNNING", "ARCHIVING", "ARCHIVING", "COMPLETED"])
    sim.advance(3600)
    real = encode(await _get(sim, "bat-done"))

    async def batch(request: web.Request) -> web.Response:
        status = next(answers)
        body = real.replace(b'"status":"COMPLETED"', f'"status":"{status}"'.encode())
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v2/batches/{batch_id}", batch)
    async with (
        serve(app) as url,
        BatchClient(api_key="k", base_url=url, retry=time.policy()) as client,
    ):
        statuses = [str(b.status) async for b in client.batches.watch("bat-done")]
    assert statuses == ["RUNNING", "ARCHIVING", "COMPLETED"]
    assert time.sleeps == [2.0, 2.0, 3.0]


async def _get(sim: Simulator, batch_id: str) -> Batch:
    async with BatchClient(api_key=sim.api_key, base_url=sim.base_url) as client:
        return await client.batches.get(batch_id)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"poll_interval": 0}, "poll_interval"),
        ({"timeout": -1}, "timeout"),
        ({"poll_interval": 5, "max_interval": 1}, "max_interval"),
    ],
)
async def test_bad_arguments_fail_before_any_request(
    sim: Simulator, kw: dict[str, Any], match: str
) -> None:
    async with client_for(sim, FakeTime()) as client:
        with pytest.raises(ValueError, match=match):
            await client.batches.wait("bat-done", **kw)
        with pytest.raises(ValueError, match="batch_id"):
            client.batches.watch(" ")
    assert sim.stats.requests == 0
