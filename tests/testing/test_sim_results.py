"""The simulator's parse and classify endpoints, and hostile item names."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest

from aiobatch.testing import Faults, SimJob, Simulator, Trigger
from aiobatch.testing._results import HOSTILE_NAMES

PARSE = SimJob(job_id="bjb-p", total_items=120, large_result_every=10, large_result_bytes=3_000_000)
CLASSIFY = SimJob(job_id="bjb-c", total_items=30, job_type="classify")
HOSTILE = SimJob(job_id="bjb-h", total_items=3 * len(HOSTILE_NAMES), hostile_names=True)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(jobs=[PARSE, CLASSIFY, HOSTILE]) as s:
        yield s


async def get(sim: Simulator, path: str, **params: str) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    async with (
        aiohttp.ClientSession(headers=headers) as s,
        s.get(sim.base_url + path, params=params) as r,
    ):
        return r.status, await r.read()


async def test_parse_results_follow_the_item_and_are_deterministic(sim: Simulator) -> None:
    statuses: dict[str | None, int] = {}
    sizes = []
    for item in sim.items("bjb-p"):
        if item.job_id is None:
            assert item.status in ("skipped", "cancelled", "pending")
            continue
        status = sim.parse_status(item.job_id)
        statuses[status] = statuses.get(status, 0) + 1
        code, body = await get(sim, f"/api/v1/parsing/job/{item.job_id}")
        if status is None:
            assert code == 404
            continue
        assert (code, msgspec.json.decode(body)) == (200, {"id": item.job_id, "status": status})
        code, body = await get(sim, f"/api/v1/parsing/job/{item.job_id}/result/markdown")
        if status != "SUCCESS":
            assert code == 400
            assert status in msgspec.json.decode(body)["detail"]
            continue
        assert code == 200
        assert body == sim.parse_result(item.job_id)
        doc = msgspec.json.decode(body)
        assert doc["markdown"].startswith(f"# {item.item_name}\n")
        assert doc["job_metadata"]["job_pages"] >= 1
        sizes.append(len(body))
    assert statuses.get("SUCCESS", 0) > 80
    assert statuses.get("ERROR", 0) > 0  # failed items and the ERROR share
    assert min(sizes) < 20_000 < 3_000_000 < max(sizes)  # bytes to megabytes


@pytest.mark.parametrize("kind", ["text", "json"])
async def test_other_kinds(sim: Simulator, kind: str) -> None:
    item = next(i for i in sim.items("bjb-p", "completed") if sim.parse_result(i.job_id or ""))
    code, body = await get(sim, f"/api/v1/parsing/job/{item.job_id}/result/{kind}")
    assert code == 200
    doc = msgspec.json.decode(body)
    assert set(doc) == {kind if kind == "text" else "pages", "job_metadata"}
    assert (await get(sim, f"/api/v1/parsing/job/{item.job_id}/result/html"))[0] == 404


async def test_unknown_processing_jobs_are_404(sim: Simulator) -> None:
    item = next(iter(sim.items("bjb-p", "completed")))
    assert item.job_id is not None
    forged = item.job_id[:-1] + ("1" if item.job_id[-1] != "1" else "2")
    for path in (f"/api/v1/parsing/job/{forged}", "/api/v1/parsing/job/nope/result/text"):
        assert (await get(sim, path))[0] == 404
    # a parse job id is not a classify job
    assert (await get(sim, f"/api/v1/classifier/jobs/{item.job_id}/results"))[0] == 404


async def test_classify_results_come_in_one_answer(sim: Simulator) -> None:
    # The endpoint takes no paging parameters: paging ones sent anyway are ignored
    # (as FastAPI does) and every result comes at once, with no token to follow.
    seen = 0
    for item in sim.items("bjb-c", "completed"):
        path = f"/api/v1/classifier/jobs/{item.job_id}/results"
        code, body = await get(sim, path)
        if code != 200:
            continue
        page = msgspec.json.decode(body)
        assert (await get(sim, path, page_size="1", page_token="t1")) == (code, body)
        rows = page["items"]
        assert page["next_page_token"] is None
        assert page["total_size"] == len(rows)
        seen += 1
        assert 1 <= len(rows) <= 3
        assert len({r["id"] for r in rows}) == len(rows)
        assert all(r["classify_job_id"] == item.job_id for r in rows)
        assert all(r["result"]["type"] for r in rows)
    assert seen > 10


async def test_hostile_names_only_when_asked(sim: Simulator) -> None:
    names = [i.item_name for i in sim.items("bjb-h")]
    assert names[::3] == list(HOSTILE_NAMES)
    assert "../../etc/passwd" in names
    assert any("\x00" in n for n in names)
    assert not any("\x00" in i.item_name or ".." in i.item_name for i in sim.items("bjb-p"))


async def test_fault_triggers_target_the_result_endpoints(sim: Simulator) -> None:
    sim.faults = Faults(rate_limit=Trigger(first=1, on="parse_result"))
    item = next(i for i in sim.items("bjb-p", "completed") if sim.parse_result(i.job_id or ""))
    assert (await get(sim, f"/api/v1/parsing/job/{item.job_id}"))[0] == 200
    assert (await get(sim, f"/api/v1/parsing/job/{item.job_id}/result/text"))[0] == 429
    assert (await get(sim, f"/api/v1/parsing/job/{item.job_id}/result/text"))[0] == 200
    with pytest.raises(ValueError, match="on must be"):
        Trigger(on="parse")
