"""What the simulator's v2 product jobs give beyond the job itself: the per-page
shapes the SDK requires, presigned result URLs on a second listener (no API key
there), fast-tier refusals, inline limits, and batch results that come late."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import trustme
from _sim_http import Reply, session

from aiobatch.testing import Faults, SimBatch, SimClock, Simulator
from aiobatch.testing._directories import display_name_of
from aiobatch.testing._v2jobs import job_outcome

T0 = 1_800_000_000.0


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(clock=SimClock.frozen_at(T0), presigned_ttl=60) as s:
        s.batches.add(SimBatch(batch_id="bat-p", files=30))
        s.batches.add(SimBatch(batch_id="bat-fast", files=30, tier="fast"))
        s.batches.add(SimBatch(batch_id="bat-x", files=30, job_type="extract_v2"))
        s.advance(100)
        yield s


async def get(sim: Simulator, path: str, params: Any = None) -> Reply:
    async with session(sim) as s, s.get(path, params=params) as resp:
        return Reply(resp.status, resp.headers, await resp.read())


async def completed(sim: Simulator, batch_id: str) -> str:
    reply = await get(sim, f"/api/v2/batches/{batch_id}", {"expand": "results"})
    refs = [r["job_reference"] for r in reply.json()["results"] if r["job_reference"]]
    return str(next(r["id"] for r in refs if job_outcome(r["id"]) == "COMPLETED"))


def expands(*names: str) -> list[tuple[str, str]]:
    return [("expand", n) for n in names]


async def test_pages_carry_what_the_sdk_requires(sim: Simulator) -> None:
    job = await completed(sim, "bat-p")
    body = (await get(sim, f"/api/v2/parse/{job}", expands("markdown", "items", "usage"))).json()
    assert all(p["success"] is True for p in body["markdown"]["pages"])
    for page in body["items"]["pages"]:
        assert (page["page_width"], page["page_height"], page["success"]) == (612.0, 792.0, True)
        assert all(isinstance(item["md"], str) for item in page["items"])
    assert body["job"]["usage"]["credits"] > 0
    assert body["job"]["tier"] == "cost_effective"


async def test_presigned_urls_are_served_without_the_key(sim: Simulator) -> None:
    job = await completed(sim, "bat-p")
    params = expands("markdown_full", "markdown_full_content_metadata", "items_content_metadata")
    body = (await get(sim, f"/api/v2/parse/{job}", params)).json()
    meta = body["result_content_metadata"]
    md, items = meta["md"], meta["json"]
    assert md["exists"] is True
    assert md["presigned_url"].startswith(sim.storage_url + "/")
    assert sim.storage_url != sim.base_url
    async with aiohttp.ClientSession() as s:  # no API key, no client headers
        async with s.get(md["presigned_url"]) as resp:
            assert resp.status == 200
            data = await resp.read()
        assert data.decode() == body["markdown_full"]
        assert len(data) == md["size_bytes"]
        async with s.get(items["presigned_url"]) as resp:
            assert resp.status == 200
            assert (await resp.json())["pages"]
        # The API key sent to storage: refused, as S3 refuses two auth mechanisms.
        headers = {"Authorization": f"Bearer {sim.api_key}"}
        async with s.get(md["presigned_url"], headers=headers) as resp:
            assert resp.status == 400
        tampered = md["presigned_url"].replace("X-Amz-Signature=", "X-Amz-Signature=0")
        async with s.get(tampered) as resp:
            assert resp.status == 403
        sim.advance(61)  # past presigned_ttl on the simulator's clock
        async with s.get(md["presigned_url"]) as resp:
            assert resp.status == 403
            assert b"Request has expired" in await resp.read()
    assert [r.status for r in sim.storage_requests] == [200, 200, 400, 403, 403]
    assert "Authorization" in sim.storage_requests[2].headers
    fresh = (await get(sim, f"/api/v2/parse/{job}", params)).json()
    url = fresh["result_content_metadata"]["md"]["presigned_url"]
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        assert resp.status == 200


async def test_fast_tier_refuses_markdown_and_items(sim: Simulator) -> None:
    job = await completed(sim, "bat-fast")
    for name in ("markdown", "markdown_full", "items", "markdown_content_metadata"):
        reply = await get(sim, f"/api/v2/parse/{job}", expands("text_full", name))
        assert reply.status == 400
        assert "not available for FAST tier jobs" in reply.json()["detail"]
    ok = (await get(sim, f"/api/v2/parse/{job}", expands("text", "text_full"))).json()
    assert ok["job"]["tier"] == "fast"
    assert ok["text_full"]


async def test_inline_limit_refuses_or_empties(sim: Simulator) -> None:
    job = await completed(sim, "bat-p")
    sim.faults = Faults(inline_result_limit=10)
    too_big = await get(sim, f"/api/v2/parse/{job}", expands("markdown_full"))
    assert too_big.status == 413
    assert "markdown_full_content_metadata" in too_big.json()["detail"]
    sim.faults = Faults(inline_result_limit=10, inline_over_limit="empty")
    body = (await get(sim, f"/api/v2/parse/{job}", expands("markdown_full", "markdown"))).json()
    assert (body["job"]["status"], body["markdown_full"], body["markdown"]) == (
        "COMPLETED",
        "",
        {"pages": []},
    )


async def test_extract_jobs_carry_every_required_field(sim: Simulator) -> None:
    job = await completed(sim, "bat-x")
    plain = (await get(sim, f"/api/v2/extract/{job}")).json()
    assert {"project_id", "created_at", "updated_at", "file_input"} <= set(plain)
    assert plain["file_input"].startswith("dfl-")
    assert plain["usage"] is None
    full = await get(sim, f"/api/v2/extract/{job}", expands(*("configuration", "usage")))
    assert full.json()["configuration"]["data_schema"]
    assert full.json()["usage"]["credits"] > 0
    assert (await get(sim, f"/api/v2/extract/{job}", expands("everything"))).status == 422


async def test_results_stay_null_for_a_while_after_the_end(sim: Simulator) -> None:
    sim.faults = Faults(results_delay=30)
    sim.batches.add(SimBatch(batch_id="bat-late", files=5, start_delay=0, rate=5))
    sim.advance(1)  # the batch completes now
    late = (await get(sim, "/api/v2/batches/bat-late", {"expand": "results"})).json()
    assert (late["status"], late["results"]) == ("COMPLETED", None)
    sim.advance(30)
    later = (await get(sim, "/api/v2/batches/bat-late", {"expand": "results"})).json()
    assert len(later["results"]) == 5


async def test_directory_listing_names_every_source_file(sim: Simulator) -> None:
    sim.batches.add(
        SimBatch(batch_id="bat-h", source_directory_id="dir-h", files=7, hostile_names=True)
    )
    sim.advance(100)
    reply = await get(sim, "/api/v2/batches/bat-h", {"expand": "results"})
    file_ids = [r["source_directory_file_id"] for r in reply.json()["results"]]
    seen: list[dict[str, Any]] = []
    token = None
    while True:
        params = {"page_size": 3, **({"page_token": token} if token else {})}
        page = (await get(sim, "/api/v1/beta/directories/dir-h/files", params)).json()
        seen += page["items"]
        token = page["next_page_token"]
        if not token:
            break
    assert [f["id"] for f in seen] == file_ids
    assert {f["directory_id"] for f in seen} == {"dir-h"}
    assert seen[0]["display_name"] == "../../etc/passwd"
    [k] = [i for i in (1, 2, 4, 5) if display_name_of(file_ids[i]).startswith("document-")][:1]
    name = display_name_of(file_ids[k])
    one = await get(sim, "/api/v1/beta/directories/dir-h/files", {"display_name": name})
    assert [f["id"] for f in one.json()["items"]] == [file_ids[k]]
    assert (await get(sim, "/api/v1/beta/directories/dir-none/files")).status == 404
    bad = await get(sim, "/api/v1/beta/directories/dir-h/files", {"page_token": "%%%"})
    assert bad.status == 422


async def test_storage_over_tls() -> None:
    # Real presigned URLs are HTTPS on another host: storage_ssl serves them so.
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    async with Simulator(clock=SimClock.frozen_at(T0), storage_ssl=server) as sim:
        sim.batches.add(SimBatch(batch_id="bat-p", files=10))
        sim.advance(100)
        assert sim.storage_url.startswith("https://")
        job = await completed(sim, "bat-p")
        body = (await get(sim, f"/api/v2/parse/{job}", expands("text_content_metadata"))).json()
        url = body["result_content_metadata"]["text"]["presigned_url"]
        assert url.startswith("https://")
        async with aiohttp.ClientSession() as s, s.get(url, ssl=client) as resp:
            assert resp.status == 200
            assert (await resp.text()).startswith(" dfl-")
