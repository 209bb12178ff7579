"""The endpoints over real HTTP: shapes, validation, auth, determinism, jobs."""

from __future__ import annotations

import pytest
from _sim_http import API, call, get, post, session

from aiobatch.testing import Faults, SimClock, SimJob, Simulator
from aiobatch.testing.pytest_plugin import SimulatorFactory

JOB = "bjb-test-0001"


async def test_items_page_shape_and_paging(batch_simulator: Simulator) -> None:
    first = await get(batch_simulator, f"/{JOB}/items", limit=10)
    assert first.status == 200
    assert first.headers["Content-Type"].startswith("application/json")
    assert first.body.startswith(b'{"items":[{"item_id":"itm_')
    page = first.json()
    assert list(page) == ["items", "total_size"]  # no next_page_token unless asked
    assert page["total_size"] == 250
    assert [it["item_id"] for it in page["items"]] == [
        batch_simulator.item_id(JOB, i) for i in range(10)
    ]
    second = (await get(batch_simulator, f"/{JOB}/items", limit=10, offset=245)).json()
    assert len(second["items"]) == 5
    default = (await get(batch_simulator, f"/{JOB}/items")).json()
    assert len(default["items"]) == 100


async def test_status_filter_matches_ground_truth(batch_simulator: Simulator) -> None:
    truth = batch_simulator.item_ids(JOB, "failed")
    assert truth
    page = (await get(batch_simulator, f"/{JOB}/items", status="failed", limit=1000)).json()
    assert page["total_size"] == len(truth) == batch_simulator.count(JOB, "failed")
    assert [it["item_id"] for it in page["items"]] == truth
    assert {it["status"] for it in page["items"]} == {"failed"}


