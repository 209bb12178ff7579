"""``client.directories``: a directory's files (cursor pages of ``page_size`` /
``page_token``), against the simulator and against a server that caps the page."""

from __future__ import annotations

import pytest
from _servers import serve
from aiohttp import web

from aiobatch import BatchClient, RetryPolicy
from aiobatch.testing import SimBatch, Simulator
from aiobatch.testing._batches import file_id_of
from aiobatch.testing._directories import _display_name


async def test_every_file_of_a_directory_with_its_display_name(policy: RetryPolicy) -> None:
    async with Simulator() as sim:
        a = SimBatch(batch_id="bat-a", files=250, source_directory_id="dir-1", hostile_names=True)
        sim.batches.add(a)
        sim.batches.add(SimBatch(batch_id="bat-b", files=5, source_directory_id="dir-2"))
        async with BatchClient(sim.api_key, base_url=sim.base_url, retry=policy) as c:
            files = [f async for f in c.directories.iter_files("dir-1", page_size=100)]
            page = await c.directories.list_files("dir-2")
        log = [r for r in sim.stats.log if "/directories/" in r.path]
    assert [f.id for f in files] == [file_id_of("bat-a", i) for i in range(250)]
    assert [f.display_name for f in files] == [_display_name(a, i) for i in range(250)]
    assert {f.directory_id for f in files} == {"dir-1"}
    assert [f.id for f in page.items] == [file_id_of("bat-b", i) for i in range(5)]
    assert page.next_page_token is None
    # three cursor pages, the token sent back as page_token
    assert [("page_token" in r.query, r.query.get("page_size")) for r in log[:3]] == [
        (False, "100"),
        (True, "100"),
        (True, "100"),
    ]


async def test_a_page_capped_by_the_server_loses_nothing(policy: RetryPolicy) -> None:
    names = [f"f{n}.pdf" for n in range(23)]

    async def files(request: web.Request) -> web.Response:
        start = int(request.query.get("page_token", "0"))
        end = start + 7  # whatever page_size asked
        rows = [{"id": f"dfl-{n}", "display_name": names[n]} for n in range(start, min(end, 23))]
        return web.json_response({"items": rows, "next_page_token": str(end) if end < 23 else None})

    app = web.Application()
    app.router.add_get("/api/v1/beta/directories/{directory_id}/files", files)
    async with serve(app) as url, BatchClient("k", base_url=url, retry=policy) as c:
        got = [f async for f in c.directories.iter_files("dir-x", page_size=500)]
    assert [f.display_name for f in got] == names


async def test_arguments_are_checked_before_any_request(policy: RetryPolicy) -> None:
    async with BatchClient("k", base_url="http://127.0.0.1:9", retry=policy) as c:
        with pytest.raises(ValueError, match="directory_id must not be"):
            c.directories.iter_files("..")
        with pytest.raises(ValueError, match="page_token must be a non-empty str"):
            await c.directories.list_files("dir-1", page_token="")
