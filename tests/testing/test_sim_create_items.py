"""``POST /batch-processing`` with ``item_ids``: a job of exactly those items
(same ids and names, pending, then progressing), each create recorded, unknown
ids and malformed configurations refused with a 422."""

from __future__ import annotations

import pytest
from _sim_http import get, post

from aiobatch.testing import Faults, SimClock, SimJob, Trigger
from aiobatch.testing.pytest_plugin import SimulatorFactory

SRC = "bjb-src"


async def test_a_job_of_exactly_the_given_items(batch_simulator_factory: SimulatorFactory) -> None:
    sim = await batch_simulator_factory(
        [SimJob(job_id=SRC, total_items=300, seed=3)], clock=SimClock.frozen_at()
    )
    failed = list(sim.items(SRC, "failed"))
    ids = [i.item_id for i in failed]
    config = {"type": "parse", "parameters": {"tier": "fast"}}
    made = await post(sim, "?project_id=p-1", {"job_config": config, "item_ids": ids})
    assert made.status == 201
    job = made.json()
    assert (job["status"], job["total_items"]) == ("pending", len(ids))
    new = list(sim.items(job["id"]))
    assert [(i.item_id, i.item_name) for i in new] == [(i.item_id, i.item_name) for i in failed]
    assert {i.status for i in new} == {"pending"}
    listed = (await get(sim, f"/{job['id']}/items", limit=1000)).json()["items"]
    assert [i["item_id"] for i in listed] == ids
    [record] = sim.creates
    assert (record.job_id, record.item_ids, record.job_config) == (job["id"], tuple(ids), config)
    assert (record.directory_id, record.project_id) == (None, "p-1")
    sim.advance(3600)  # then they run, on the simulator's clock
    assert sim.job(job["id"]).job.status == "completed"
    assert {i.status for i in sim.items(job["id"])} <= {
        "completed",
        "failed",
        "skipped",
        "cancelled",
    }
    assert [i.item_id for i in sim.items(job["id"])] == ids


async def test_unknown_or_repeated_item_ids_are_a_422(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    sim = await batch_simulator_factory([SimJob(job_id=SRC, total_items=10)])
    good = sim.item_id(SRC, 1)
    for ids, bad_at in (
        ([good, "itm_nope_0000001"], 1),
        ([sim.item_id(SRC, 10)], 0),  # past the end of the job
        ([good, good], 1),
    ):
        reply = await post(sim, "", {"job_config": {"type": "parse"}, "item_ids": ids})
        assert reply.status == 422
        assert [d["loc"] for d in reply.json()["detail"]] == [["body", "item_ids", bad_at]]
    assert sim.creates == []


@pytest.mark.parametrize(
    ("config", "loc"),
    [
        ({"type": "summarise"}, ["body", "job_config", "type"]),
        ({"job_type": 3}, ["body", "job_config", "job_type"]),
        ({"parameters": "fast"}, ["body", "job_config", "parameters"]),
    ],
)
async def test_malformed_configurations_are_a_422(
    batch_simulator_factory: SimulatorFactory, config: dict[str, object], loc: list[object]
) -> None:
    sim = await batch_simulator_factory([SimJob(job_id=SRC, total_items=10)])
    reply = await post(sim, "", {"job_config": config, "item_ids": [sim.item_id(SRC, 0)]})
    assert reply.status == 422
    assert [d["loc"] for d in reply.json()["detail"]] == [loc]


async def test_what_the_schema_allows_is_accepted(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    # No field of job_config is required; both sources at once is not documented
    # as an error (item_ids then decide the items).
    sim = await batch_simulator_factory([SimJob(job_id=SRC, total_items=10)])
    ids = [sim.item_id(SRC, 0), sim.item_id(SRC, 1)]
    body = {"job_config": {}, "item_ids": ids, "directory_id": "dir-x"}
    made = await post(sim, "", body)
    assert made.status == 201
    assert made.json()["total_items"] == 2
    assert (await post(sim, "", {"job_config": {}, "directory_id": "d"})).status == 201
    neither = await post(sim, "", {"job_config": {}})
    assert neither.status == 422


async def test_processing_results_carry_the_job_config(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    config = {"type": "parse", "parameters": {"tier": "agentic"}}
    sim = await batch_simulator_factory([SimJob(job_id=SRC, total_items=20, job_config=config)])
    done = sim.item_ids(SRC, "completed")[0]
    results = (await get(sim, f"/items/{done}/processing-results")).json()
    assert results["processing_results"][0]["job_config"] == config


async def test_a_create_can_fail_part_way(batch_simulator_factory: SimulatorFactory) -> None:
    sim = await batch_simulator_factory([SimJob(job_id=SRC, total_items=10)])
    sim.faults = Faults(server_error=Trigger(after=2, first=1, on="create"))
    codes = []
    for k in range(4):
        body = {"job_config": {"type": "parse"}, "item_ids": [sim.item_id(SRC, k)]}
        codes.append((await post(sim, "", body)).status)
    assert codes == [201, 201, 503, 201]
    assert [r.item_ids for r in sim.creates] == [
        (sim.item_id(SRC, 0),),
        (sim.item_id(SRC, 1),),
        (sim.item_id(SRC, 3),),
    ]


@pytest.mark.parametrize(("page_size", "status"), [(0, 422), (1, 201), (1000, 201), (1001, 422)])
async def test_create_page_size_is_1_to_1000(
    batch_simulator_factory: SimulatorFactory, page_size: int, status: int
) -> None:
    sim = await batch_simulator_factory([SimJob(job_id=SRC, total_items=10)])
    body = {"job_config": {}, "directory_id": "d", "page_size": page_size}
    reply = await post(sim, "", body)
    assert reply.status == status
    if status == 422:
        assert [d["loc"] for d in reply.json()["detail"]] == [["body", "page_size"]]