async def test_same_request_same_bytes_across_servers(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    jobs = [SimJob(job_id="bjb-a", total_items=20_000, seed=42)]
    one, two = await batch_simulator_factory(jobs), await batch_simulator_factory(jobs)
    a = await get(one, "/bjb-a/items", status="skipped", offset=300, limit=250)
    b = await get(two, "/bjb-a/items", status="skipped", offset=300, limit=250)
    assert a.status == 200
    assert a.body == b.body
    assert a.body == (await get(one, "/bjb-a/items", status="skipped", offset=300, limit=250)).body


async def test_401_without_or_with_a_wrong_key(batch_simulator: Simulator) -> None:
    for key in (None, "wrong"):
        async with session(batch_simulator, key=key) as s:
            reply = await call(s, "GET", f"/{JOB}/items")
        assert reply.status == 401
        assert reply.json() == {"detail": "Invalid API key"}
    assert batch_simulator.stats.faults() == []


async def test_auth_can_be_disabled(batch_simulator_factory: SimulatorFactory) -> None:
    sim = await batch_simulator_factory(api_key=None)
    async with session(sim, key=None) as s:
        assert (await call(s, "GET", f"/{JOB}")).status == 200


async def test_404_shapes(batch_simulator: Simulator) -> None:
    for path in ("/nope/items", "/nope", "/items/itm_deadbeef_0000001/processing-results"):
        reply = await get(batch_simulator, path)
        assert reply.status == 404
        assert isinstance(reply.json()["detail"], str)
    past_end = batch_simulator.item_id(JOB, 250)
    assert (await get(batch_simulator, f"/items/{past_end}/processing-results")).status == 404
    assert (await post(batch_simulator, "/nope/cancel", {})).status == 404
    assert (await get(batch_simulator, "/../../elsewhere")).json() == {"detail": "Not Found"}


@pytest.mark.parametrize(
    ("params", "loc", "kind"),
    [
        ({"limit": "ten"}, ["query", "limit"], "int_parsing"),
        ({"limit": "1.5"}, ["query", "limit"], "int_parsing"),
        ({"limit": 0}, ["query", "limit"], "greater_than_equal"),
        ({"limit": 1001}, ["query", "limit"], "less_than_equal"),
        ({"offset": -1}, ["query", "offset"], "greater_than_equal"),
        ({"status": "done"}, ["query", "status"], "enum"),
    ],
)
async def test_422_in_fastapi_shape(
    batch_simulator: Simulator, params: dict[str, object], loc: list[str], kind: str
) -> None:
    reply = await get(batch_simulator, f"/{JOB}/items", **params)
    assert reply.status == 422
    (error,) = reply.json()["detail"]
    assert error["loc"] == loc
    assert error["type"] == kind
    assert isinstance(error["msg"], str)
    assert error["msg"]


async def test_422_before_404_and_all_errors_at_once(batch_simulator: Simulator) -> None:
    reply = await get(batch_simulator, "/nope/items", limit="x", offset="y")
    assert reply.status == 422
    assert [e["loc"][1] for e in reply.json()["detail"]] == ["limit", "offset"]


async def test_limit_default_and_max_are_configurable(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    sim = await batch_simulator_factory(default_limit=7, max_limit=50)
    assert len((await get(sim, f"/{JOB}/items")).json()["items"]) == 7
    assert len((await get(sim, f"/{JOB}/items", limit=50)).json()["items"]) == 50
    too_big = (await get(sim, f"/{JOB}/items", limit=51)).json()["detail"][0]
    assert too_big["loc"] == ["query", "limit"]
    assert too_big["ctx"] == {"le": 50}


async def test_page_token_is_accepted(batch_simulator: Simulator) -> None:
    reply = await get(
        batch_simulator, f"/{JOB}/items", limit=5, page_token="b2Zmc2V0OjEw"
    )  # offset:10
    assert reply.json()["items"][0]["item_id"] == batch_simulator.item_id(JOB, 10)
    bad = await get(batch_simulator, f"/{JOB}/items", page_token="!!")
    assert bad.status == 422


async def test_processing_results(batch_simulator: Simulator) -> None:
    done = batch_simulator.item_ids(JOB, "completed")[3]
    reply = (await get(batch_simulator, f"/items/{done}/processing-results")).json()
    assert reply["item_id"] == done
    (result,) = reply["processing_results"]
    assert result["item_id"] == done
    assert result["job_type"] == "parse"
    assert result["job_config"]["job_name"] == "parse_raw_file_job"
    assert result["output_s3_path"].startswith("s3://")
    failed = batch_simulator.item_ids(JOB, "failed")[0]
    assert (await get(batch_simulator, f"/items/{failed}/processing-results")).json()[
        "processing_results"
    ] == []
    other_type = await get(
        batch_simulator, f"/items/{done}/processing-results", job_type="classify"
    )
    assert other_type.json()["processing_results"] == []
    bad = await get(batch_simulator, f"/items/{done}/processing-results", job_type="ocr")
    assert bad.status == 422


async def test_list_and_get_jobs(batch_simulator_factory: SimulatorFactory) -> None:
    jobs = [
        SimJob(job_id="bjb-1", total_items=10, mix={"completed": 1}),
        SimJob(job_id="bjb-2", total_items=10, job_type="classify", directory_id="dir-x"),
        SimJob(job_id="bjb-3", total_items=10, running=True),
    ]
    sim = await batch_simulator_factory(jobs)
    listed = (await get(sim, "")).json()
    assert listed["total_size"] == 3
    assert [j["id"] for j in listed["items"]] == ["bjb-1", "bjb-2", "bjb-3"]
    assert [j["id"] for j in (await get(sim, "", job_type="classify")).json()["items"]] == ["bjb-2"]
    assert [j["id"] for j in (await get(sim, "", status="running")).json()["items"]] == ["bjb-3"]
    assert [j["id"] for j in (await get(sim, "", directory_id="dir-x")).json()["items"]] == [
        "bjb-2"
    ]
    assert len((await get(sim, "", limit=1, offset=1)).json()["items"]) == 1
    assert (await get(sim, "", status="bogus")).status == 422
    one = (await get(sim, "/bjb-1")).json()
    assert one["job"]["status"] == "completed"
    assert one["job"]["processed_items"] == 10
    assert one["progress_percentage"] == 100.0


async def test_cancel_turns_pending_items_cancelled(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    mix = {"completed": 0.5, "pending": 0.5}
    sim = await batch_simulator_factory([SimJob(job_id="bjb-c", total_items=100, mix=mix)])
    assert sim.count("bjb-c", "pending") == 50
    reply = await post(sim, "/bjb-c/cancel", {"reason": "wrong directory"})
    assert reply.status == 200
    body = reply.json()
    assert body["job_id"] == "bjb-c"
    assert body["status"] == "cancelled"
    assert body["processed_items"] == 50
    assert "wrong directory" in body["message"]
    assert sim.count("bjb-c", "pending") == 0
    assert sim.count("bjb-c", "cancelled") == 50
    assert (await get(sim, "/bjb-c")).json()["job"]["status"] == "cancelled"
    again = await post(sim, "/bjb-c/cancel")  # no body at all: still fine, and idempotent
    assert again.status == 200
    finished = await batch_simulator_factory(
        [SimJob(job_id="bjb-f", total_items=5, mix={"completed": 1})]
    )
    # Cancelling a finished job is not published: accepted, nothing changes...
    done = await post(finished, "/bjb-f/cancel", {})
    assert (done.status, done.json()["status"]) == (200, "completed")
    assert finished.count("bjb-f", "completed") == 5
    # ...unless the knob refuses it.
    finished.faults = Faults(refuse_cancel_finished=True)
    assert (await post(finished, "/bjb-f/cancel", {})).status == 400


async def test_create_job(batch_simulator: Simulator) -> None:
    config = {"type": "parse", "parameters": {"tier": "fast"}}
    made = await post(batch_simulator, "", {"job_config": config, "directory_id": "dir-new"})
    assert made.status == 201
    job = made.json()
    assert job["status"] == "pending"
    assert job["directory_id"] == "dir-new"
    assert job["total_items"] == 25
    assert job["id"] in batch_simulator.job_ids
    two = batch_simulator.item_ids("bjb-test-0001")[:2]
    by_ids = (await post(batch_simulator, "", {"job_config": config, "item_ids": two})).json()
    assert by_ids["total_items"] == 2
    batch_simulator.advance(2.0)
    assert (await get(batch_simulator, f"/{job['id']}")).json()["job"]["status"] == "running"
    listed = (await get(batch_simulator, "")).json()
    assert listed["total_size"] == 3


@pytest.mark.parametrize(
    "body",
    [
        {"job_config": {}},
        {"job_config": {}, "directory_id": "d", "item_ids": ["x"]},
        {"directory_id": "d"},
        {"job_config": [], "directory_id": "d"},
        {"job_config": {}, "item_ids": "abc"},
        ["not", "an", "object"],
    ],
)
async def test_create_job_422(batch_simulator: Simulator, body: object) -> None:
    reply = await post(batch_simulator, "", body)
    assert reply.status == 422
    assert isinstance(reply.json()["detail"], list)


async def test_create_job_rejects_broken_json(batch_simulator: Simulator) -> None:
    reply = await post(batch_simulator, "", data=b'{"job_config": ')
    assert reply.status == 422
    assert reply.json()["detail"][0]["type"] == "json_invalid"


async def test_running_job_over_http_with_injected_clock(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    job = SimJob(job_id="bjb-live", total_items=100, running=True, rate=10.0, concurrency=5)
    sim = await batch_simulator_factory([job], clock=SimClock.frozen_at(1_750_000_000))
    status = (await get(sim, "/bjb-live")).json()
    assert status["job"]["status"] == "running"
    assert status["progress_percentage"] == 0.0
    sim.advance(3.0)
    page = (await get(sim, "/bjb-live/items", status="processing")).json()
    assert [it["item_id"] for it in page["items"]] == [
        sim.item_id("bjb-live", i) for i in range(26, 31)
    ]
    assert (await get(sim, "/bjb-live")).json()["progress_percentage"] == 26.0
    sim.advance(100.0)
    assert (await get(sim, "/bjb-live")).json()["job"]["status"] == "completed"


async def test_status_filtered_offset_scan_of_a_live_job_skips_items(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    """Why a client must not trust offset paging of a moving filter: pending
    items leave the front of the list between two pages."""
    job = SimJob(job_id="bjb-live", total_items=200, running=True, rate=10.0, concurrency=5)
    sim = await batch_simulator_factory([job], clock=SimClock.frozen_at(1_750_000_000))
    sim.advance(3.0)
    expected = sim.item_ids("bjb-live", "pending")
    seen: list[str] = []
    offset = 0
    while True:
        page = (await get(sim, "/bjb-live/items", status="pending", offset=offset, limit=20)).json()
        seen += [it["item_id"] for it in page["items"]]
        offset += len(page["items"])
        if offset >= page["total_size"]:
            break
        sim.advance(1.0)  # ten more items start between pages
    assert len(seen) < len(expected)
    assert set(expected) - set(seen)  # never listed, though pending when the scan began
    assert len(set(seen)) == len(seen)


async def test_unknown_route_and_method_are_json(batch_simulator: Simulator) -> None:
    reply = await post(batch_simulator, f"/{JOB}/items", {})
    assert reply.status == 405
    assert reply.json() == {"detail": "Method Not Allowed"}
    assert reply.headers["Allow"]
    assert API.startswith("/api/v1/beta")


async def test_nullable_job_fields_are_explicit_nulls(
    batch_simulator_factory: SimulatorFactory,
) -> None:
    sim = await batch_simulator_factory(
        [SimJob(job_id="bjb-live", total_items=10, running=True, start_delay=5)]
    )
    job = (await get(sim, "/bjb-live")).json()["job"]
    assert job["status"] == "pending"
    assert (job["started_at"], job["completed_at"], job["error_message"]) == (None, None, None)
