"""``client.jobs.retry_failed``: chunked re-runs of a 10,000-item job, a create
failing part-way and a rerun that creates no duplicates, an ambiguous failure,
dry runs, the configuration's origin."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from wf_support import FakeTime

from aiobatch import (
    BatchClient,
    InternalServerError,
    MissingJobConfigError,
    RetryChunk,
    RetryFailedError,
    RetryPlan,
    UnprocessableEntityError,
)
from aiobatch._rerun.plan import chunk_key
from aiobatch.testing import Faults, SimClock, SimJob, Simulator, Trigger

BIG = "bjb-retry-big"
ALLFAILED = "bjb-retry-allfailed"
CONFIG = {"type": "parse", "parameters": {"tier": "agentic", "lang": "en"}}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    jobs = [
        SimJob(
            job_id=BIG,
            total_items=10_000,
            seed=5,
            mix={"completed": 0.7, "failed": 0.25, "cancelled": 0.05},
            job_config=CONFIG,
        ),
        SimJob(job_id=ALLFAILED, total_items=30, mix={"failed": 1.0}),
    ]
    async with Simulator(jobs=jobs, clock=SimClock.frozen_at()) as s:
        yield s


def client_for(sim: Simulator) -> BatchClient:
    policy = FakeTime(sim).policy()  # item-ids jobs need a project
    return BatchClient(api_key=sim.api_key, base_url=sim.base_url, retry=policy, project_id="prj-1")


def submitted(sim: Simulator) -> Counter[str]:
    return Counter(i for record in sim.creates for i in record.item_ids or ())


async def test_chunks_of_a_10k_item_job(sim: Simulator) -> None:
    failed = sim.item_ids(BIG, "failed")
    assert len(failed) > 2000
    heard: list[RetryChunk] = []
    async with client_for(sim) as client:
        plan = await client.jobs.retry_failed(BIG, chunk_size=500, on_created=heard.append)
    assert plan.complete
    assert plan.found == len(failed)
    assert [c.size for c in plan.created] == [500] * (len(failed) // 500) + (
        [len(failed) % 500] if len(failed) % 500 else []
    )
    assert submitted(sim) == Counter(failed)  # every failed item, exactly once
    assert plan.job_ids == [r.job_id for r in sim.creates]
    assert heard == plan.created
    assert plan.not_submitted == []
    assert plan.config_source is not None
    for record in sim.creates:
        assert record.job_config == CONFIG  # the original configuration
        assert sim.item_ids(record.job_id) == list(record.item_ids or ())
        assert {i.status for i in sim.items(record.job_id)} == {"pending"}


async def test_statuses_and_an_explicit_config(sim: Simulator) -> None:
    config = {"type": "parse", "parameters": {"tier": "fast"}}
    async with client_for(sim) as client:
        plan = await client.jobs.retry_failed(
            BIG, statuses=["failed", "cancelled"], job_config=config, chunk_size=4000
        )
    wanted = sim.item_ids(BIG, "failed") + sim.item_ids(BIG, "cancelled")
    assert submitted(sim) == Counter(wanted)
    assert len(plan.created) == -(-len(wanted) // 4000)
    assert plan.config_source == "job_config argument"
    assert {r.job_config["parameters"]["tier"] for r in sim.creates} == {"fast"}


async def test_a_create_failing_part_way_then_a_rerun_without_duplicates(sim: Simulator) -> None:
    failed = sim.item_ids(BIG, "failed")
    sim.faults = Faults(server_error=Trigger(after=2, first=1, on="create"))
    async with client_for(sim) as client:
        with pytest.raises(RetryFailedError) as caught:
            await client.jobs.retry_failed(BIG, chunk_size=500)
        plan = caught.value.plan
        assert isinstance(caught.value.error, InternalServerError)
        assert len(plan.created) == 2
        # A 503 does not prove the job was not made: the chunk is uncertain.
        [doubt] = plan.uncertain
        assert doubt.attempted_at is not None
        assert len(plan.pending) == len(plan.chunks) - 3
        assert sorted(plan.not_submitted) == sorted(set(failed) - set(submitted(sim)))
        # What the state file would hold, written and read back:
        saved = RetryPlan.from_json(json.loads(json.dumps(plan.to_json())))
        again = await client.jobs.retry_failed(BIG, chunk_size=500, already_created=saved)
    assert again.complete
    assert len(again.earlier) == 2
    assert again.chunks[0].item_ids == doubt.item_ids  # no job holds it: submitted again
    assert submitted(sim) == Counter(failed)  # all of them, none twice
    assert again.job_ids == [r.job_id for r in sim.creates]
    async with client_for(sim) as client:  # a third run has nothing left to do
        third = await client.jobs.retry_failed(BIG, chunk_size=500, already_created=again)
    assert third.chunks == []
    assert len(sim.creates) == len(again.job_ids)


async def test_a_lost_answer_then_the_rerun_finds_the_job(sim: Simulator) -> None:
    # The job is created, then the answer is lost: the rerun looks for it.
    sim.faults = Faults(reset_mid_body=Trigger(after=1, first=1, on="create"))
    async with client_for(sim) as client:
        with pytest.raises(RetryFailedError) as caught:
            await client.jobs.retry_failed(BIG, chunk_size=1000)
        plan = caught.value.plan
        [doubt] = plan.uncertain
        assert doubt.job_id is None
        assert len(sim.creates) == 2  # the server did make the second job
        again = await client.jobs.retry_failed(BIG, chunk_size=1000, already_created=plan)
    assert submitted(sim) == Counter(sim.item_ids(BIG, "failed"))  # none twice
    assert again.complete
    assert again.uncertain == []
    assert [c.job_id for c in again.earlier] == [r.job_id for r in sim.creates[:2]]
    assert again.earlier[1].item_ids == doubt.item_ids


async def test_a_429_on_create_is_retried(sim: Simulator) -> None:
    sim.faults = Faults(rate_limit=Trigger(first=1, on="create"), retry_after="0")
    async with client_for(sim) as client:
        plan = await client.jobs.retry_failed(ALLFAILED, job_config=CONFIG)
    assert plan.complete
    assert sim.stats.faults() == ["rate_limit"]
    assert submitted(sim) == Counter(sim.item_ids(ALLFAILED))


async def test_dry_run_only_counts(sim: Simulator) -> None:
    async with client_for(sim) as client:
        plan = await client.jobs.retry_failed(BIG, chunk_size=1000, dry_run=True)
    assert sim.creates == []
    assert not any(r.method == "POST" for r in sim.stats.log)
    assert sum(c.size for c in plan.chunks) == plan.found == sim.count(BIG, "failed")
    assert plan.created == []
    assert not plan.complete
    assert plan.config_source is not None  # the real run would find a configuration


async def test_no_config_anywhere_asks_for_job_config(sim: Simulator) -> None:
    async with client_for(sim) as client:
        with pytest.raises(MissingJobConfigError, match="pass job_config=") as caught:
            await client.jobs.retry_failed(ALLFAILED)
        assert caught.value.job_id == ALLFAILED
        assert sim.creates == []
        with pytest.raises(RetryFailedError) as refused:
            await client.jobs.retry_failed(ALLFAILED, job_config={"type": "summarise"})
        assert isinstance(refused.value.error, UnprocessableEntityError)
        assert refused.value.plan.created == []


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"statuses": "failed"}, ValueError),
        ({"statuses": ()}, ValueError),
        ({"statuses": ["broken"]}, ValueError),
        ({"chunk_size": 0}, ValueError),
        ({"job_config": ["x"]}, TypeError),
    ],
)
async def test_bad_arguments_fail_before_any_request(
    sim: Simulator, kw: dict[str, object], error: type[Exception]
) -> None:
    async with client_for(sim) as client:
        with pytest.raises(error):
            await client.jobs.retry_failed(BIG, **kw)  # type: ignore[arg-type]
    assert sim.stats.requests == 0


def test_a_plan_file_that_was_edited_is_refused() -> None:
    chunk = RetryChunk(0, ("itm_a", "itm_b"), "wrong-key", "bjb-1")
    data = {"source_job_id": "j", "created": [chunk.to_json()]}
    with pytest.raises(ValueError, match="does not match"):
        RetryPlan.from_json(data)


def test_every_field_of_a_plan_round_trips() -> None:
    def chunk(index: int, *ids: str, **kw: object) -> RetryChunk:
        return replace(RetryChunk(index, ids, chunk_key(ids)), **kw)  # type: ignore[arg-type]

    plan = RetryPlan(
        "bjb-src",
        ("failed", "cancelled"),
        2,
        dry_run=True,
        chunks=[chunk(2, "e", "f", attempted_at=1.8e9 + 0.5), chunk(3, "g")],
        earlier=[chunk(0, "a", "b", job_id="bjb-0"), chunk(1, "c", job_id="bjb-1", found=True)],
        uncertain=[chunk(2, "e", "f", attempted_at=1.8e9 + 0.5, candidates=("bjb-x", "bjb-y"))],
        found=7,
        config_source="item a",
    )
    back = RetryPlan.from_json(json.loads(json.dumps(plan.to_json())))
    assert back == plan
    assert [c.found for c in back.earlier] == [False, True]
    assert back.uncertain[0].candidates == ("bjb-x", "bjb-y")


@pytest.mark.parametrize("found", ["yes", 1])
def test_a_chunk_found_must_say_so_with_a_boolean_and_a_job(found: object) -> None:
    data = RetryChunk(0, ("a",), chunk_key(("a",)), "bjb-1", found=True).to_json()
    with pytest.raises(ValueError, match="found must be"):
        RetryChunk.from_json({**data, "found": found})
    with pytest.raises(ValueError, match="found must be"):
        RetryChunk.from_json({**data, "job_id": None})
