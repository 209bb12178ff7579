"""Results download: every completed item's parse markdown, three ways.

* ``official``: the official path, as the official batch notebook does it: the
  SDK (``llama_cloud`` 2.13.0, ``client.beta.batch.job_items.list``) lists the
  items, then one result request at a time.  SDK 2.13.0 has no call for the v1
  ``/parsing/job/{id}/result/markdown`` endpoint the notebook uses, so the
  result requests are a sequential aiohttp loop doing exactly that (a stand-in,
  said so in the report);
* ``bare``: an aiohttp loop at the same concurrency as aiobatch: one listing
  request per page, then ``asyncio.gather`` of the result requests under a
  semaphore, ``msgspec`` decode, no checks -- the floor;
* ``aiobatch``: ``client.job_items.iter_results(job_id, concurrency=N)``.

The simulator runs in its own process (``python -m benchmarks._results_server``).
Each client must return exactly the expected set of successful results.
A second measure streams a job whose results are several megabytes each through
``iter_results`` in a child process and records its peak RSS above baseline.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import msgspec

from ._env import ROOT

__all__ = ["ResultsPlan", "results_server", "run_results"]

_API = "/api/v1/beta/batch-processing"


@dataclass(frozen=True, slots=True)
class ResultsPlan:
    items: int = 2_000  #: items of the job (about 88% completed)
    official_items: int = 150  #: the official path is timed on this many results
    latency_ms: float = 50.0
    concurrency: int = 32
    rounds: int = 2
    #: Memory: this many items whose results are ``big_bytes`` each.
    big_items: int = 60
    big_bytes: int = 4_000_000
    big_concurrency: int = 8


@dataclass(frozen=True, slots=True)
class Server:
    base_url: str
    api_key: str
    job_id: str
    pid: int


@asynccontextmanager
async def results_server(
    items: int, latency_ms: float, *, big_bytes: int = 0
) -> AsyncIterator[Server]:
    """The simulator with one parse job, in its own process."""
    args = [sys.executable, "-m", "benchmarks._results_server", "--items", str(items)]
    args += ["--latency-ms", f"{latency_ms:g}", "--big-bytes", str(big_bytes)]
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        info = json.loads(line)
        yield Server(info["base_url"], info["api_key"], info["job_id"], proc.pid)
    finally:
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


# --- the clients ------------------------------------------------------------------

Got = dict[str, int]  #: item id -> bytes of its markdown


class _Md(msgspec.Struct):
    markdown: str


class _Item(msgspec.Struct):
    item_id: str
    job_id: str | None = None


class _Page(msgspec.Struct):
    items: list[_Item] | None = None
    total_size: int | None = None


async def official(sv: Server, limit: int | None) -> Got:
    """SDK listing, then one result request at a time (the notebook's loop)."""
    from llama_cloud import AsyncLlamaCloud

    got: Got = {}
    client = AsyncLlamaCloud(api_key=sv.api_key, base_url=sv.base_url)
    headers = {"Authorization": f"Bearer {sv.api_key}"}
    try:
        async with aiohttp.ClientSession(headers=headers) as session:
            listing = client.beta.batch.job_items.list(sv.job_id, status="completed", limit=100)
            async for item in listing:
                if limit is not None and len(got) >= limit:
                    break
                url = f"{sv.base_url}/api/v1/parsing/job/{item.job_id}/result/markdown"
                async with session.get(url) as resp:
                    if resp.status == 200:
                        body = await resp.json()
                        got[item.item_id] = len(body["markdown"].encode())
                    else:
                        await resp.read()
                        got[item.item_id] = -1
    finally:
        await client.close()
    return got


async def bare(sv: Server, concurrency: int) -> Got:
    """aiohttp + msgspec, the listing page by page, results under a semaphore."""
    headers = {"Authorization": f"Bearer {sv.api_key}"}
    dec_page, dec_md = msgspec.json.Decoder(_Page), msgspec.json.Decoder(_Md)
    got: Got = {}
    conn = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(headers=headers, connector=conn) as session:
        items: list[_Item] = []
        offset = 0
        while True:
            params = {"status": "completed", "limit": "500", "offset": str(offset)}
            async with session.get(f"{sv.base_url}{_API}/{sv.job_id}/items", params=params) as r:
                page = dec_page.decode(await r.read())
            items += page.items or []
            offset += len(page.items or [])
            if not page.items or page.total_size is None or offset >= page.total_size:
                break
        sem = asyncio.Semaphore(concurrency)

        async def one(item: _Item) -> None:
            async with sem:
                url = f"{sv.base_url}/api/v1/parsing/job/{item.job_id}/result/markdown"
                async with session.get(url) as resp:
                    body = await resp.read()
                    ok = resp.status == 200
            got[item.item_id] = len(dec_md.decode(body).markdown.encode()) if ok else -1

        await asyncio.gather(*(one(i) for i in items))
    return got


async def aiobatch_results(sv: Server, concurrency: int) -> Got:
    from aiobatch import BatchClient

    got: Got = {}
    async with BatchClient(api_key=sv.api_key, base_url=sv.base_url) as client:
        async for r in client.job_items.iter_results(sv.job_id, concurrency=concurrency):
            got[r.item.item_id] = r.nbytes if r.ok else -1
    return got


# --- the run --------------------------------------------------------------------


async def _timed(fn: Callable[[], Any]) -> tuple[float, Got]:
    t0 = time.perf_counter()
    got = await fn()
    return time.perf_counter() - t0, got


def _memory_child(spec: dict[str, Any]) -> dict[str, Any]:
    import psutil

    from aiobatch import BatchClient

    from .memory import _Sampler

    baseline = psutil.Process().memory_info().rss
    sampler = _Sampler()
    sampler.start()
    count = nbytes = 0

    async def go() -> None:
        nonlocal count, nbytes
        async with BatchClient(api_key=spec["api_key"], base_url=spec["base_url"]) as client:
            results = client.job_items.iter_results(spec["job_id"], concurrency=spec["concurrency"])
            async for r in results:
                count += 1
                nbytes = max(nbytes, r.nbytes)

    asyncio.run(go())
    peak = sampler.stop()
    return {
        "count": count,
        "largest_result": nbytes,
        "above_baseline_mib": (peak - baseline) / 2**20,
    }


async def _memory(plan: ResultsPlan, log: Callable[[str], None]) -> dict[str, Any]:
    async with results_server(plan.big_items, 0.0, big_bytes=plan.big_bytes) as sv:
        spec = {**asdict(sv), "concurrency": plan.big_concurrency}
        code = (
            "import json, sys; from benchmarks.results_download import _memory_child; "
            "print(json.dumps(_memory_child(json.loads(sys.argv[1]))))"
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, json.dumps(spec), cwd=ROOT, stdout=subprocess.PIPE
        )
        out, _ = await proc.communicate()
    res: dict[str, Any] = json.loads(out.splitlines()[-1])
    res.update(items=plan.big_items, result_bytes=plan.big_bytes, concurrency=plan.big_concurrency)
    log(
        f"results memory: {res['count']} results of ~{plan.big_bytes / 1e6:.0f} MB, "
        f"c={plan.big_concurrency}: peak {res['above_baseline_mib']:.0f} MiB above baseline"
    )
    return res


async def run_results(plan: ResultsPlan, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Time the three clients; JSON-ready, with the ratios and targets."""
    runs: dict[str, list[float]] = {"official": [], "bare": [], "aiobatch": []}
    counts: dict[str, int] = {}
    problems: list[str] = []
    async with results_server(plan.items, plan.latency_ms) as sv:
        expected = await bare(sv, plan.concurrency)  # also warms the server up
        ok_expected = {k for k, v in expected.items() if v >= 0}
        for r in range(plan.rounds):
            order = ["bare", "aiobatch"] if r % 2 == 0 else ["aiobatch", "bare"]
            for name in order:
                fn = (
                    (lambda: bare(sv, plan.concurrency))
                    if name == "bare"
                    else (lambda: aiobatch_results(sv, plan.concurrency))
                )
                wall, got = await _timed(fn)
                if got != expected:
                    problems.append(f"{name}: results differ from the expected set")
                runs[name].append(len(got) / wall)
                counts[name] = len(got)
        wall, got = await _timed(lambda: official(sv, plan.official_items))
        if any(v != expected.get(k) for k, v in got.items()):
            problems.append("official: results differ from the expected set")
        runs["official"].append(len(got) / wall)
        counts["official"] = len(got)
    best = {k: max(v) for k, v in runs.items()}
    out: dict[str, Any] = {
        "plan": asdict(plan),
        "items_per_s": best,
        "counts": counts,
        "ok_results": len(ok_expected),
        "vs_official": best["aiobatch"] / best["official"],
        "vs_bare": best["aiobatch"] / best["bare"],
        "problems": problems,
        "official_note": (
            "official = SDK 2.13.0 listing + a sequential aiohttp loop for the result "
            "requests (SDK 2.13.0 has no v1 parsing-result call)"
        ),
    }
    log(
        f"results download at {plan.latency_ms:g} ms, c={plan.concurrency}: aiobatch "
        f"{best['aiobatch']:,.0f} items/s, bare {best['bare']:,.0f}, official "
        f"{best['official']:,.1f} -> {out['vs_official']:.1f}x official, "
        f"{out['vs_bare']:.2f}x bare"
    )
    out["memory"] = await _memory(plan, log)
    return out
