"""aiobatch's own client against the simulator: every endpoint, and a full scan
through faults."""

from __future__ import annotations

import pytest

from aiobatch import BatchClient, RetryPolicy
from aiobatch.testing import Faults, SimJob, Simulator, Trigger
from aiobatch.testing.pytest_plugin import SimulatorFactory

JOB = "bjb-test-0001"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LLAMA_CLOUD_API_KEY", "LLAMA_PARSE_API_KEY", "LLAMA_CLOUD_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def test_batch_client_calls_every_endpoint(batch_simulator: Simulator) -> None:
    sim = batch_simulator
    async with BatchClient(api_key=sim.api_key, base_url=sim.base_url) as client:
        page = await client.job_items.list(JOB, limit=10, offset=5, status="failed")
        assert [it.item_id for it in page.items] == sim.item_ids(JOB, "failed")[5:15]
        assert page.total_size == sim.count(JOB, "failed")
        done = sim.item_ids(JOB, "completed")[0]
        results = await client.job_items.get_processing_results(done, job_type="parse")
        assert results.item_id == done
        assert len(results.processing_results) == 1
        jobs = await client.jobs.list(limit=10)
        assert [j.id for j in jobs.items] == [JOB]
        status = await client.jobs.get(JOB)
        assert status.job.total_items == 250
        assert status == sim.job(JOB)
        created = await client.jobs.create(job_config={"type": "parse"}, directory_id="dir-1")
        assert created.status == "pending"
        cancelled = await client.jobs.cancel(created.id, reason="changed my mind")
        assert cancelled.status == "cancelled"
        assert cancelled.job_id == created.id
        assert sim.count(created.id, "cancelled") == created.total_items


async def test_batch_client_scan_survives_faults(batch_simulator_factory: SimulatorFactory) -> None:
    sim = await batch_simulator_factory([SimJob(job_id=JOB, total_items=3000, seed=4)])
    sim.faults = Faults(
        rate_limit=Trigger(first=2, offsets={1500: 2}),
        retry_after="0",
        server_error=Trigger(every=7),
        extra_fields=True,
    )
    sleeps = Sleeps()
    retry = RetryPolicy(sleep=sleeps, random=lambda: 0.0)
    async with BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=retry) as client:
        ids = [
            item.item_id async for item in client.job_items.iter(JOB, page_size=500, concurrency=4)
        ]
    assert ids == sim.item_ids(JOB)
    assert "rate_limit" in sim.stats.faults()
    assert "server_error" in sim.stats.faults()
