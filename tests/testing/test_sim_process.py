"""The standalone server: CLI parsing, ``serve`` in-process, and a real subprocess."""

from __future__ import annotations

import asyncio
import io

import aiohttp

from aiobatch.testing import Faults, Trigger
from aiobatch.testing._cli import build_parser, faults_from_args, serve, simulator_from_args
from aiobatch.testing._process import SimulatorProcess

API = "/api/v1/beta/batch-processing"


def test_cli_flags_become_jobs_and_faults() -> None:
    ns = build_parser().parse_args(
        [
            "--port", "0", "--items", "1000000", "--jobs", "3", "--running",
            "--latency-ms", "50", "--rate-limit", "first=2,offset=500x2",
            "--retry-after", "soon", "--cap-limit", "200", "--omit-total-size",
            "--mix", "completed=0.9,failed=0.1",
        ]
    )  # fmt: skip
    faults = faults_from_args(ns)
    assert faults == Faults(
        latency_ms=50,
        rate_limit=Trigger(first=2, offsets={500: 2}),
        retry_after="soon",
        cap_limit=200,
        omit_total_size=True,
    )
    sim = simulator_from_args(ns)
    assert sim.job_ids == ["bjb-sim-0001", "bjb-sim-0002", "bjb-sim-0003"]
    assert all(j.running and j.total_items == 1_000_000 for j in sim.jobs)
    assert sim.host == "127.0.0.1"


def test_cli_page_cache_size() -> None:
    default = simulator_from_args(build_parser().parse_args([]))
    big = simulator_from_args(build_parser().parse_args(["--page-cache-mb", "256"]))
    assert default.registry.cache.max_bytes == 32 * 1024 * 1024
    assert big.registry.cache.max_bytes == 256 * 1024 * 1024


def test_cli_hostile_paging_flags() -> None:
    ns = build_parser().parse_args(
        [
            "--empty-page", "offset=5000", "--empty-style", "null", "--clamp-offset",
            "--stale-page", "every=7", "--unstable-ties", "1000",
        ]
    )  # fmt: skip
    assert faults_from_args(ns) == Faults(
        empty_page=Trigger(offsets={5000: 1}),
        empty_style="null",
        clamp_offset=True,
        stale_page=Trigger(every=7),
        unstable_ties=1000,
    )
    assert faults_from_args(build_parser().parse_args([])) == Faults()


async def test_serve_prints_the_banner_and_stops_cleanly() -> None:
    ns = build_parser().parse_args(["--port", "0", "--items", "10", "--api-key", "k"])
    out, stop = io.StringIO(), asyncio.Event()
    task = asyncio.create_task(serve(ns, out=out, stop=stop))
    for _ in range(1000):
        if "faults:" in out.getvalue():
            break
        await asyncio.sleep(0.001)
    banner = dict(line.split(": ", 1) for line in out.getvalue().splitlines()[1:] if ": " in line)
    assert banner["api_key"] == "k"
    assert banner["job"].startswith("bjb-sim-0001 items=10")
    async with (
        aiohttp.ClientSession(headers={"Authorization": "Bearer k"}) as s,
        s.get(banner["base_url"] + API + "/bjb-sim-0001/items") as resp,
    ):
        assert (await resp.json())["total_size"] == 10
    stop.set()
    await task


async def test_the_total_size_switch() -> None:
    # Whether the API sends total_size is not published: the simulator does both.
    ns = build_parser().parse_args(["--port", "0", "--items", "10", "--no-total-size"])
    out, stop = io.StringIO(), asyncio.Event()
    task = asyncio.create_task(serve(ns, out=out, stop=stop))
    for _ in range(1000):
        if "faults:" in out.getvalue():
            break
        await asyncio.sleep(0.001)
    assert "total_size: omitted" in out.getvalue()
    banner = dict(line.split(": ", 1) for line in out.getvalue().splitlines()[1:] if ": " in line)
    async with (
        aiohttp.ClientSession(headers={"Authorization": "Bearer test-key"}) as s,
        s.get(banner["base_url"] + API + "/bjb-sim-0001/items") as resp,
    ):
        body = await resp.json()
    stop.set()
    await task
    assert len(body["items"]) == 10
    assert "total_size" not in body
    assert simulator_from_args(build_parser().parse_args([])).total_size is True


async def test_subprocess_server() -> None:
    async with SimulatorProcess(items=500, args=["--rate-limit", "first=1"]) as proc:
        assert proc.base_url.startswith("http://127.0.0.1:")
        assert proc.job_ids == ["bjb-sim-0001"]
        headers = {"Authorization": f"Bearer {proc.api_key}"}
        async with aiohttp.ClientSession(proc.base_url, headers=headers) as s:
            codes = []
            for _ in range(2):
                async with s.get(API + "/bjb-sim-0001/items", params={"limit": "1000"}) as resp:
                    codes.append(resp.status)
                    body = await resp.json()
        assert codes == [429, 200]
        assert len(body["items"]) == 500
        process = proc._proc
        assert process is not None
    assert process.returncode == 0  # SIGTERM is a clean shutdown
