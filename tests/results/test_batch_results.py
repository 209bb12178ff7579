"""``client.batches.iter_results`` against the simulator: every file's output
through its job reference, in the batch's order, bounded, with per-file errors
(no job, failed, missing); a batch not finished raises (or is waited for)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from aiobatch import BatchClient, BatchNotFinishedError, RetryPolicy
from aiobatch._results import FileResult
from aiobatch.testing import Faults, SimBatch, SimClock, Simulator, Trigger
from aiobatch.testing._v2jobs import job_outcome

T0 = 1_800_000_000.0


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(clock=SimClock.frozen_at(T0)) as s:
        s.batches.add(SimBatch(batch_id="bat-p", files=80, error_every=9, created_at=T0 - 600))
        s.batches.add(
            SimBatch(batch_id="bat-x", files=25, job_type="extract_v2", created_at=T0 - 600)
        )
        s.batches.add(SimBatch(batch_id="bat-live", files=10, rate=1.0, start_delay=5.0))
        yield s


def client_for(sim: Simulator) -> BatchClient:
    """Sleeps move the simulator's clock (batches progress); nothing sleeps for real."""

    async def sleep(delay: float) -> None:
        sim.advance(delay)
        await asyncio.sleep(0)

    policy = RetryPolicy(sleep=sleep, monotonic=lambda: sim.clock.now(), random=lambda: 0.0)
    return BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy)


def expected_kind(r: FileResult) -> str | None:
    if r.job_reference is None:
        return "no_job"
    outcome = job_outcome(r.job_reference.id)
    return {"COMPLETED": None, "FAILED": "failed", "MISSING": "missing"}[outcome]


async def test_parse_batch_markdown_in_order_with_per_file_errors(sim: Simulator) -> None:
    async with client_for(sim) as client:
        batch = await client.batches.get("bat-p", expand="results")
        assert batch.results is not None
        results = [r async for r in client.batches.iter_results("bat-p", concurrency=4)]
    assert [r.file_id for r in results] == [f.source_directory_file_id for f in batch.results]
    assert [r.index for r in results] == list(range(80))
    kinds = Counter(r.error.kind if r.error else "ok" for r in results)
    assert kinds["ok"] > 0
    assert kinds["no_job"] == 80 // 9
    assert kinds["failed"] > 0
    assert kinds["missing"] > 0
    for r in results:
        assert (r.error.kind if r.error else None) == expected_kind(r)
        if r.content is not None:
            assert r.content.kind == "markdown"
            assert r.content.text.startswith(f"# {r.file_id}")
            assert r.content.metadata is not None
        elif r.job_reference is None:
            assert "unsupported file type" in str(r.error)


async def test_text_and_json_kinds(sim: Simulator) -> None:
    async with client_for(sim) as client:
        texts = [r async for r in client.batches.iter_results("bat-p", result="text")]
        pages = [r async for r in client.batches.iter_results("bat-p", result="json")]
    ok_text = [r for r in texts if r.ok]
    assert ok_text
    assert all("#" not in r.content.text for r in ok_text if r.content)
    ok_json = [r for r in pages if r.content is not None]
    assert ok_json
    assert all(r.content is not None and r.content.json()["pages"] for r in ok_json)


async def test_extract_batch(sim: Simulator) -> None:
    async with client_for(sim) as client:
        results = [r async for r in client.batches.iter_results("bat-x")]
        with pytest.raises(ValueError, match="does not exist for 'extract_v2'"):
            [r async for r in client.batches.iter_results("bat-x", result="markdown")]
    assert len(results) == 25
    for r in results:
        assert (r.error.kind if r.error else None) == expected_kind(r)
        if r.content is not None:
            assert r.content.kind == "json"
            assert json.loads(r.content.data)["source_file"] == r.file_id


async def test_unfinished_batch_raises_or_is_waited_for(sim: Simulator) -> None:
    async with client_for(sim) as client:
        with pytest.raises(BatchNotFinishedError) as caught:
            [r async for r in client.batches.iter_results("bat-live")]
        assert caught.value.batch_id == "bat-live"
        assert caught.value.status == "PENDING"
        assert "wait=True" in str(caught.value)
        results = [r async for r in client.batches.iter_results("bat-live", wait=True)]
    assert len(results) == 10


async def test_resume_and_transient_faults(sim: Simulator) -> None:
    sim.faults = Faults(server_error=Trigger(every=3, on="parse_v2_job"), error_retry_after="0")
    async with client_for(sim) as client:
        full = [r async for r in client.batches.iter_results("bat-p", concurrency=3)]
        tail = [r async for r in client.batches.iter_results("bat-p", start_offset=70)]
    assert "server_error" in sim.stats.faults()
    assert [r.error.kind if r.error else None for r in full] == [expected_kind(r) for r in full]
    assert [r.index for r in tail] == list(range(70, 80))
    assert [r.file_id for r in tail] == [r.file_id for r in full[70:]]


async def test_bad_arguments_fail_before_any_request(sim: Simulator) -> None:
    async with client_for(sim) as client:
        with pytest.raises(ValueError, match="result"):
            client.batches.iter_results("bat-p", result="pdf")
        with pytest.raises(ValueError, match="concurrency"):
            client.batches.iter_results("bat-p", concurrency=0)
        with pytest.raises(ValueError, match="start_offset"):
            client.batches.iter_results("bat-p", start_offset=-1)
        with pytest.raises(ValueError, match="poll_interval"):
            client.batches.iter_results("bat-p", wait=True, poll_interval=0)
    assert sim.stats.requests == 0
