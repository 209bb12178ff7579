"""One bad id from the server is that item's ``invalid`` error, and the stream
goes on (issue 24, case 3).  A small hostile server, written apart from the
simulator, lists items whose ``job_id`` is ``..``, blank, or holds a newline
or a U+2028; before, the first of them ended the stream with a ``ValueError``
from the caller-argument check (the CLI exited 2, blaming the user)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, TypeVar

import pytest
from _servers import serve
from aiohttp import web
from cli_support import clear_env, cli

from aiobatch import BatchClient
from aiobatch._protocol import Query
from aiobatch.cli._download import INDEX_NAME

JOB = "bjb-hostile-ids"
KEY = "k-hostile"
M = TypeVar("M")
JOB_IDS = ["job-0", "..", "   ", "a\nb", "x\u2028y", ".", "job-6"]
GOOD = {0, 6}


def _item(i: int, job_id: str) -> dict[str, object]:
    return {
        "item_id": f"itm-{i}",
        "item_name": f"doc-{i}.pdf",
        "status": "completed",
        "job_id": job_id,
    }


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


@pytest.fixture
async def url() -> AsyncIterator[str]:
    items = [_item(i, j) for i, j in enumerate(JOB_IDS)]

    async def job(request: web.Request) -> web.Response:
        body = {
            "job": {
                "id": JOB,
                "job_type": "parse",
                "project_id": "p",
                "status": "completed",
                "total_items": len(items),
            },
            "progress_percentage": 100.0,
        }
        return web.json_response(body)

    async def page(request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", 0))
        limit = int(request.query.get("limit", 100))
        status = request.query.get("status")
        chosen = [i for i in items if status in (None, i["status"])]
        body = {"items": chosen[offset : offset + limit], "total_size": len(chosen)}
        return web.json_response(body)

    async def markdown(request: web.Request) -> web.Response:
        return web.json_response({"markdown": f"# {request.match_info['job_id']}"})

    app = web.Application()
    app.router.add_get(f"/api/v1/beta/batch-processing/{JOB}", job)
    app.router.add_get(f"/api/v1/beta/batch-processing/{JOB}/items", page)
    app.router.add_get("/api/v1/parsing/job/{job_id}/result/markdown", markdown)
    async with serve(app) as base:
        yield base


async def test_the_library_stream_goes_on_past_bad_ids(url: str) -> None:
    async with (
        BatchClient(KEY, base_url=url) as client,
        client.job_items.iter_results(JOB, job_type="parse") as results,
    ):
        got = [r async for r in results]
    assert [r.item.item_id for r in got] == [f"itm-{i}" for i in range(len(JOB_IDS))]
    for i, r in enumerate(got):
        if i in GOOD:
            assert r.ok, r.error
            continue
        assert r.error is not None
        assert r.error.kind == "invalid"
        assert "the server gave an unusable job_id" in r.error.message
    assert got[-1].next_offset == len(JOB_IDS)


@pytest.mark.parametrize("fmt", ["files", "jsonl"])
async def test_the_download_marks_bad_ids_and_goes_on(url: str, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / ("out" if fmt == "files" else "out.jsonl")
    argv = ["items", "download", "--job-id", JOB, "--format", fmt, "-o", str(out)]
    argv += ["--base-url", url, "--api-key", KEY]
    r = await cli(*argv)
    assert r.code == 1, r.err  # some items have no result: not a usage error
    assert "invalid argument" not in r.err
    index = out / INDEX_NAME if fmt == "files" else out
    rows = [json.loads(line) for line in index.read_text().splitlines()]
    assert [row["item_id"] for row in rows] == [f"itm-{i}" for i in range(len(JOB_IDS))]
    assert [row["status"] == "ok" for row in rows] == [i in GOOD for i in range(len(JOB_IDS))]
    assert {row["error_kind"] for k, row in enumerate(rows) if k not in GOOD} == {"invalid"}
    assert f"{len(JOB_IDS) - len(GOOD)} items have no result" in r.err


@pytest.mark.parametrize("bad", ["..", " ", "a\nb", "x\u2029y"])
async def test_a_v2_job_reference_with_a_bad_id_is_invalid(bad: str) -> None:
    from aiobatch._results._types import ItemFailure
    from aiobatch._results._v2 import FILE_RESOLVERS
    from aiobatch.models import BatchFileResult, JobReference

    file = BatchFileResult("dfl-1", JobReference("parse_v2", bad))

    class Never:
        async def __call__(self, model: type[M], path: str, params: Query) -> M:
            raise AssertionError("no request may be sent for a bad id")

        async def download(self, url: str, sink: IO[bytes]) -> int:
            raise AssertionError("no download either")

    with pytest.raises(ItemFailure) as info:
        await FILE_RESOLVERS["parse_v2"].fetch(Never(), file, "markdown", {})
    assert info.value.kind == "invalid"
    assert "job_reference.id" in str(info.value)
