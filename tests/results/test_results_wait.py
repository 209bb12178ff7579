"""``client.job_items.iter_results`` on a v1 job that is still running: its
pending items are ``not_ready`` (not ``no_job``), and ``wait=True`` waits for
the job to end before fetching.  Time is fake: nothing sleeps for real."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from _clock import FakeTime

from aiobatch import BatchClient, JobWaitTimeoutError
from aiobatch.testing import SimClock, SimJob, Simulator

LIVE = "bjb-results-live"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    job = SimJob(job_id=LIVE, total_items=40, running=True, rate=2.0, concurrency=2)
    async with Simulator(jobs=[job], clock=SimClock.frozen_at()) as s:
        yield s


def client(sim: Simulator, clock: FakeTime) -> BatchClient:
    return BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=clock.policy())


async def test_pending_items_of_a_running_job_are_not_ready(sim: Simulator) -> None:
    async with client(sim, FakeTime(sim)) as c:
        got = [r async for r in c.job_items.iter_results(LIVE, status=None)]
    pending = [r for r in got if r.item.status in ("pending", "processing") and not r.item.job_id]
    assert pending
    assert {r.error.kind for r in pending if r.error} == {"not_ready"}
    assert all(r.error and "still running" in r.error.message for r in pending)


async def test_wait_then_fetch(sim: Simulator) -> None:
    clock = FakeTime(sim)
    async with client(sim, clock) as c:
        got = [r async for r in c.job_items.iter_results(LIVE, status=None, wait=True)]
    assert sum(clock.sleeps) >= 20  # 40 items at 2/s: the job was waited for
    assert len(got) == 40
    assert not [r for r in got if r.item.status in ("pending", "processing")]
    assert not [r for r in got if r.error and r.error.kind == "not_ready"]


async def test_wait_keeps_its_deadline(sim: Simulator) -> None:
    clock = FakeTime(sim)
    async with client(sim, clock) as c:
        with pytest.raises(JobWaitTimeoutError):
            async for _ in c.job_items.iter_results(LIVE, wait=True, timeout=5):
                pass
        with pytest.raises(ValueError, match="poll_interval"):
            c.job_items.iter_results(LIVE, wait=True, poll_interval=0)
    assert sum(clock.sleeps) <= 5
