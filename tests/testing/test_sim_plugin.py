"""The pytest fixtures a user of aiobatch.testing gets."""

from __future__ import annotations

from _sim_http import get

from aiobatch.testing import SimJob, Simulator
from aiobatch.testing.pytest_plugin import DEFAULT_TEST_JOB, SimulatorFactory


async def test_default_fixture(batch_simulator: Simulator) -> None:
    assert batch_simulator.job_ids == [DEFAULT_TEST_JOB.job_id]
    assert batch_simulator.clock.frozen
    assert (await get(batch_simulator, f"/{DEFAULT_TEST_JOB.job_id}")).status == 200


async def test_factory_starts_several(batch_simulator_factory: SimulatorFactory) -> None:
    one = await batch_simulator_factory([SimJob(job_id="bjb-x", total_items=3)], api_key="k1")
    two = await batch_simulator_factory([SimJob(job_id="bjb-y", total_items=4)])
    assert one.base_url != two.base_url
    assert one.api_key == "k1"
    assert (await get(two, "/bjb-y/items")).json()["total_size"] == 4
