"""The simulator's v2 product jobs (``/api/v2/parse/{id}``, ``/api/v2/extract/{id}``)
over raw HTTP: the jobs a batch hands out, their expands, deterministic outcomes
(completed, failed, missing), validation and fault triggers."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _sim_http import Reply, session

from aiobatch.testing import Faults, SimBatch, SimClock, Simulator, Trigger
from aiobatch.testing._faults import ENDPOINTS
from aiobatch.testing._v2jobs import job_outcome

T0 = 1_800_000_000.0


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(clock=SimClock.frozen_at(T0)) as s:
        s.batches.add(SimBatch(batch_id="bat-p", files=60, error_every=10))
        s.batches.add(SimBatch(batch_id="bat-x", files=30, job_type="extract_v2"))
        s.batches.add(SimBatch(batch_id="bat-live", files=30, start_delay=1000))
        s.advance(100)
        yield s


async def get(sim: Simulator, path: str, params: Any = None) -> Reply:
    async with session(sim) as s, s.get(path, params=params) as resp:
        return Reply(resp.status, resp.headers, await resp.read())


async def refs(sim: Simulator, batch_id: str) -> list[dict[str, Any]]:
    reply = await get(sim, f"/api/v2/batches/{batch_id}", {"expand": "results"})
    return [r["job_reference"] for r in reply.json()["results"] if r["job_reference"]]


async def test_parse_jobs_of_a_batch(sim: Simulator) -> None:
    outcomes: Counter[str] = Counter()
    for ref in await refs(sim, "bat-p"):
        assert ref["type"] == "parse_v2"  # what the official SDK 2.19.0 requires
        params = [("expand", "markdown_full"), ("expand", "text_full"), ("expand", "markdown")]
        reply = await get(sim, f"/api/v2/parse/{ref['id']}", params)
        again = await get(sim, f"/api/v2/parse/{ref['id']}", params)
        assert reply.body == again.body  # deterministic per job id
        if reply.status == 404:
            outcomes["MISSING"] += 1
            continue
        assert reply.status == 200
        body = reply.json()
        job = body["job"]
        assert job["id"] == ref["id"]
        # Every field of the SDK's Job, the nullable ones as explicit nulls.
        assert set(job) == {
            "id",
            "project_id",
            "status",
            "error_message",
            "name",
            "tier",
            "created_at",
            "updated_at",
            "usage",
            "user_metadata",
        }
        outcomes[job["status"]] += 1
        if job["status"] == "FAILED":
            assert job["error_message"]
            assert "markdown_full" not in body
        else:
            assert job["error_message"] is None
            assert body["markdown_full"].startswith("# dfl-")
            assert "#" not in body["text_full"]
            pages = body["markdown"]["pages"]
            assert "".join(p["markdown"] for p in pages) == body["markdown_full"]
            assert "items" not in body
            assert "job_metadata" not in body
    assert outcomes["COMPLETED"] > outcomes["FAILED"] > 0
    assert outcomes["MISSING"] > 0


async def test_parse_expand_repeated_and_validation(sim: Simulator) -> None:
    ref = next(r for r in await refs(sim, "bat-p") if job_outcome(r["id"]) == "COMPLETED")
    path = f"/api/v2/parse/{ref['id']}"
    body = (await get(sim, path, [("expand", "items"), ("expand", "job_metadata")])).json()
    assert body["items"]["pages"]
    assert body["job_metadata"]["job_pages"] == len(body["items"]["pages"])
    # FastAPI does not split commas: a comma-joined value is one unknown value.
    joined = await get(sim, path, {"expand": "items,job_metadata"})
    assert joined.status == 422
    assert "items,job_metadata" in joined.body.decode()
    bad = await get(sim, f"/api/v2/parse/{ref['id']}", {"expand": "everything"})
    assert bad.status == 422


async def test_extract_jobs_and_wrong_kinds(sim: Simulator) -> None:
    statuses: Counter[str] = Counter()
    for ref in await refs(sim, "bat-x"):
        assert ref["type"] == "extract_v2"
        reply = await get(sim, f"/api/v2/extract/{ref['id']}")
        if reply.status == 404:
            statuses["MISSING"] += 1
            continue
        job = reply.json()
        statuses[job["status"]] += 1
        assert job["configuration_id"] == "cfg-sim-0001"
        if job["status"] == "COMPLETED":
            assert job["extract_result"]["source_file"].startswith("dfl-")
        else:
            assert job["extract_result"] is None
            assert job["error_message"]
        # An extract job is not a parse job.
        assert (await get(sim, f"/api/v2/parse/{ref['id']}")).status == 404
    assert statuses["COMPLETED"] > 0
    assert (await get(sim, "/api/v2/extract/ext-unknown")).status == 404
    assert (await get(sim, "/api/v2/parse/par-unknown")).status == 404


async def test_faults_target_the_v2_job_routes(sim: Simulator) -> None:
    assert {"parse_v2_job", "extract_v2_job"} <= set(ENDPOINTS)
    ref = (await refs(sim, "bat-x"))[0]
    sim.faults = Faults(server_error=Trigger.always("extract_v2_job"))
    assert (await get(sim, f"/api/v2/extract/{ref['id']}")).status >= 500
    assert (await get(sim, "/api/v2/batches/bat-x")).status == 200
    sim.faults = Faults(rate_limit=Trigger.always("parse_v2_job"))
    assert (await get(sim, "/api/v2/parse/par-unknown")).status == 429
