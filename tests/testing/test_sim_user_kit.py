"""What a test author gets: the ``batch_client`` fixture, ``sim.client()`` with a
retry policy on the simulator's clock, a stall fault, every fault in
``sim.stats``, and results in the client's form (``sim.result_content``)."""

from __future__ import annotations

import asyncio
import time

import pytest

from aiobatch import APITimeoutError, BatchClient, Timeout
from aiobatch.testing import Faults, SimJob, Simulator, Trigger
from aiobatch.testing.pytest_plugin import DEFAULT_TEST_JOB, SimulatorFactory

JOB = DEFAULT_TEST_JOB.job_id


async def test_batch_client_fixture_is_open_on_the_simulator(
    batch_client: BatchClient, batch_simulator: Simulator
) -> None:
    items = [i async for i in batch_client.job_items.iter(JOB)]
    assert [i.item_id for i in items] == batch_simulator.item_ids(JOB)


async def test_retries_sleep_on_the_simulator_clock(
    batch_client: BatchClient, batch_simulator: Simulator
) -> None:
    batch_simulator.faults = Faults(rate_limit=Trigger(first=3, on="job"), retry_after="30")
    before = batch_simulator.now()
    started = time.monotonic()
    job = await batch_client.jobs.get(JOB)
    assert job.job.id == JOB
    # Three 30 s pauses passed on the simulator's clock, not on the wall's.
    assert batch_simulator.now() - before >= 90
    assert time.monotonic() - started < 30
    assert batch_simulator.stats.faults() == ["rate_limit"] * 3


async def test_a_stall_hangs_until_the_client_gives_up(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    sim = await batch_simulator_factory(faults=Faults(stall=Trigger(first=1, on="job")))
    async with sim.client(timeout=Timeout(total=0.2), max_retries=0) as c:
        with pytest.raises(APITimeoutError):
            await c.jobs.get(JOB)
        # The next request is answered.
        assert (await c.jobs.get(JOB)).job.id == JOB
    stalled = [r for r in sim.stats.log if r.fault == "stall"]
    assert len(stalled) == 1
    assert stalled[0].status is None
    assert sim.stats.faults() == ["stall"]


class Gate:
    """The simulator's ``sleep``: blocks every call until released."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.open = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.reached.set()
        await self.open.wait()


async def test_a_trickle_is_recorded_while_it_is_served(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    gate = Gate()
    sim = await batch_simulator_factory(
        faults=Faults(trickle=Trigger(first=1, on="job"), trickle_bytes_per_sec=50), sleep=gate
    )
    async with sim.client(max_retries=0) as c:
        task = asyncio.create_task(c.jobs.get(JOB))
        await gate.reached.wait()
        # Mid-body: the log already names the fault and the status sent.
        (record,) = list(sim.stats.log)
        assert (record.fault, record.status) == ("trickle", 200)
        assert sim.stats.faults() == ["trickle"]
        gate.open.set()
        assert (await task).job.id == JOB


async def test_a_trickle_the_client_gave_up_on_is_recorded(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    sim = await batch_simulator_factory(
        faults=Faults(trickle=Trigger(first=1, on="job"), trickle_bytes_per_sec=20)
    )
    async with sim.client(timeout=Timeout(total=0.2), max_retries=0) as c:
        with pytest.raises(APITimeoutError):
            await c.jobs.get(JOB)
    assert sim.stats.faults() == ["trickle"]


async def test_result_content_is_what_iter_results_yields(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    sim = await batch_simulator_factory([SimJob(job_id="bjb-kit", total_items=120, seed=2)])
    for kind in ("markdown", "json"):
        async with sim.client() as c:
            got = [r async for r in c.job_items.iter_results("bjb-kit", result=kind)]
        assert got
        for r in got:
            expected = sim.result_content(r.item.job_id, kind) if r.item.job_id else None
            assert r.content == expected
        assert any(r.content is None for r in got)
    with pytest.raises(ValueError, match="kind"):
        sim.result_content("x", "html")
