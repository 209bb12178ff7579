"""Conformance: the official SDK's own models accept what the simulator sends,
and the SDK's paginator walks a simulated job end to end."""

from __future__ import annotations

from typing import Any

import pytest
from _sim_http import get, post

from aiobatch.testing import SimJob, Simulator
from aiobatch.testing.pytest_plugin import SimulatorFactory

pytestmark = pytest.mark.sdk
JOB = "bjb-test-0001"


def _validate(model: Any, data: Any) -> None:
    # model_validate (not the SDK's lenient construct) so a wrong type fails here.
    model.model_validate(data)


async def test_sdk_models_accept_every_response(batch_simulator_factory: SimulatorFactory) -> None:
    pytest.importorskip("llama_cloud")
    from llama_cloud.types.beta import (
        BatchCancelResponse,
        BatchCreateResponse,
        BatchGetStatusResponse,
        BatchListResponse,
    )
    from llama_cloud.types.beta.batch import (
        JobItemGetProcessingResultsResponse,
        JobItemListResponse,
    )

    jobs = [
        SimJob(job_id="bjb-parse", total_items=3000, seed=1),
        SimJob(job_id="bjb-classify", total_items=200, job_type="classify", running=True),
    ]
    sim = await batch_simulator_factory(jobs)
    sim.advance(2.0)
    for job_id in ("bjb-parse", "bjb-classify"):
        page = (await get(sim, f"/{job_id}/items", limit=1000)).json()
        assert {it["status"] for it in page["items"]} >= {"completed", "failed"}
        for item in page["items"]:
            _validate(JobItemListResponse, item)
        _validate(BatchGetStatusResponse, (await get(sim, f"/{job_id}")).json())
        done = sim.item_ids(job_id, "completed")[0]
        results = (await get(sim, f"/items/{done}/processing-results")).json()
        _validate(JobItemGetProcessingResultsResponse, results)
        parsed = JobItemGetProcessingResultsResponse.model_validate(results)
        assert parsed.processing_results
        config = parsed.processing_results[0].job_config
        assert type(config).__name__ == (
            "ClassifyJob"
            if job_id == "bjb-classify"
            else "ProcessingResultJobConfigBatchParseJobRecordCreate"
        )
    for job in (await get(sim, "")).json()["items"]:
        _validate(BatchListResponse, job)
    created = (await post(sim, "", {"job_config": {"type": "parse"}, "directory_id": "d"})).json()
    _validate(BatchCreateResponse, created)
    _validate(BatchCancelResponse, (await post(sim, f"/{created['id']}/cancel", {})).json())


async def test_sdk_paginates_a_simulated_job(batch_simulator_factory: SimulatorFactory) -> None:
    pytest.importorskip("llama_cloud")
    from llama_cloud import AsyncLlamaCloud

    sim: Simulator = await batch_simulator_factory([SimJob(job_id=JOB, total_items=237, seed=5)])
    async with AsyncLlamaCloud(api_key=sim.api_key, base_url=sim.base_url, max_retries=0) as client:
        ids = [
            item.item_id async for item in client.beta.batch.job_items.list(job_id=JOB, limit=50)
        ]
        failed = [
            item.item_id
            async for item in client.beta.batch.job_items.list(job_id=JOB, status="failed", limit=4)
        ]
    assert ids == sim.item_ids(JOB)
    assert failed == sim.item_ids(JOB, "failed")
    requests = [r for r in sim.stats.log if r.path.endswith("/items")]
    assert [r.query.get("offset", "0") for r in requests[:5]] == ["0", "50", "100", "150", "200"]
