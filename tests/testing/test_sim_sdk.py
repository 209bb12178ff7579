"""Conformance with the official SDK 2.13.0 (the ``bench`` extra): every method of
``client.beta.batch`` and ``client.classifier.jobs.get_results``, called through the
SDK against the simulator on a real socket, with the SDK's strict response
validation on, once plainly and once with every parameter the method takes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from aiobatch.testing import SimJob, Simulator
from aiobatch.testing.pytest_plugin import SimulatorFactory

pytestmark = pytest.mark.sdk
JOB = "bjb-test-0001"
ORG = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
PROJECT = "5d3c1f0e-7a51-4c2b-9a8e-3f9b1c2d4e5f"
SCOPE = {"organization_id": ORG, "project_id": PROJECT}

# Every field of the SDK's parse job record, as its with-all-parameters style fills them.
PARSE_CONFIG: dict[str, Any] = {
    "correlation_id": "corr-1",
    "job_name": "parse_raw_file_job",
    "parameters": {
        "type": "parse",
        "tier": "cost_effective",
        "lang": "en",
        "languages": ["en", "de"],
        "parse_mode": "parse_page_with_llm",
        "priority": "high",
        "images_to_save": ["embedded"],
        "custom_metadata": {"k": "v"},
        "webhook_configurations": [
            {
                "webhook_url": "https://example.com/hook",
                "webhook_events": ["parse.success"],
                "webhook_headers": {"x": "y"},
                "webhook_output_format": "json",
                "webhook_signing_secret": "whsec",
            }
        ],
        "max_pages": 10,
        "output_tables_as_HTML": True,
    },
    "parent_job_execution_id": "pje-1",
    "partitions": {"a": "b"},
    "project_id": PROJECT,
    "session_id": "sess-1",
    "user_id": "user-1",
    "webhook_url": "https://example.com/hook",
}
CLASSIFY_CONFIG: dict[str, Any] = {
    "id": "3f1c9a52-0000-4000-8000-000000000001",
    "project_id": PROJECT,
    "rules": [{"type": "invoice", "description": "has a total and a due date"}],
    "status": "PENDING",
    "user_id": "user-1",
    "mode": "FAST",
}


@pytest.fixture
async def sdk(batch_simulator_factory: SimulatorFactory) -> AsyncIterator[tuple[Any, Simulator]]:
    pytest.importorskip("llama_cloud")
    from llama_cloud import AsyncLlamaCloud

    jobs = [
        SimJob(job_id=JOB, total_items=300, seed=1),
        SimJob(job_id="bjb-classify", total_items=200, job_type="classify", seed=2),
    ]
    sim = await batch_simulator_factory(jobs)
    client = AsyncLlamaCloud(
        api_key=sim.api_key,
        base_url=sim.base_url,
        max_retries=0,
        _strict_response_validation=True,
    )
    async with client:
        yield client, sim


async def test_batch_list_and_get_status(sdk: tuple[Any, Simulator]) -> None:
    client, sim = sdk
    plain = [job.id async for job in client.beta.batch.list()]
    assert plain == sim.job_ids
    full = [
        job.id
        async for job in client.beta.batch.list(
            directory_id="dir-7f3a9c21-sim",
            job_type="parse",
            limit=1,
            offset=0,
            status="completed",
            **SCOPE,
        )
    ]
    assert full == [JOB]
    status = await client.beta.batch.get_status(JOB)
    assert status.job.id == JOB
    assert 0 <= status.progress_percentage <= 100
    assert (await client.beta.batch.get_status(JOB, **SCOPE)).job.total_items == 300


async def test_batch_create_and_cancel(sdk: tuple[Any, Simulator]) -> None:
    client, sim = sdk
    plain = await client.beta.batch.create(job_config={}, directory_id="dir-sdk")
    assert plain.status == "pending"
    ids = sim.item_ids(JOB)[:3]
    # Every parameter: both directory_id and item_ids (the API's answer to that is not
    # published, so the simulator accepts it), and the temporal-namespace header.
    full = await client.beta.batch.create(
        job_config=PARSE_CONFIG,
        continue_as_new_threshold=50,
        directory_id="dir-sdk",
        item_ids=ids,
        page_size=1000,
        temporal_namespace="ns-1",
        **SCOPE,
    )
    assert full.total_items == 3
    assert full.project_id == PROJECT
    classify = await client.beta.batch.create(job_config=CLASSIFY_CONFIG, item_ids=ids, **SCOPE)
    assert classify.job_type == "classify"
    raw = await client.beta.batch.with_raw_response.create(job_config={}, directory_id="d")
    assert raw.http_response.status_code == 201

    cancelled = await client.beta.batch.cancel(plain.id)
    assert cancelled.status == "cancelled"
    again = await client.beta.batch.cancel(
        full.id, reason="stop", temporal_namespace="ns-1", **SCOPE
    )
    assert again.status == "cancelled"
    # A finished job: accepted, nothing changes.
    finished = await client.beta.batch.cancel(JOB)
    assert finished.status == "completed"
    assert sim.job(JOB).job.status == "completed"


async def test_job_items_list_and_processing_results(sdk: tuple[Any, Simulator]) -> None:
    client, sim = sdk
    ids = [item.item_id async for item in client.beta.batch.job_items.list(JOB)]
    assert ids == sim.item_ids(JOB)
    failed = [
        item.item_id
        async for item in client.beta.batch.job_items.list(
            JOB, limit=7, offset=0, status="failed", **SCOPE
        )
    ]
    assert failed == sim.item_ids(JOB, "failed")
    done = sim.item_ids(JOB, "completed")[0]
    plain = await client.beta.batch.job_items.get_processing_results(done)
    assert plain.item_id == done
    assert plain.processing_results
    full = await client.beta.batch.job_items.get_processing_results(done, job_type="parse", **SCOPE)
    assert full.processing_results == plain.processing_results


# The method is deprecated in 2.13.0 in favour of client.classify (a newer API); the
# batch API's classify jobs are still read through it.
@pytest.mark.filterwarnings("ignore:Please use `client.classify:DeprecationWarning")
async def test_classifier_get_results_in_one_answer(sdk: tuple[Any, Simulator]) -> None:
    client, sim = sdk
    seen = 0
    for item in sim.items("bjb-classify", "completed"):
        assert item.job_id is not None
        if sim.parse_status(item.job_id) != "SUCCESS":
            continue
        plain = await client.classifier.jobs.get_results(item.job_id)
        full = await client.classifier.jobs.get_results(item.job_id, **SCOPE)
        assert plain == full
        assert 1 <= len(plain.items) <= 3
        assert plain.next_page_token is None
        assert plain.total_size == len(plain.items)
        seen += 1
        if seen == 5:
            break
    assert seen == 5
    requests = [r for r in sim.stats.log if r.path.endswith("/results")]
    assert not any("page_size" in r.query or "page_token" in r.query for r in requests)


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
